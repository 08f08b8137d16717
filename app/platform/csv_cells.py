"""CSV cells a spreadsheet will not run: a text cell starting with = + - @, a tab or a carriage return is
prefixed with an apostrophe (OWASP "CSV injection"), so `=HYPERLINK(...)` stays text. Every CSV the
platform writes for people goes through `safe_row`."""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """The value unchanged, unless it is text a spreadsheet would read as a formula: then quoted with '."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    """`safe_cell` applied to each cell of a row."""
    return [safe_cell(value) for value in values]
