"""Shapes of the requests the simulated bank accepts (JSON Schema), and parsing into checked dicts."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator

from app.domain.money import MAX_AMOUNT_FEN
from app.tools.banksim.errors import SimulatorError, malformed

_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 100}
_ACCOUNT_NO = {"type": "string", "pattern": "^[0-9]{8,32}$"}
_URL = {"type": "string", "pattern": r"^https?://[^\s]+$", "maxLength": 500}
_AMOUNT_FEN = {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT_FEN - 1}


def _object(properties: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties | (optional or {}),
        "required": list(properties),
        "additionalProperties": False,
    }


_DESIGNATED_PAYER = _object({"payer_name": _NAME, "payer_account": _ACCOUNT_NO})
OPEN_ACCOUNT_REQUEST = _object(
    {"request_id": _ID, "account_name": _NAME, "notify_url": _URL}, optional={"designated_payer": _DESIGNATED_PAYER}
)
PAYOUT_REQUEST = _object(
    {
        "payout_id": _ID,
        "account_no": _ACCOUNT_NO,
        "amount_fen": _AMOUNT_FEN,
        "payee_name": _NAME,
        "payee_account": _ACCOUNT_NO,
        "notify_url": _URL,
    }
)
PAY_IN_REQUEST = _object(
    {
        "bank": {"type": "string", "minLength": 1, "maxLength": 16},
        "account_no": _ACCOUNT_NO,
        "amount_fen": _AMOUNT_FEN,
        "payer_name": _NAME,
        "payer_account": _ACCOUNT_NO,
    }
)
SIGNATURE_REQUEST = _object(
    {
        "request_id": _ID,
        "document_sm3": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "purpose": {"type": "string", "minLength": 1, "maxLength": 200},
    }
)
FREEZE_REQUEST = _object({"request_id": _ID, "account_name": _NAME, "amount_fen": _AMOUNT_FEN})
UNFREEZE_REQUEST = _object({"request_id": _ID, "account_no": _ACCOUNT_NO, "amount_fen": _AMOUNT_FEN})
PAYOUT_ID = _ID
REQUEST_ID = _ID
_LIMIT = {"type": "integer", "minimum": 0, "maximum": 10**9}
LIMITS_REQUEST = _object({"per_second": _LIMIT, "per_day": _LIMIT})
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise malformed("请求体不是有效的 JSON") from error
    if not isinstance(data, dict):
        raise malformed("请求体必须是 JSON 对象")
    return data


def check(data: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """`data` if it matches `schema`, else MALFORMED listing each problem by JSON pointer."""
    problems = {
        "/" + "/".join(str(part) for part in error.absolute_path): error.message
        for error in Draft202012Validator(schema).iter_errors(data)
    }
    if problems:
        raise malformed("请求内容不符合接口规范", details=problems)
    for name, rule in schema.get("properties", {}).items():
        if rule.get("type") == "integer" and not isinstance(data[name], int):  # JSON Schema accepts 5.0 as integer
            raise malformed(f"{name} 必须是整数", details={"/" + name: "must be an integer without fraction"})
    return data


def parse_statement_date(text: str, *, today: date) -> date:
    """A YYYY-MM-DD day no later than `today` (the bank's day); later days have no statement yet."""
    try:
        day = date.fromisoformat(text) if _DATE.match(text) else None
    except ValueError:
        day = None
    if day is None:
        raise malformed("日期格式应为 YYYY-MM-DD", details={"date": text})
    if day > today:
        raise SimulatorError(
            f"{day.isoformat()} 的对账单尚未生成", code="STATEMENT_NOT_READY", http_status=404, details={"date": text}
        )
    return day
