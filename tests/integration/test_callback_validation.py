"""The callback body check takes a short cut (only the branch of the body's type); it must accept and refuse
exactly what the whole notification schema accepts and refuses, with the same error list."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.bank_inbox.receive import _validator, parse_notification, schema_errors
from app.platform.errors import ValidationError

VALID: list[dict[str, Any]] = [
    {
        "notification_id": "N-1",
        "type": "account_opened",
        "request_id": "VA-1",
        "account_no": "6226000000000001",
        "account_name": "存管专户",
    },
    {
        "notification_id": "N-2",
        "type": "funds_arrived",
        "bank_reference": "REF-1",
        "account_no": "6226000000000001",
        "amount_fen": 100,
        "payer_name": "张三",
        "payer_account": "6226620012345678",
        "arrived_at": "2026-11-23T08:00:00Z",
        "designated_payer_matched": True,
    },
    {
        "notification_id": "N-3",
        "type": "payout_result",
        "payout_id": "PO-1",
        "bank_reference": "B-1",
        "status": "failed",
        "failure_reason": "余额不足",
    },
]
STRANGE_VALUES: list[Any] = [None, "", "x" * 300, 0, -1, 5.0, True, 10**16, [], {}, "2026-11-23 08:00", "abc!"]


def _variants() -> list[Any]:
    """Each valid body, and each with one field removed, retyped to another type's, or set to a strange value."""
    bodies: list[Any] = [[], "funds_arrived", 7, None, {}, {"type": "unknown", "notification_id": "N-9"}]
    for body in VALID:
        bodies.append(body)
        bodies.append({**body, "extra": 1})
        for other in VALID:
            bodies.append({**body, "type": other["type"]})
        for field in body:
            removed = copy.deepcopy(body)
            del removed[field]
            bodies.append(removed)
            bodies += [{**body, field: value} for value in STRANGE_VALUES]
    bodies.append({**VALID[2], "status": "succeeded", "failure_reason": None})
    bodies.append({**VALID[2], "status": "succeeded"})
    bodies.append({**VALID[2], "failure_reason": None})
    return bodies


@pytest.mark.parametrize("body", _variants())
def test_the_short_cut_agrees_with_the_whole_schema(body: Any) -> None:
    expected = schema_errors(body) if any(_validator().iter_errors(body)) else []
    raw = json.dumps(body, ensure_ascii=False).encode()
    if not expected:
        assert parse_notification(raw) == body
        return
    with pytest.raises(ValidationError) as refused:
        parse_notification(raw)
    assert refused.value.code == "MALFORMED"
    assert refused.value.details == expected


def test_the_variants_cover_both_answers() -> None:
    answers = {not list(_validator().iter_errors(body)) for body in _variants()}
    assert answers == {True, False}
    assert sum(not list(_validator().iter_errors(body)) for body in _variants()) >= len(VALID) + 2
