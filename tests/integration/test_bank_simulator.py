"""The bank simulator as a real process, driven through HttpBankGateway, with a signed-callback receiver."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker

from app.banks.gateway import (
    BankOutcomeUnknown,
    BankRejected,
    BankUnavailable,
    HttpBankGateway,
    PayoutRequest,
    PayoutStatus,
)
from app.banks.protocol import BANK_PREFIX, PLATFORM_PREFIX, encode_json, sign_headers, verify_request
from app.platform.errors import CunguanError
from app.tools.banksim.control_token import TOKEN_HEADER, read_control_token
from app.tools.banksim.delivery import backoff_s
from tests.factories import bank_signing_key, simulated_banks_folder
from tests.ports import port_of, reserve_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTIFICATION_SCHEMA = json.loads(
    (PROJECT_ROOT / "app" / "schemas" / "bank-notification.schema.json").read_text(encoding="utf-8")
)
PAYEE_ACCOUNT = "6222020200998877665"
WAIT_S = 5.0


def _wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --- the platform's side, as small as a test needs: a receiver of signed callbacks ------------------


@dataclass
class Callback:
    body: dict[str, Any]
    nonce: str
    answered: int


@dataclass
class Receiver:
    """Verifies X-Bank signatures with the bank's public key, records every verified attempt, answers OK
    (or 500 while `failures_left` > 0). `/broken/...` always answers 500, `/slow/...` answers late."""

    bank_public_key_pem: bytes
    url: str = ""
    callbacks: list[Callback] = field(default_factory=list)
    rejected: int = 0
    failures_left: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def notify_url(self) -> str:
        return f"{self.url}/api/banks/ceb/notifications"

    def delivered(self, notification_type: str, **expected: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [
                callback.body
                for callback in self.callbacks
                if callback.answered == 200
                and callback.body["type"] == notification_type
                and all(callback.body.get(name) == value for name, value in expected.items())
            ]

    def wait_delivered(self, notification_type: str, **expected: Any) -> dict[str, Any]:
        return _wait_for(lambda: self.delivered(notification_type, **expected), notification_type)[0]

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        if path.startswith("/broken/"):
            return 500, {"code": "INTERNAL"}
        if path.startswith("/slow/"):
            time.sleep(1.0)
            return 202, {"code": "ACCEPTED"}
        try:
            signed = verify_request(BANK_PREFIX, self.bank_public_key_pem, headers, body)
        except CunguanError as error:
            with self.lock:
                self.rejected += 1
            return 401, error.to_dict()
        with self.lock:
            status = 500 if self.failures_left > 0 else 200
            self.failures_left -= status == 500
            self.callbacks.append(Callback(json.loads(body), signed.nonce, status))
        return status, {"code": "OK"} if status == 200 else {"code": "TRY_LATER"}


class _ReceiverHandler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, answer = self.server.receiver.handle(self.path, self.headers, body)  # type: ignore[attr-defined]
        payload = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client of /slow/ gave up waiting, as intended

    do_POST = _answer
    do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


# --- fixtures --------------------------------------------------------------------------------------


@dataclass
class SimulatorProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port_reservation: socket.socket  # held while the simulator runs (tests/ports.py)
    keys_dir: Path  # its own copy of the banks' keys, where it keeps its control token
    http: requests.Session = field(default_factory=requests.Session)  # a local tool: sends the token

    @property
    def token(self) -> str:
        return read_control_token(self.keys_dir)

    def state(self) -> dict[str, Any]:
        banks = self.http.get(f"{self.url}/sim/state", timeout=5).json()["banks"]
        return next(bank for bank in banks if bank["code"] == "ceb")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.port_reservation.close()
        self.http.close()


def _start_simulator(db_path: Path, bank_keys_dir: Path) -> SimulatorProcess:
    """A simulator process with a copy of the banks' keys in `db_path`'s folder: its control token file is its
    own, and nothing is written to the shared key folders."""
    reservation = reserve_port()
    port = port_of(reservation)
    log_path = db_path.with_suffix(f".{port}.log")
    own_keys = shutil.copytree(bank_keys_dir, db_path.with_suffix(f".{port}.keys"))
    command = [sys.executable, "-m", "app.tools.banksim", "serve", "--port", str(port), "--db", str(db_path)]
    command += ["--keys-dir", str(own_keys), "--open-delay", "0.1", "--payout-delay", "0.1"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    simulator = SimulatorProcess(f"http://127.0.0.1:{port}", process, log_path, reservation, own_keys)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"simulator exited: {log_path.read_text(errors='replace')}")
        token = simulator.token
        if not token:
            return False
        simulator.http.headers[TOKEN_HEADER] = token
        try:
            return simulator.http.get(f"{simulator.url}/sim/state", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        _wait_for(answers, "the simulator to answer", timeout_s=15)
    except BaseException:
        simulator.stop()
        raise
    return simulator


@pytest.fixture(scope="module")
def receiver(keys_dir: Path) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    server.daemon_threads = True
    server.receiver = Receiver((keys_dir / "banks" / "ceb.pub.pem").read_bytes())  # type: ignore[attr-defined]
    server.receiver.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.receiver  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[SimulatorProcess]:
    running = _start_simulator(tmp_path_factory.mktemp("sim") / "bank_sim.db", simulated_banks_folder(keys_dir))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def platform_key(keys_dir: Path) -> bytes:
    return (keys_dir / "platform.key.pem").read_bytes()


@pytest.fixture(scope="module")
def gateway(simulator: SimulatorProcess, platform_key: bytes) -> HttpBankGateway:
    return HttpBankGateway("ceb", f"{simulator.url}/ceb", platform_key, timeout_s=5)


# --- helpers ---------------------------------------------------------------------------------------


def _schema_valid(body: dict[str, Any]) -> bool:
    return Draft202012Validator(NOTIFICATION_SCHEMA, format_checker=FormatChecker()).is_valid(body)


def _open_account(gateway: HttpBankGateway, receiver: Receiver, name: str = "存管-测试") -> str:
    request_id = f"VA-{uuid.uuid4().hex[:12]}"
    gateway.open_virtual_account(request_id, name, receiver.notify_url)
    return receiver.wait_delivered("account_opened", request_id=request_id)["account_no"]


def _pay_in(simulator: SimulatorProcess, account_no: str, amount: str) -> dict[str, Any]:
    payload = {"bank": "ceb", "account_no": account_no, "amount": amount, "payer_name": "张三"}
    response = simulator.http.post(f"{simulator.url}/sim/pay", json=payload | {"payer_account": "6222020200112233445"})
    assert response.status_code == 200, response.text
    return response.json()


def _funded_account(gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess, amount: str) -> str:
    account_no = _open_account(gateway, receiver)
    reference = _pay_in(simulator, account_no, amount)["bank_reference"]
    receiver.wait_delivered("funds_arrived", bank_reference=reference)
    return account_no


def _balance_fen(simulator: SimulatorProcess, account_no: str) -> int:
    (account,) = [account for account in simulator.state()["accounts"] if account["account_no"] == account_no]
    return account["balance_fen"]


def _payout(account_no: str, amount_fen: int, receiver: Receiver, **change: Any) -> PayoutRequest:
    fields = {
        "payout_id": f"PO-{uuid.uuid4().hex[:12]}",
        "account_no": account_no,
        "amount_fen": amount_fen,
        "payee_name": "李四",
        "payee_account": PAYEE_ACCOUNT,
        "notify_url": receiver.notify_url,
    }
    return PayoutRequest(**(fields | change))


def _signed_call(
    simulator: SimulatorProcess, method: str, path: str, key: bytes, payload: dict[str, Any] | None, **sign: Any
) -> requests.Response:
    body = b"" if payload is None else encode_json(payload)
    headers = sign_headers(PLATFORM_PREFIX, key, body, **sign) | {"Content-Type": "application/json"}
    return requests.request(method, f"{simulator.url}{path}", data=body, headers=headers, timeout=5)


# --- tests -----------------------------------------------------------------------------------------


def test_open_account_sends_signed_account_opened_once(
    gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess
) -> None:
    request_id = f"VA-{uuid.uuid4().hex[:12]}"
    before = datetime.now(UTC)
    stamp = gateway.open_virtual_account(request_id, "存管-王五-房屋买卖", receiver.notify_url)
    after = datetime.now(UTC)
    assert stamp is not None and before - timedelta(milliseconds=1) <= stamp <= after, "the bank stamps on receipt"
    repeat = gateway.open_virtual_account(request_id, "存管-王五-房屋买卖", receiver.notify_url)  # idempotent
    assert repeat == stamp, "a repeat answers the stamp of the request the bank counted"
    opened = receiver.wait_delivered("account_opened", request_id=request_id)
    assert opened["account_name"] == "存管-王五-房屋买卖"
    assert opened["account_no"].startswith("6226") and len(opened["account_no"]) == 16
    assert opened["account_no"].isdigit()
    assert _schema_valid(opened)
    time.sleep(0.3)  # a second opening would be due by now
    assert len(receiver.delivered("account_opened", request_id=request_id)) == 1
    assert [a["request_id"] for a in simulator.state()["accounts"]].count(request_id) == 1
    with pytest.raises(BankRejected) as caught:
        gateway.open_virtual_account(request_id, "另一个户名", receiver.notify_url)
    assert caught.value.code == "CONFLICT"


def test_pay_in_sends_funds_arrived_with_amount_in_fen(
    gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess
) -> None:
    account_no = _open_account(gateway, receiver)
    answer = _pay_in(simulator, account_no, "1,234.56")
    assert answer["amount_fen"] == 123456 and answer["balance_fen"] == 123456
    arrived = receiver.wait_delivered("funds_arrived", bank_reference=answer["bank_reference"])
    assert arrived["account_no"] == account_no
    assert arrived["amount_fen"] == 123456
    assert arrived["payer_name"] == "张三"
    assert arrived["arrived_at"].endswith("Z")
    assert _schema_valid(arrived)
    assert _balance_fen(simulator, account_no) == 123456


def test_pay_in_form_redirects_and_page_shows_account(
    gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess
) -> None:
    account_no = _open_account(gateway, receiver, name="存管-赵六")
    browser = requests.Session()  # opens the address `serve` prints, then posts the page's form
    assert browser.get(f"{simulator.url}/", params={"token": simulator.token}, timeout=5).status_code == 200
    form = {"sim_token": simulator.token, "bank": "ceb", "account_no": account_no, "amount": "88.8"}
    response = browser.post(
        f"{simulator.url}/sim/pay", data=form | {"payer_name": "钱七", "payer_account": "6222020200112233445"}
    )
    assert response.status_code == 200 and response.history[0].status_code == 303  # back to the page
    receiver.wait_delivered("funds_arrived", account_no=account_no, amount_fen=8880)
    page = browser.get(f"{simulator.url}/", timeout=5)  # the session remembers the token
    assert page.status_code == 200
    assert "中国光大银行" in page.text and account_no in page.text and "存管-赵六" in page.text
    assert "¥88.80" in page.text and "模拟入账" in page.text


def test_pay_in_to_unknown_account_is_refused(simulator: SimulatorProcess) -> None:
    payload = {"bank": "ceb", "account_no": "6226999999999999", "amount_fen": 100, "payer_name": "张三"}
    response = simulator.http.post(f"{simulator.url}/sim/pay", json=payload | {"payer_account": "6222020200112233445"})
    assert response.status_code == 404
    assert response.json()["code"] == "ACCOUNT_NOT_FOUND"


def test_payout_succeeds_once_and_debits(
    gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess
) -> None:
    account_no = _funded_account(gateway, receiver, simulator, "1000.00")
    payout = _payout(account_no, 30000, receiver)
    bank_reference = gateway.submit_payout(payout)
    assert gateway.submit_payout(payout) == bank_reference  # same content: same answer
    result = receiver.wait_delivered("payout_result", payout_id=payout.payout_id)
    assert result == result | {"bank_reference": bank_reference, "status": "succeeded", "failure_reason": None}
    assert _schema_valid(result)
    assert gateway.submit_payout(payout) == bank_reference  # repeat after completion: still no second payout
    time.sleep(0.3)
    assert _balance_fen(simulator, account_no) == 70000
    assert len(receiver.delivered("payout_result", payout_id=payout.payout_id)) == 1
    assert gateway.query_payout(payout.payout_id) == PayoutStatus(payout.payout_id, "succeeded", bank_reference, None)
    with pytest.raises(BankRejected) as caught:
        gateway.submit_payout(_payout(account_no, 30001, receiver, payout_id=payout.payout_id))
    assert caught.value.code == "CONFLICT"


def test_payout_beyond_balance_fails_with_reason(
    gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess
) -> None:
    account_no = _funded_account(gateway, receiver, simulator, "100.00")
    payout = _payout(account_no, 10001, receiver)
    bank_reference = gateway.submit_payout(payout)
    assert gateway.query_payout(payout.payout_id).status in ("processing", "failed")
    result = receiver.wait_delivered("payout_result", payout_id=payout.payout_id)
    assert (result["status"], result["failure_reason"]) == ("failed", "余额不足")
    assert _schema_valid(result)
    assert _balance_fen(simulator, account_no) == 10000
    expected = PayoutStatus(payout.payout_id, "failed", bank_reference, "余额不足")
    assert gateway.query_payout(payout.payout_id) == expected


def test_query_and_payout_errors_are_rejections(gateway: HttpBankGateway, receiver: Receiver) -> None:
    with pytest.raises(BankRejected) as unknown_payout:
        gateway.query_payout("PO-never-sent")
    assert unknown_payout.value.code == "NOT_FOUND"
    with pytest.raises(BankRejected) as unknown_account:
        gateway.submit_payout(_payout("6226000000000000", 100, receiver))
    assert unknown_account.value.code == "ACCOUNT_NOT_FOUND"


def test_unsigned_forged_stale_and_malformed_requests(
    simulator: SimulatorProcess, keys_dir: Path, platform_key: bytes
) -> None:
    payload = {"request_id": "VA-forged", "account_name": "伪造", "notify_url": "http://127.0.0.1:9/x"}
    unsigned = requests.post(f"{simulator.url}/ceb/v1/virtual-accounts", json=payload, timeout=5)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "BAD_SIGNATURE")
    bank_key = bank_signing_key(keys_dir)
    forged = _signed_call(simulator, "POST", "/ceb/v1/virtual-accounts", bank_key, payload)
    assert (forged.status_code, forged.json()["code"]) == (401, "BAD_SIGNATURE")
    stale = _signed_call(simulator, "POST", "/ceb/v1/virtual-accounts", platform_key, payload, now=time.time() - 400)
    assert (stale.status_code, stale.json()["code"]) == (401, "STALE_TIMESTAMP")
    bad_amount = {"payout_id": "PO-x", "account_no": "6226000000000000", "amount_fen": 1.5, "payee_name": "李四"}
    bad_amount |= {"payee_account": PAYEE_ACCOUNT, "notify_url": "http://127.0.0.1:9/x"}
    malformed = _signed_call(simulator, "POST", "/ceb/v1/payouts", platform_key, bad_amount)
    assert (malformed.status_code, malformed.json()["code"]) == (400, "MALFORMED")
    unknown = _signed_call(simulator, "GET", "/xyz/v1/payouts/PO-x", platform_key, None)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "UNKNOWN_BANK")
    assert "VA-forged" not in [account["request_id"] for account in simulator.state()["accounts"]]


def test_replayed_nonce_is_rejected(simulator: SimulatorProcess, platform_key: bytes) -> None:
    headers = sign_headers(PLATFORM_PREFIX, platform_key, b"")
    first = requests.get(f"{simulator.url}/ceb/v1/payouts/PO-replay", headers=headers, timeout=5)
    assert (first.status_code, first.json()["code"]) == (404, "NOT_FOUND")  # authenticated, nothing there
    replay = requests.get(f"{simulator.url}/ceb/v1/payouts/PO-replay", headers=headers, timeout=5)
    assert (replay.status_code, replay.json()["code"]) == (401, "REPLAYED_NONCE")


def test_callback_is_retried_after_an_error_with_fresh_signature(
    gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess
) -> None:
    account_no = _open_account(gateway, receiver)
    with receiver.lock:
        receiver.failures_left = 1
    reference = _pay_in(simulator, account_no, "5.00")["bank_reference"]
    arrived = receiver.wait_delivered("funds_arrived", bank_reference=reference)
    with receiver.lock:
        attempts = [c for c in receiver.callbacks if c.body["notification_id"] == arrived["notification_id"]]
    assert [attempt.answered for attempt in attempts] == [500, 200]
    assert attempts[0].body == attempts[1].body
    assert attempts[0].nonce != attempts[1].nonce

    def delivered() -> list[dict[str, Any]]:  # the simulator records the outcome after the receiver answered
        deliveries = simulator.state()["deliveries"]
        return [
            d for d in deliveries if d["notification_id"] == arrived["notification_id"] and d["status"] == "delivered"
        ]

    (delivery,) = _wait_for(delivered, "the delivery to be recorded")
    assert delivery["attempts"] >= 2
    assert receiver.rejected == 0


def test_pending_deliveries_resume_after_restart(
    tmp_path: Path, keys_dir: Path, platform_key: bytes, receiver: Receiver
) -> None:
    first = _start_simulator(tmp_path / "restart.db", simulated_banks_folder(keys_dir))
    try:
        gateway = HttpBankGateway("ceb", f"{first.url}/ceb", platform_key)
        request_id = f"VA-{uuid.uuid4().hex[:12]}"
        gateway.open_virtual_account(request_id, "存管-重启", f"{receiver.url}/broken/notifications")
        _wait_for(lambda: [d for d in first.state()["deliveries"] if d["attempts"] >= 1], "a failed delivery")
    finally:
        first.stop()
    second = _start_simulator(tmp_path / "restart.db", simulated_banks_folder(keys_dir))
    try:
        (delivery,) = second.state()["deliveries"]
        assert delivery["status"] == "pending" and delivery["attempts"] >= 1
        assert delivery["last_error"].startswith("HTTP 500")
        (account,) = second.state()["accounts"]
        assert account["status"] == "open" and account["request_id"] == request_id
        _wait_for(lambda: second.state()["deliveries"][0]["attempts"] > delivery["attempts"], "a retry")
    finally:
        second.stop()


def test_pay_command_against_running_simulator(
    gateway: HttpBankGateway, receiver: Receiver, simulator: SimulatorProcess
) -> None:
    account_no = _open_account(gateway, receiver)
    command = [sys.executable, "-m", "app.tools.banksim", "pay", "--bank", "ceb", "--account", account_no]
    command += ["--amount", "1234567.89", "--payer-name", "孙八", "--url", simulator.url]
    environment = os.environ | {"PYTHONIOENCODING": "utf-8", "BANK_SIM_KEYS_DIR": str(simulator.keys_dir)}
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=15, env=environment)
    assert done.returncode == 0, done.stderr
    assert "¥1,234,567.89" in done.stdout
    arrived = receiver.wait_delivered("funds_arrived", account_no=account_no)
    assert arrived["amount_fen"] == 123456789 and arrived["payer_name"] == "孙八"
    assert arrived["bank_reference"] in done.stdout
    command[command.index(account_no)] = "6226000000000001"
    failed = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=15, env=environment)
    assert failed.returncode != 0
    assert "账户不存在" in failed.stderr


def test_gateway_failure_kinds(receiver: Receiver, platform_key: bytes) -> None:
    with reserve_port() as unused:  # bound, never listening: connections are refused, and no one else gets it
        closed = HttpBankGateway("ceb", f"http://127.0.0.1:{port_of(unused)}", platform_key, timeout_s=2)
        with pytest.raises(BankUnavailable):
            closed.open_virtual_account("VA-1", "名", receiver.notify_url)
    broken = HttpBankGateway("ceb", f"{receiver.url}/broken", platform_key, timeout_s=2)
    with pytest.raises(BankOutcomeUnknown) as server_error:
        broken.submit_payout(_payout("6226000000000000", 100, receiver))
    assert server_error.value.details["http_status"] == 500
    slow = HttpBankGateway("ceb", f"{receiver.url}/slow", platform_key, timeout_s=0.3)
    with pytest.raises(BankOutcomeUnknown):
        slow.submit_payout(_payout("6226000000000000", 100, receiver))


def test_backoff_doubles_from_half_a_second_up_to_thirty() -> None:
    assert [backoff_s(attempts) for attempts in (1, 2, 3, 4, 7, 8, 100)] == [0.5, 1.0, 2.0, 4.0, 30.0, 30.0, 30.0]
