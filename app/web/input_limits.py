"""Every text a person sends has a length limit (issue 16): each form field and query parameter is refused
with a 400 and a Chinese message before any view runs (nothing is stored), so that an over-long value never
reaches a database column (a 500) or a log. Fields with a tighter rule of their own (the intake form's schema
maxLength, a username) still apply it after this."""

from __future__ import annotations

from flask import request

from app.platform.errors import ValidationError

DEFAULT_MAX_CHARS = 1000  # an intake form value, a filter, a deal number …
FIELD_MAX_CHARS = {
    "reason": 256,  # ops actions, freezes, amendments, suspense matches: their columns hold 256
    "resolution": 256,  # reconciliation and alert resolutions
    "comment": 2000,  # review comments of config versions
    "search": 100,  # the search boxes of the admin lists
    "q": 100,
}
UNBOUNDED_HERE = frozenset({"content"})  # a city config draft: up to 256 KB, checked by the config validation
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _too_long(name: str, value: str) -> int | None:
    if name in UNBOUNDED_HERE:
        return None
    limit = FIELD_MAX_CHARS.get(name, DEFAULT_MAX_CHARS)
    return limit if len(value) > limit else None


def refuse_overlong_fields() -> None:
    """A `before_request` hook: ValidationError INPUT_TOO_LONG (400) for the first value over its limit."""
    fields = list(request.args.items(multi=True))
    if request.mimetype in FORM_TYPES:
        fields += list(request.form.items(multi=True))
    for name, value in fields:
        limit = _too_long(name, value)
        if limit is not None:
            raise ValidationError(
                f"输入内容过长：{name} 不能超过 {limit} 个字符", code="INPUT_TOO_LONG", details={"field": name}
            )
