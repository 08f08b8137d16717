"""The shipped list of common passwords (common_passwords.txt) that the password policy refuses."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_LIST = Path(__file__).with_name("common_passwords.txt")


@cache
def _common() -> frozenset[str]:
    lines = _LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def is_common(password: str) -> bool:
    return password.strip().lower() in _common()
