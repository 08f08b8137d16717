"""schemathesis against the bank callback API (app/schemas/bank-api.openapi.json, served at /api/openapi.json):
generated requests, in process through the Flask app, must never get a 5xx and every answer must match the spec.

Most requests are signed with the test bank key over the exact bytes sent (as a bank would); some keep the
generated (garbage) signature headers, some carry none at all, some are signed with a stale timestamp, so the
401s are exercised too."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.banks.protocol import BANK_PREFIX, sign_headers
from app.ops.web import OPENAPI_PATH
from tests.factories import bank_signing_key

NOTIFICATIONS = "/api/banks/{bank_code}/notifications"
PING = "/api/banks/{bank_code}/ping"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _spec() -> dict[str, Any]:
    """The served document with the notification schema (a file reference) inlined as a component."""
    spec = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    notification = json.loads((OPENAPI_PATH.parent / "bank-notification.schema.json").read_text(encoding="utf-8"))
    text = json.dumps(notification).replace('"#/$defs/', '"#/components/schemas/BankNotification/$defs/')
    spec["components"]["schemas"]["BankNotification"] = json.loads(text)
    body = spec["paths"][NOTIFICATIONS]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "bank-notification.schema.json"}, "the spec's body reference moved"
    body["schema"] = {"$ref": "#/components/schemas/BankNotification"}
    for served_by_the_banks in ("/v1/statements/{date}", "/v1/signatures", "/v1/freezes", "/v1/unfreezes"):
        del spec["paths"][served_by_the_banks]
    return spec


SCHEMA = schemathesis.openapi.from_dict(_spec())
STRATEGIES = st.one_of(
    *(
        SCHEMA[path]["POST"].as_strategy(generation_mode=mode)
        for path in (NOTIFICATIONS, PING)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )
)


def _raw(body: Any) -> bytes:
    if body is NOT_SET or body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(copy.deepcopy(body), ensure_ascii=False).encode("utf-8")


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    case=STRATEGIES,
    signing=st.sampled_from(["signed", "signed", "signed", "generated", "stale", "unsigned"]),
    real=st.booleans(),
)
def test_bank_api_answers_match_the_spec(app: Flask, keys_dir: Path, case: Any, signing: str, real: bool) -> None:
    if real or signing == "signed":
        case.path_parameters = {**(case.path_parameters or {}), "bank_code": "ceb"}
    raw = _raw(case.body)
    headers = {k: v for k, v in (case.headers or {}).items() if not k.lower().startswith("x-bank-")}
    if signing == "generated":
        headers.update({k: v for k, v in (case.headers or {}).items() if k.lower().startswith("x-bank-")})
    elif signing != "unsigned":
        key = bank_signing_key(keys_dir)
        now = time.time() - (1000 if signing == "stale" else 0)
        headers.update(sign_headers(BANK_PREFIX, key, raw, now=now))
    path = case.formatted_path
    response = app.test_client().post(path, data=raw, headers=headers, content_type="application/json")
    case.validate_response(response, checks=CHECKS)
    if signing in ("stale", "unsigned") and case.path_parameters["bank_code"] == "ceb":
        assert response.status_code in (401, 413), response.get_json()


def _post(app: Flask, keys_dir: Path, body: dict[str, Any]) -> Any:
    raw = _raw(body)
    headers = sign_headers(BANK_PREFIX, bank_signing_key(keys_dir), raw)
    return app.test_client().post(
        "/api/banks/ceb/notifications", data=raw, headers=headers, content_type="application/json"
    )


def test_a_contradicting_notification_gets_a_documented_409(app: Flask, keys_dir: Path) -> None:
    """The same bank_reference with another amount contradicts our records: 409 CONFLICT, in the spec."""
    operation = SCHEMA[NOTIFICATIONS]["POST"]
    answers = []
    for notification_id, amount in (("n-first", 100), ("n-second", 999)):
        body = {
            "notification_id": notification_id,
            "type": "funds_arrived",
            "bank_reference": "CEBI-SAME-REF",
            "account_no": "62260000000000000001",
            "amount_fen": amount,
            "payer_name": "张三",
            "payer_account": "6226620012345678",
            "arrived_at": "2026-11-23T08:00:00Z",
        }
        response = _post(app, keys_dir, body)
        operation.Case(path_parameters={"bank_code": "ceb"}, body=body).validate_response(response, checks=CHECKS)
        answers.append((response.status_code, response.get_json()["code"]))
    assert answers == [(200, "OK"), (409, "CONFLICT")]


def test_the_checks_refuse_an_undocumented_answer() -> None:
    from werkzeug.test import TestResponse
    from werkzeug.wrappers import Request

    case = SCHEMA[PING]["POST"].Case(path_parameters={"bank_code": "ceb"})
    teapot = TestResponse([b'{"code": "TEAPOT"}'], 418, {"Content-Type": "application/json"}, Request.from_values())
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        case.validate_response(teapot, checks=CHECKS)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR")
