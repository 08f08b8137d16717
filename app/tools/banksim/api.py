"""The bank's side of protocol v1, as the platform calls it: `/<bank_code>/v1/...`, every request signed.

Each simulated bank lives under its own path, so a bank's base URL is e.g. `http://127.0.0.1:5001/ceb`.
Fault controls act here: a 503 before anything is booked, a payout booked and then answered too late.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from app.banks.gateway import PayoutRequest
from app.banks.protocol import BANK_PREFIX, PLATFORM_PREFIX, encode_json, sign_headers, verify_request
from app.domain.timezone import SHANGHAI
from app.pdf.sign import sign_digest
from app.tools.banksim.context import current_simulator
from app.tools.banksim.errors import system_busy, unknown_bank
from app.tools.banksim.operations import DesignatedPayer
from app.tools.banksim.statements import bank_day
from app.tools.banksim.validation import (
    FREEZE_REQUEST,
    OPEN_ACCOUNT_REQUEST,
    PAYOUT_ID,
    PAYOUT_REQUEST,
    REQUEST_ID,
    SIGNATURE_REQUEST,
    UNFREEZE_REQUEST,
    check,
    parse_json_object,
    parse_statement_date,
)

bank_api = Blueprint("bank_api", __name__, url_prefix="/<bank_code>/v1")


@bank_api.url_value_preprocessor
def _resolve_bank(endpoint: str | None, values: dict[str, Any] | None) -> None:
    bank_code = (values or {}).pop("bank_code", "")
    bank = current_simulator().banks.get(bank_code)
    if bank is None:
        raise unknown_bank(bank_code)
    g.bank = bank


@bank_api.before_request
def _authenticate() -> None:
    simulator = current_simulator()
    verify_request(
        PLATFORM_PREFIX,
        simulator.keys.platform_public_key_pem,
        request.headers,
        request.get_data(cache=True),
        remember_nonce=simulator.remember_nonce,
    )


@bank_api.before_request
def _error_5xx_fault() -> None:
    """After authentication, before anything is booked; statements are exempt."""
    if request.endpoint != "bank_api.statement" and current_simulator().operations.fault_strikes(g.bank, "error_5xx"):
        raise system_busy()


@bank_api.post("/virtual-accounts")
def open_virtual_account() -> tuple[Response, int]:
    data = check(parse_json_object(request.get_data()), OPEN_ACCOUNT_REQUEST)
    simulator = current_simulator()
    payer = data.get("designated_payer")
    account = simulator.operations.request_account(
        g.bank,
        data["request_id"],
        data["account_name"],
        data["notify_url"],
        None if payer is None else DesignatedPayer(payer["payer_name"], payer["payer_account"]),
    )
    simulator.worker.wake()
    received_at = datetime.fromtimestamp(account.requested_at, UTC).astimezone(SHANGHAI)  # what its limits count
    return jsonify(code="ACCEPTED", request_id=data["request_id"], received_at=received_at.isoformat()), 202


@bank_api.get("/virtual-accounts/<request_id>")
def query_virtual_account(request_id: str) -> Response:
    """Where an opening request stands: `opening`, or `open` with its number (for a platform whose
    `account_opened` notification never came)."""
    check(request_id, REQUEST_ID)
    account = current_simulator().operations.account(g.bank, request_id)
    return jsonify(
        request_id=account.request_id,
        status=account.status,
        account_no=account.account_no,
        account_name=account.account_name,
    )


@bank_api.post("/payouts")
def submit_payout() -> tuple[Response, int]:
    data = check(parse_json_object(request.get_data()), PAYOUT_REQUEST)
    simulator = current_simulator()
    payout = simulator.operations.submit_payout(g.bank, PayoutRequest(**data))
    simulator.worker.wake()
    if simulator.operations.fault_strikes(g.bank, "payout_timeout"):
        time.sleep(simulator.operations.faults(g.bank).timeout_hold_ms / 1000)
        return jsonify(code="GATEWAY_TIMEOUT", message="银行处理超时，请查询付款结果"), 504
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


@bank_api.post("/signatures")
def sign_document() -> Response:
    """The bank's signature on a document the platform has signed (an agreement): the platform sends the SM3
    digest of the PDF's signed byte ranges, the bank answers a detached CMS signed with its seal key, which
    never leaves the bank, carrying the bank's GB/T 38540 seal. Signing the same digest again is harmless, so a
    repeat is answered anew."""
    data = check(parse_json_object(request.get_data()), SIGNATURE_REQUEST)
    simulator = current_simulator()
    when = datetime.fromtimestamp(simulator.operations.clock(), UTC)
    key, certificate = simulator.keys.bank_private_keys[g.bank.code], simulator.keys.bank_certificates[g.bank.code]
    seal = simulator.keys.seals.get(g.bank.code)
    signature = sign_digest(bytes.fromhex(data["document_sm3"]), key, certificate, when, simulator.keys.chain, seal)
    return jsonify(code="SIGNED", request_id=data["request_id"], cms=base64.b64encode(signature).decode())


def _signed_receipt(fields: dict[str, Any]) -> Response:
    """A receipt the platform keeps as proof: the JSON body signed with the bank's key (X-Bank-* headers)."""
    body = encode_json(fields)
    response = Response(body, content_type="application/json; charset=utf-8")
    response.headers.update(sign_headers(BANK_PREFIX, current_simulator().keys.bank_private_keys[g.bank.code], body))
    return response


@bank_api.post("/freezes")
def freeze() -> Response:
    """Freeze a customer's money for a guarantee; the receipt names the account now holding it. Asking again
    with the same request is answered with the same receipt."""
    data = check(parse_json_object(request.get_data()), FREEZE_REQUEST)
    request_id, amount_fen = data["request_id"], data["amount_fen"]
    account = current_simulator().operations.freeze(g.bank, request_id, data["account_name"], amount_fen)
    return _signed_receipt(
        {"code": "FROZEN", "request_id": request_id, "account_no": account.account_no, "amount_fen": amount_fen}
    )


@bank_api.post("/unfreezes")
def unfreeze() -> Response:
    """Lift a guarantee's freeze on `account_no`; the receipt confirms the amount released."""
    data = check(parse_json_object(request.get_data()), UNFREEZE_REQUEST)
    current_simulator().operations.unfreeze(g.bank, data["request_id"], data["account_no"], data["amount_fen"])
    return _signed_receipt({"code": "UNFROZEN", **data})


@bank_api.get("/statements/<day>")
def statement(day: str) -> Response:
    """The day's statement CSV in the bank's layout, signed with the bank's key (X-Bank-* headers)."""
    simulator = current_simulator()
    today = bank_day(simulator.operations.clock())
    wanted = parse_statement_date(day, today=today)
    statement_file = simulator.operations.statement(g.bank, wanted)
    bank_key = simulator.keys.bank_private_keys[g.bank.code]
    content_type = f"text/csv; charset={g.bank.statement.encoding.upper()}"
    response = Response(statement_file.content, content_type=content_type)
    response.headers.update(sign_headers(BANK_PREFIX, bank_key, statement_file.content))
    response.headers["X-Bank-Statement-SM3"] = statement_file.sm3_hex
    response.headers["X-Bank-Statement-Lines"] = str(statement_file.line_count)
    response.headers["X-Bank-Statement-Complete"] = "true" if wanted < today else "false"
    response.headers["Content-Disposition"] = f"attachment; filename={g.bank.code}-{wanted.isoformat()}.csv"
    return response
