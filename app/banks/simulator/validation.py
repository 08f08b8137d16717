"""Shapes of the requests the simulated bank accepts (JSON Schema), and parsing into checked dicts."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from app.banks.simulator.errors import malformed
from app.domain.money import MAX_AMOUNT_FEN

_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 100}
_ACCOUNT_NO = {"type": "string", "pattern": "^[0-9]{8,32}$"}
_URL = {"type": "string", "pattern": r"^https?://[^\s]+$", "maxLength": 500}
_AMOUNT_FEN = {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT_FEN - 1}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


OPEN_ACCOUNT_REQUEST = _object({"request_id": _ID, "account_name": _NAME, "notify_url": _URL})
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
PAYOUT_ID = _ID


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
