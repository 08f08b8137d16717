"""Simulator-only pages and endpoints, behind the control token (control_token.py; serve on 127.0.0.1): the
overview page, its JSON twin `/sim/state` (per bank: profile, limits, faults, accounts, arrivals, payouts,
deliveries; people's names, ID numbers, phones and their account numbers masked on both) and `/sim/pay` which
makes money arrive in a virtual account. Tools in the same process that need the unmasked state (tests, the
sandbox) call `bank_state` with the store."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.domain.money import format_yuan, parse_yuan
from app.domain.pii_mask import mask_pii_in_data
from app.platform.errors import CunguanError
from app.tools.banksim.banks import SimulatedBank
from app.tools.banksim.context import current_simulator
from app.tools.banksim.control_token import CONFIG_KEY, TOKEN_FIELD
from app.tools.banksim.errors import malformed, unknown_bank
from app.tools.banksim.limits import effective_limits
from app.tools.banksim.store import Transaction
from app.tools.banksim.validation import PAY_IN_REQUEST, check, parse_json_object

sim_views = Blueprint("sim_views", __name__)
VIRTUAL_ACCOUNT_KEYS = frozenset({"account_no"})


def bank_state(tx: Transaction, bank: SimulatedBank) -> dict[str, Any]:
    """Everything the simulated bank holds, unmasked: for in-process tools only, never served."""
    deliveries = [
        {
            "notification_id": delivery.notification_id,
            "copy": delivery.copy,
            "type": delivery.type,
            "notify_url": delivery.notify_url,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_error": delivery.last_error,
            "ordered": bool(delivery.ordered),
            "created_at": delivery.created_at,
            "next_attempt_at": delivery.next_attempt_at,
            "delivered_at": delivery.delivered_at,
            "body": json.loads(delivery.body),
        }
        for delivery in tx.deliveries(bank.code)
    ]
    faults = tx.faults(bank.code)
    return {
        "code": bank.code,
        "name": bank.name,
        "account_format": asdict(bank.account_format) | {"length": bank.account_format.length},
        "limits": asdict(effective_limits(tx, bank)),
        "statement_encoding": bank.statement.encoding,
        "faults": asdict(faults) | {"active": faults.active},
        "accounts": [asdict(account) for account in tx.accounts(bank.code)],
        "payouts": [asdict(payout) for payout in tx.payouts(bank.code)],
        "arrivals": [asdict(arrival) for arrival in tx.arrivals(bank.code)],
        "deliveries": deliveries,
    }


def _masked(key: str, value: Any) -> Any:
    """People's data masked; the virtual accounts' own numbers (the escrow accounts buyers pay into, not a
    person's account) stay whole: the page pays into them and tools find accounts by them."""
    if key in VIRTUAL_ACCOUNT_KEYS:
        return value
    if isinstance(value, dict):
        return {name: _masked(name, item) for name, item in value.items()}
    if isinstance(value, list):
        return [_masked(key, item) for item in value]
    return mask_pii_in_data(key, value)


def _masked_state() -> dict[str, Any]:
    simulator = current_simulator()
    with simulator.store.transaction() as tx:
        banks = [bank_state(tx, bank) for bank in simulator.banks.values()]
    return {"banks": _masked("banks", banks)}


@sim_views.get("/")
def index() -> str:
    token = current_app.config[CONFIG_KEY]
    return render_template("index.html", banks=_masked_state()["banks"], token_field=TOKEN_FIELD, control_token=token)


@sim_views.get("/sim/state")
def state() -> Response:
    return jsonify(_masked_state())


def _pay_in_fields() -> dict[str, Any]:
    """JSON or form fields, with `amount` (yuan text) turned into `amount_fen`, checked against the schema."""
    if request.is_json:
        raw = parse_json_object(request.get_data())
    else:
        raw = {name: value.strip() for name, value in request.form.items() if name != TOKEN_FIELD}
        if isinstance(raw.get("amount_fen"), str) and raw["amount_fen"].isdigit():
            raw["amount_fen"] = int(raw["amount_fen"])
    fields = {name: value for name, value in raw.items() if name != "amount"}
    if "amount" in raw:
        if "amount_fen" in raw:
            raise malformed("amount 与 amount_fen 只能填写一个")
        if not isinstance(raw["amount"], str):
            raise malformed('amount 必须是文本形式的金额（元），如 "1234.56"')
        fields["amount_fen"] = parse_yuan(raw["amount"])
    return check(fields, PAY_IN_REQUEST)


def _pay_in() -> dict[str, Any]:
    fields = _pay_in_fields()
    simulator = current_simulator()
    bank = simulator.banks.get(fields["bank"])
    if bank is None:
        raise unknown_bank(fields["bank"])
    arrival, balance_fen = simulator.operations.pay_in(
        bank, fields["account_no"], fields["amount_fen"], fields["payer_name"], fields["payer_account"]
    )
    simulator.worker.wake()
    return {
        "code": "OK",
        "bank": bank.code,
        "bank_reference": arrival.bank_reference,
        "account_no": arrival.account_no,
        "amount_fen": arrival.amount_fen,
        "balance_fen": balance_fen,
    }


@sim_views.post("/sim/pay")
def pay() -> Response | BaseResponse:
    if request.is_json:
        return jsonify(_pay_in())
    try:
        answer = _pay_in()
    except CunguanError as error:
        flash(f"入账失败：{error.message}", "error")
    else:
        flash(
            f"已入账 {format_yuan(answer['amount_fen'])} 到账户 {answer['account_no']}，"
            f"银行流水号 {answer['bank_reference']}，到账通知已排队发送",
            "ok",
        )
    return redirect(url_for("sim_views.index"), code=303)
