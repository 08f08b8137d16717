"""Fault controls of the bank simulator: each fault happens, is seeded (same seed and requests, same
outcome), stays with its bank; a timed-out payout is booked and visible through the query endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.banks.gateway import BankOutcomeUnknown, HttpBankGateway, PayoutRequest, PayoutStatus
from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.cli import bank_sim
from app.tools.banksim.faults import REORDER_HOLD_S
from tests.factories import simulated_banks_folder
from tests.integration.simulator_support import InProcessSimulator, make_simulator, running_receiver
from tests.integration.test_bank_simulator import PROJECT_ROOT, SimulatorProcess, _start_simulator, _wait_for

NOTIFICATION_FAULTS = {"drop": 0.25, "duplicate": 0.25, "reorder": True, "delay_ms": 500, "seed": 7}
ARRIVALS = 16


def _simulator(tmp_path: Path, keys_dir: Path, name: str) -> InProcessSimulator:
    return make_simulator(tmp_path / f"{name}.db", keys_dir)


def _set_faults(sim: InProcessSimulator, bank_code: str, **settings: Any) -> dict[str, Any]:
    answer = sim.client.put(f"/sim/faults/{bank_code}", json=settings)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def _arrivals_under_faults(sim: InProcessSimulator, notify_url: str, **faults: Any) -> list[dict[str, Any]]:
    """Open a PAB account, switch faults on, take ARRIVALS payments in; the outbox rows in creation order."""
    account_no = sim.open_account("pab", "VA-faults", notify_url=notify_url)
    _set_faults(sim, "pab", **faults)
    for amount_fen in range(1, ARRIVALS + 1):
        sim.pay_in("pab", account_no, amount_fen)
        sim.clock.advance(0.01)
    return [d for d in sim.deliveries("pab") if d["type"] == "funds_arrived"]


def _plan(deliveries: list[dict[str, Any]]) -> list[tuple[int, str, int, int]]:
    """Per notification (by amount, as ids are random): status, copy, and first-attempt delay in ms."""
    return [
        (d["body"]["amount_fen"], d["status"], d["copy"], round((d["next_attempt_at"] - d["created_at"]) * 1000))
        for d in deliveries
    ]


def test_notification_faults_are_seeded_and_deterministic(tmp_path: Path, keys_dir: Path) -> None:
    first = _plan(
        _arrivals_under_faults(_simulator(tmp_path, keys_dir, "a"), "http://127.0.0.1:9/n", **NOTIFICATION_FAULTS)
    )
    again = _plan(
        _arrivals_under_faults(_simulator(tmp_path, keys_dir, "b"), "http://127.0.0.1:9/n", **NOTIFICATION_FAULTS)
    )
    other_seed = NOTIFICATION_FAULTS | {"seed": 8}
    other = _plan(_arrivals_under_faults(_simulator(tmp_path, keys_dir, "c"), "http://127.0.0.1:9/n", **other_seed))
    assert first == again
    assert first != other
    statuses = [status for _, status, copy, _ in first if copy == 0]
    assert 0 < statuses.count("dropped") < ARRIVALS
    duplicated = [amount for amount, _, copy, _ in first if copy == 1]
    assert duplicated and not {amount for amount, status, _, _ in first if status == "dropped"} & set(duplicated)
    delays = {delay for *_, delay in first}
    assert delays == {500, 500 + round(REORDER_HOLD_S * 1000)}  # all delayed, some also held back


def test_notification_faults_when_delivered(tmp_path: Path, keys_dir: Path) -> None:
    sim = _simulator(tmp_path, keys_dir, "deliver")
    with running_receiver() as receiver:
        outbox = _arrivals_under_faults(sim, receiver.url, **NOTIFICATION_FAULTS)
        sim.clock.advance(0.5)
        while sim.parts.worker.sender.deliver_next():  # what is due now: not the held-back ones
            pass
        early = [body["amount_fen"] for body in receiver.bodies if body["type"] == "funds_arrived"]
        sim.clock.advance(REORDER_HOLD_S)
        while sim.parts.worker.sender.deliver_next():
            pass
        late = [body["amount_fen"] for body in receiver.bodies if body["type"] == "funds_arrived"][len(early) :]
    sent = [d["body"]["amount_fen"] for d in outbox if d["status"] != "dropped"]
    dropped = {d["body"]["amount_fen"] for d in outbox if d["status"] == "dropped"}
    held = {d["body"]["amount_fen"] for d in outbox if d["next_attempt_at"] - d["created_at"] > 0.6} - dropped
    assert sorted(early + late) == sorted(sent)  # duplicates twice, dropped never
    assert not dropped & set(early + late)
    assert set(late) == held and set(early).isdisjoint(held)
    assert early + late != sorted(early + late)  # out of order
    duplicated = [d["body"] for d in outbox if d["copy"] == 1]
    assert all(receiver.bodies.count(body) == 2 for body in duplicated)
    assert {d["status"] for d in sim.deliveries("pab")} == {"delivered", "dropped"}
    page = sim.client.get("/").get_data(as_text=True)
    assert "故障注入（种子 7）" in page and "已丢弃（故障）" in page and "（重复）" in page


def test_faults_stay_with_their_bank_and_clear(tmp_path: Path, keys_dir: Path) -> None:
    sim = _simulator(tmp_path, keys_dir, "banks")
    _set_faults(sim, "pab", drop=1.0, seed=1)
    ceb_account = sim.open_account("ceb", "VA-ceb")
    sim.pay_in("ceb", ceb_account, 100)
    assert {d["status"] for d in sim.deliveries("ceb")} == {"pending"}
    pab_account = sim.open_account("pab", "VA-pab")
    assert pab_account and [d["status"] for d in sim.deliveries("pab")] == ["dropped"]  # account_opened is lost
    cleared = sim.client.delete("/sim/faults/pab").get_json()
    assert cleared["active"] is False and cleared["drop"] == 0
    sim.pay_in("pab", pab_account, 100)
    assert [d["status"] for d in sim.deliveries("pab")] == ["dropped", "pending"]
    faults = {bank["bank"]: bank["active"] for bank in sim.client.get("/sim/faults").get_json()["banks"]}
    assert faults == dict.fromkeys(SIMULATED_BANKS, False)


def test_fault_settings_are_checked(tmp_path: Path, keys_dir: Path) -> None:
    sim = _simulator(tmp_path, keys_dir, "check")
    for bad in ({"drop": 1.5}, {"reorder": 1}, {"delay_ms": -1}, {"seed": 1.5}, {"flood": 0.1}):
        answer = sim.client.put("/sim/faults/icbc", json=bad)
        assert (answer.status_code, answer.get_json()["code"]) == (400, "MALFORMED"), bad
    assert sim.client.put("/sim/faults/xyz", json={"drop": 0.1}).status_code == 404
    assert sim.client.get("/sim/faults/icbc").get_json()["active"] is False


def _open_requests(sim: InProcessSimulator, count: int) -> list[int]:
    return [sim.request_account("icbc", f"VA-{n}").status_code for n in range(count)]


def test_error_5xx_refuses_before_booking_and_is_seeded(tmp_path: Path, keys_dir: Path) -> None:
    outcomes = []
    for name in ("x", "y"):
        sim = _simulator(tmp_path, keys_dir, name)
        _set_faults(sim, "icbc", error_5xx=0.5, seed=3)
        outcomes.append(_open_requests(sim, 12))
        opened = {account["request_id"] for account in sim.state("icbc")["accounts"]}
        assert opened == {f"VA-{n}" for n, status in enumerate(outcomes[-1]) if status == 202}
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {202, 503}
    busy = sim.request_account("icbc", "VA-busy")
    while busy.status_code != 503:
        busy = sim.request_account("icbc", "VA-busy-again")
    assert busy.get_json()["code"] == "SYSTEM_BUSY"
    _set_faults(sim, "icbc", error_5xx=1.0)
    assert sim.call("GET", "/icbc/v1/statements/2026-11-20").status_code == 200  # statements are exempt
    assert sim.call("GET", "/icbc/v1/payouts/PO-x").status_code == 503


def test_cli_with_db_sets_faults_the_running_simulator_uses(tmp_path: Path, keys_dir: Path) -> None:
    sim = _simulator(tmp_path, keys_dir, "cli")
    command = ["faults", "--bank", "pab", "--drop", "1", "--seed", "7", "--db", str(tmp_path / "cli.db")]
    done = CliRunner().invoke(bank_sim, command)
    assert done.exit_code == 0, done.output
    assert "平安银行 pab 故障注入（种子 7）：丢弃通知 100%" in done.output
    sim.open_account("pab", "VA-cli")
    assert [d["status"] for d in sim.deliveries("pab")] == ["dropped"]
    cleared = CliRunner().invoke(bank_sim, ["faults", "--bank", "pab", "--clear", "--db", str(tmp_path / "cli.db")])
    assert cleared.exit_code == 0 and "无故障注入" in cleared.output
    both = CliRunner().invoke(bank_sim, ["faults", "--bank", "pab", "--clear", "--drop", "0.1"])
    assert both.exit_code == 1 and "--clear" in both.output
    limits = CliRunner().invoke(
        bank_sim, ["limits", "--bank", "icbc", "--per-day", "7", "--db", str(tmp_path / "cli.db")]
    )
    assert limits.exit_code == 0 and "每秒 10 笔，每日 7 笔（已调整）" in limits.output
    assert sim.client.get("/sim/limits/icbc").get_json()["per_day"] == 7


def _cli(simulator: SimulatorProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app.tools.banksim", *args, "--url", simulator.url]
    environment = os.environ | {"PYTHONIOENCODING": "utf-8", "BANK_SIM_TOKEN": simulator.token}
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=15, env=environment)


def _state(simulator: SimulatorProcess) -> list[dict[str, Any]]:
    return simulator.http.get(f"{simulator.url}/sim/state", timeout=5).json()["banks"]


def _succeeded(gateway: HttpBankGateway, payout_id: str) -> PayoutStatus | None:
    status = gateway.query_payout(payout_id)
    return status if status.status == "succeeded" else None


def test_payout_timeout_books_the_payout_and_the_query_shows_it(tmp_path: Path, keys_dir: Path) -> None:
    simulator = _start_simulator(tmp_path / "timeout.db", simulated_banks_folder(keys_dir))
    try:
        gateway = HttpBankGateway("pab", f"{simulator.url}/pab", (keys_dir / "platform.key.pem").read_bytes(), 0.5)
        gateway.open_virtual_account("VA-timeout", "存管-超时", "http://127.0.0.1:9/n")

        def opened_account() -> str | None:
            pab = next(bank for bank in _state(simulator) if bank["code"] == "pab")
            return pab["accounts"][0]["account_no"] if pab["accounts"] else None

        account_no = _wait_for(opened_account, "the PAB account")
        payment = {"bank": "pab", "account_no": account_no, "amount_fen": 50000, "payer_name": "张三"}
        simulator.http.post(
            f"{simulator.url}/sim/pay", json=payment | {"payer_account": "6222020200112233445"}, timeout=5
        )
        switched = _cli(simulator, "faults", "--bank", "pab", "--payout-timeout", "1", "--timeout-hold-ms", "1500")
        assert switched.returncode == 0 and "付款应答超时 100%（挂起 1500 毫秒）" in switched.stdout, switched.stderr
        payout = PayoutRequest("PO-timeout", account_no, 20000, "李四", "6222020200998877665", "http://127.0.0.1:9/n")
        started = time.monotonic()
        with pytest.raises(BankOutcomeUnknown):
            gateway.submit_payout(payout)
        assert time.monotonic() - started < 1.4  # the client gave up before the bank answered
        status = _wait_for(lambda: _succeeded(gateway, "PO-timeout"), "the booked payout to succeed")
        assert status.bank_reference.startswith("PABP") and status.failure_reason is None
        assert _cli(simulator, "faults", "--bank", "pab", "--clear").returncode == 0
        assert gateway.submit_payout(payout) == status.bank_reference  # same payout, never paid twice
        pab = next(bank for bank in _state(simulator) if bank["code"] == "pab")
        assert [(p["payout_id"], p["submissions"]) for p in pab["payouts"]] == [("PO-timeout", 2)]
        assert pab["accounts"][0]["balance_fen"] == 30000
    finally:
        simulator.stop()
