"""City configuration: load a city's JSON, validate it against the schema, pin it by content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from app.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "city.schema.json"


@dataclass(frozen=True)
class ProductConfig:
    product: str
    workflow_id: str
    workflow_version: int
    banks: tuple[str, ...]
    agreement_template: str


@dataclass(frozen=True)
class CityConfig:
    admin_code: str
    name: str
    status: str
    products: dict[str, ProductConfig]
    sha256: str

    def product(self, product: str) -> ProductConfig:
        if product not in self.products:
            raise ConfigError(
                f"{self.name}未开通该业务",
                code="PRODUCT_NOT_OFFERED",
                details={"city": self.admin_code, "product": product},
            )
        return self.products[product]


def parse_city_config(raw: bytes, source: str) -> CityConfig:
    try:
        data: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"城市配置 {source} 不是合法的 JSON", code="CITY_CONFIG_INVALID", details=str(error)
        ) from error
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    problems = [
        {"file": source, "pointer": "/" + "/".join(str(p) for p in e.absolute_path), "message_en": e.message}
        for e in validator.iter_errors(data)
    ]
    if problems:
        raise ConfigError(f"城市配置 {source} 有 {len(problems)} 处错误", code="CITY_CONFIG_INVALID", details=problems)
    products = {
        name: ProductConfig(
            name, spec["workflow"]["id"], spec["workflow"]["version"], tuple(spec["banks"]), spec["agreement_template"]
        )
        for name, spec in data["products"].items()
    }
    return CityConfig(data["admin_code"], data["name"], data["status"], products, hashlib.sha256(raw).hexdigest())


class CityCatalog:
    """The city configs in a folder, read on demand (a file edit is seen without a restart)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, admin_code: str) -> CityConfig:
        path = self.folder / f"{admin_code}.json"
        if not admin_code.isdigit() or not path.is_file():
            raise ConfigError("城市未开通", code="UNKNOWN_CITY", details={"city": admin_code})
        return parse_city_config(path.read_bytes(), path.name)

    def live_cities(self) -> list[CityConfig]:
        cities = [self.get(path.stem) for path in sorted(self.folder.glob("[0-9]*.json"))]
        return [city for city in cities if city.status == "live"]
