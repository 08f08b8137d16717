"""Form field `pattern`s from city configs run on a linear-time engine: the Rust `regex` crate behind
jsonschema-rs (`RegexOptions`), never Python's backtracking `re`. A pattern that engine refuses (lookaround,
backreferences, a syntax error, a compiled size over the limit) is refused when the config is validated."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema_rs
from jsonschema.exceptions import ValidationError as SchemaValidationError

MAX_PATTERN_CHARS = 512
_SIZE_LIMIT = 1 << 20  # compiled program bytes: `a{1000}{1000}` is refused, not built


@lru_cache(maxsize=1024)
def _matcher(pattern: str) -> Any:
    """A validator of `{"pattern": pattern}` on the linear engine; ValueError when the engine refuses it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern longer than {MAX_PATTERN_CHARS} characters")
    try:
        return jsonschema_rs.Draft202012Validator(
            {"type": "string", "pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions(size_limit=_SIZE_LIMIT)
        )
    except jsonschema_rs.ValidationError as error:
        raise ValueError(str(error).splitlines()[0]) from error


def pattern_problem(pattern: Any) -> str | None:
    """Why the linear engine cannot run `pattern` (English, for the log and the problem list), None when it can."""
    if not isinstance(pattern, str):
        return "pattern is not a string"
    try:
        _matcher(pattern)
    except ValueError as error:
        return str(error)
    return None


def matches(pattern: str, text: str) -> bool:
    """JSON Schema `pattern` semantics (a search, not anchored) in time linear in `text`."""
    return bool(_matcher(pattern).is_valid(text))


def linear_pattern(_validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[SchemaValidationError]:
    """The `pattern` keyword for `jsonschema.validators.extend`: the linear engine instead of `re.search`."""
    if isinstance(instance, str) and not matches(pattern, instance):
        yield SchemaValidationError(f"{instance!r} does not match {pattern!r}")
