"""The bank simulator in-process with a hand-driven clock: signed calls through Flask's test client,
background work (openings, payouts, deliveries) run by the test, not by a thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from app.banks.protocol import PLATFORM_PREFIX, encode_json, sign_headers
from app.platform.config import BankEndpoint
from app.platform.runtime import Runtime
from app.tools.banksim import SimulatorConfig, create_simulator_app
from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.context import EXTENSION_KEY, Simulator
from app.tools.banksim.sim_views import bank_state
from tests.factories import simulated_banks_folder

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 20, 10, 0, 0, tzinfo=SHANGHAI).timestamp()
PAYER_NAME = "张三"
PAYER_ACCOUNT = "6222020200112233445"
NOTIFY_URL = "http://127.0.0.1:9/api/banks/notifications"


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class InProcessSimulator:
    client: FlaskClient
    parts: Simulator
    clock: FakeClock
    platform_key: bytes

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> TestResponse:
        """A request signed with the platform key (real time: the signature check uses the real clock)."""
        body = b"" if payload is None else encode_json(payload)
        headers = sign_headers(PLATFORM_PREFIX, self.platform_key, body) | {"Content-Type": "application/json"}
        return self.client.open(path, method=method, data=body, headers=headers)

    def state(self, bank_code: str) -> dict[str, Any]:
        """The bank's state unmasked, read in-process (/sim/state serves it with people's data masked)."""
        with self.parts.store.transaction() as tx:
            return bank_state(tx, SIMULATED_BANKS[bank_code])

    def request_account(self, bank_code: str, request_id: str, **extra: Any) -> TestResponse:
        payload = {"request_id": request_id, "account_name": "存管-测试", "notify_url": NOTIFY_URL} | extra
        return self.call("POST", f"/{bank_code}/v1/virtual-accounts", payload)

    def open_account(self, bank_code: str, request_id: str, **extra: Any) -> str:
        answer = self.request_account(bank_code, request_id, **extra)
        assert answer.status_code == 202, answer.get_json()
        self.parts.operations.run_due()
        (account,) = [a for a in self.state(bank_code)["accounts"] if a["request_id"] == request_id]
        return account["account_no"]

    def pay_in(
        self, bank_code: str, account_no: str, amount_fen: int, payer_name: str = PAYER_NAME, **extra: str
    ) -> dict[str, Any]:
        payload = {"bank": bank_code, "account_no": account_no, "amount_fen": amount_fen, "payer_name": payer_name}
        answer = self.client.post("/sim/pay", json=payload | {"payer_account": PAYER_ACCOUNT} | extra)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def deliveries(self, bank_code: str) -> list[dict[str, Any]]:
        return self.state(bank_code)["deliveries"]


def make_simulator(db_path: Path, keys_dir: Path, clock: FakeClock | None = None) -> InProcessSimulator:
    clock = clock or FakeClock()
    banks_folder = simulated_banks_folder(keys_dir)  # `keys_dir` is the platform's; the banks keep their own
    config = SimulatorConfig(db_path=db_path, keys_dir=banks_folder, open_delay_s=0, payout_delay_s=0, clock=clock)
    app = create_simulator_app(config)
    client = app.test_client()
    client.environ_base["HTTP_X_SIM_TOKEN"] = config.control_token  # a local tool: every request carries it
    return InProcessSimulator(
        client, app.extensions[EXTENSION_KEY], clock, (keys_dir / "platform.key.pem").read_bytes()
    )


@dataclass
class Receiver:
    """Records the bodies of the callbacks it gets, in arrival order, and answers OK."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.receiver.bodies.append(json.loads(body))  # type: ignore[attr-defined]
        payload = b'{"code":"OK"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/notify")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.receiver  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving(wsgi_app: Any) -> Iterator[str]:
    """`wsgi_app` served over HTTP on a free local port while the block runs; yields its base URL."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def bank_over_http(rt: Runtime, keys_dir: Path, folder: Path, bank_code: str = "ceb") -> Iterator[InProcessSimulator]:
    """The simulated bank (its own keys, its own database in `folder`) served over HTTP, and `rt`'s bank
    `bank_code` pointed at it: the platform's gateway calls reach it, signed, as in production."""
    sim = make_simulator(folder / "bank_sim.db", keys_dir)
    with serving(sim.client.application) as url:
        saved = rt.banks.get(bank_code)
        rt.banks[bank_code] = BankEndpoint(bank_code, SIMULATED_BANKS[bank_code].name, f"{url}/{bank_code}")
        try:
            yield sim
        finally:
            if saved is not None:
                rt.banks[bank_code] = saved
