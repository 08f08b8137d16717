"""The bank's side of protocol v1, as the platform calls it: `/<bank_code>/v1/...`, every request signed.

Each simulated bank lives under its own path, so a bank's base URL is e.g. `http://127.0.0.1:5001/ceb`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from app.banks.gateway import PayoutRequest
from app.banks.protocol import PLATFORM_PREFIX, verify_request
from app.banks.simulator.banks import SIMULATED_BANKS
from app.banks.simulator.context import current_simulator
from app.banks.simulator.errors import unknown_bank
from app.banks.simulator.validation import (
    OPEN_ACCOUNT_REQUEST,
    PAYOUT_ID,
    PAYOUT_REQUEST,
    check,
    parse_json_object,
)

bank_api = Blueprint("bank_api", __name__, url_prefix="/<bank_code>/v1")


@bank_api.url_value_preprocessor
def _resolve_bank(endpoint: str | None, values: dict[str, Any] | None) -> None:
    bank_code = (values or {}).pop("bank_code", "")
    bank = SIMULATED_BANKS.get(bank_code)
    if bank is None:
        raise unknown_bank(bank_code)
    g.bank = bank


@bank_api.before_request
def _authenticate() -> None:
    simulator = current_simulator()
    verify_request(
        PLATFORM_PREFIX,
        simulator.platform_public_key_pem,
        request.headers,
        request.get_data(cache=True),
        remember_nonce=simulator.remember_nonce,
    )


@bank_api.post("/virtual-accounts")
def open_virtual_account() -> tuple[Response, int]:
    data = check(parse_json_object(request.get_data()), OPEN_ACCOUNT_REQUEST)
    simulator = current_simulator()
    simulator.operations.request_account(g.bank, data["request_id"], data["account_name"], data["notify_url"])
    simulator.worker.wake()
    return jsonify(code="ACCEPTED", request_id=data["request_id"]), 202


@bank_api.post("/payouts")
def submit_payout() -> tuple[Response, int]:
    data = check(parse_json_object(request.get_data()), PAYOUT_REQUEST)
    simulator = current_simulator()
    payout = simulator.operations.submit_payout(g.bank, PayoutRequest(**data))
    simulator.worker.wake()
    return jsonify(code="ACCEPTED", bank_reference=payout.bank_reference), 202


@bank_api.get("/payouts/<payout_id>")
def query_payout(payout_id: str) -> Response:
    check(payout_id, PAYOUT_ID)
    payout = current_simulator().operations.payout(g.bank, payout_id)
    return jsonify(
        payout_id=payout.payout_id,
        status=payout.status,
        bank_reference=payout.bank_reference,
        failure_reason=payout.failure_reason,
    )
