"""Simulator-only control endpoints, behind the control token like the rest of /sim/ (control_token.py; serve
on 127.0.0.1; cross-site requests are refused, see cross_site.py):
fault settings and opening-limit overrides per bank, kept in the simulator's database."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.tools.banksim.banks import SimulatedBank
from app.tools.banksim.context import current_simulator
from app.tools.banksim.errors import unknown_bank
from app.tools.banksim.faults import FaultSettings
from app.tools.banksim.limits import effective_limits
from app.tools.banksim.store import Transaction
from app.tools.banksim.validation import LIMITS_REQUEST, check, parse_json_object

sim_controls = Blueprint("sim_controls", __name__, url_prefix="/sim")


def _bank(bank_code: str) -> SimulatedBank:
    bank = current_simulator().banks.get(bank_code)
    if bank is None:
        raise unknown_bank(bank_code)
    return bank


def faults_view(tx: Transaction, bank: SimulatedBank) -> dict[str, Any]:
    settings = tx.faults(bank.code)
    return {"bank": bank.code, "active": settings.active, **asdict(settings)}


def limits_view(tx: Transaction, bank: SimulatedBank) -> dict[str, Any]:
    return {"bank": bank.code, **asdict(effective_limits(tx, bank))}


def _faults_answer(bank: SimulatedBank) -> dict[str, Any]:
    with current_simulator().store.transaction() as tx:
        return faults_view(tx, bank)


def _limits_answer(bank: SimulatedBank) -> dict[str, Any]:
    with current_simulator().store.transaction() as tx:
        return limits_view(tx, bank)


@sim_controls.get("/faults")
def all_faults() -> Response:
    return jsonify(banks=[_faults_answer(bank) for bank in current_simulator().banks.values()])


@sim_controls.get("/faults/<bank_code>")
def bank_faults(bank_code: str) -> Response:
    return jsonify(_faults_answer(_bank(bank_code)))


@sim_controls.put("/faults/<bank_code>")
def set_faults(bank_code: str) -> Response:
    """Replace the bank's faults (fields left out are off) and restart the seeded draw sequences."""
    bank = _bank(bank_code)
    settings = FaultSettings.from_dict(parse_json_object(request.get_data()))
    simulator = current_simulator()
    with simulator.store.transaction() as tx:
        tx.set_faults(bank.code, settings, simulator.operations.clock())
    return jsonify(_faults_answer(bank))


@sim_controls.delete("/faults/<bank_code>")
def clear_faults(bank_code: str) -> Response:
    bank = _bank(bank_code)
    with current_simulator().store.transaction() as tx:
        tx.clear_faults(bank.code)
    return jsonify(_faults_answer(bank))


@sim_controls.get("/limits")
def all_limits() -> Response:
    return jsonify(banks=[_limits_answer(bank) for bank in current_simulator().banks.values()])


@sim_controls.get("/limits/<bank_code>")
def bank_limits(bank_code: str) -> Response:
    return jsonify(_limits_answer(_bank(bank_code)))


@sim_controls.put("/limits/<bank_code>")
def set_limits(bank_code: str) -> Response:
    bank = _bank(bank_code)
    data = check(parse_json_object(request.get_data()), LIMITS_REQUEST)
    with current_simulator().store.transaction() as tx:
        tx.set_limits(bank.code, data["per_second"], data["per_day"])
    return jsonify(_limits_answer(bank))


@sim_controls.delete("/limits/<bank_code>")
def clear_limits(bank_code: str) -> Response:
    bank = _bank(bank_code)
    with current_simulator().store.transaction() as tx:
        tx.clear_limits(bank.code)
    return jsonify(_limits_answer(bank))
