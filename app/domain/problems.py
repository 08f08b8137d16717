"""Configuration problems: each names the file, the JSON pointer and what is wrong, in Chinese and English."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from app.platform.errors import ConfigError


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901 escaping) from path parts; "/" stands for the whole document, as before."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts) or "/"


@dataclass(frozen=True)
class Problem:
    file: str
    pointer: str
    message: str  # zh-CN, for people
    message_en: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.file}#{self.pointer}: {self.message} / {self.message_en}"


class CityConfigInvalid(ConfigError):
    """A city config that must not be used; `problems` lists every problem found."""

    code = "CITY_CONFIG_INVALID"

    def __init__(self, source: str, problems: list[Problem]) -> None:
        super().__init__(
            f"城市配置 {source} 有 {len(problems)} 处错误", details=[problem.to_dict() for problem in problems]
        )
        self.problems = problems
