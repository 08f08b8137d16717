"""Draft and published versions of a city config. For now the draft is the working file and the
published version is the file as committed in git HEAD; database versions will replace `GitVersions`."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path
from typing import Protocol


class CityVersions(Protocol):
    def draft(self, stem: str) -> str | None: ...

    def published(self, stem: str) -> str | None: ...


class GitVersions:
    def __init__(self, repo: Path, folder: str = "city_configs") -> None:
        self.repo = repo
        self.folder = folder

    def draft(self, stem: str) -> str | None:
        path = self.repo / self.folder / f"{stem}.json"
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def published(self, stem: str) -> str | None:
        shown = subprocess.run(
            ["git", "-C", str(self.repo), "show", f"HEAD:{self.folder}/{stem}.json"],
            capture_output=True,
            check=False,
        )
        return shown.stdout.decode("utf-8") if shown.returncode == 0 else None


def unified_diff(versions: CityVersions, stem: str) -> str:
    """Published → draft as a unified diff; empty when they are the same."""
    published, draft = versions.published(stem), versions.draft(stem)
    lines = difflib.unified_diff(
        (published or "").splitlines(keepends=True),
        (draft or "").splitlines(keepends=True),
        fromfile=f"{stem}.json（已发布）" if published is not None else "/dev/null",
        tofile=f"{stem}.json（草稿）" if draft is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
