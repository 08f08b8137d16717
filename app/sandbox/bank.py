"""The simulation sandbox's bank: the real bank simulator served over HTTP on a free loopback port, and the
sandbox platform's callback endpoint served the same way, each in a background thread.

The platform side talks to the simulator exactly as in production: its jobs (open_virtual_account,
submit_payout, query_payout …) run through the worker in burst mode and call the simulator over signed HTTP;
the simulator's callbacks (account_opened, funds_arrived, payout_result) are signed and POSTed to the sandbox
platform's notify URL. Money comes in through the simulator's /sim/pay control API; a payout is made to fail
with its `payout_failure` fault control. The simulator's back office (open due accounts, settle due payouts,
send callbacks) is run by `settle()` in the simulation's own thread instead of by its background thread, so
that every step ends in a known state without waiting on timers: with zero delays, one `settle()` carries
everything the last step set off to its end."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler

from app.bank_inbox.store import INBOX_MODE, processing_mode
from app.db.models import Job
from app.domain.banks import KnownBank
from app.platform.config import BankEndpoint
from app.platform.runtime import Runtime
from app.queue.worker import run_worker
from app.tools.banksim import SimulatorConfig, create_simulator_app
from app.tools.banksim.context import EXTENSION_KEY, Simulator
from app.tools.banksim.control_token import CONFIG_KEY, TOKEN_HEADER

HOST = "127.0.0.1"
CONTROL_TIMEOUT_S = 10.0
MAX_SETTLE_ROUNDS = 50  # one step sets off a handful of jobs and callbacks; more means something loops
SHUTDOWN_POLL_S = 0.02
OPENING_LIMIT = 1_000_000  # the sandbox opens an account per path in a burst: no pacing, at either end


@dataclass(frozen=True)
class BankSnapshot:
    database: sqlite3.Connection
    failing: dict[str, frozenset[str]]


class BankProblem(Exception):
    """The platform and the bank did not finish a step: a job failed or a callback was refused."""


class _QuietHandler(WSGIRequestHandler):
    def setup(self) -> None:
        """Answers go out at once: without TCP_NODELAY the answer's second write waits for the client's
        delayed acknowledgement (some 40 ms per request on loopback)."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log lines in the simulation's output."""


SANDBOX_THREADS = "sim-"  # the name prefix of every thread the sandbox's servers run (for its logs)


class _SandboxServer(ThreadedWSGIServer):
    """A thread per request, named as the sandbox's, so that its log records are told from the process's."""

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        threading.current_thread().name = f"{SANDBOX_THREADS}request-{self.port}"
        super().process_request_thread(request, client_address)


def _serve(app: Flask) -> tuple[BaseWSGIServer, threading.Thread]:
    server = _SandboxServer(HOST, 0, app, handler=_QuietHandler)
    # shutdown() waits for the serving loop's next poll: a short one closes the sandbox at once (0.5 s by default)
    serve = partial(server.serve_forever, poll_interval=SHUTDOWN_POLL_S)
    thread = threading.Thread(target=serve, name=f"{SANDBOX_THREADS}http-{server.port}", daemon=True)
    thread.start()
    return server, thread


def _callback_app() -> Flask:
    """Only the platform's bank-callback endpoint (its runtime is set once it exists: the runtime needs this
    app's URL). The blueprint is imported here so that the services layer does not load the web layer
    otherwise."""
    from app.bank_inbox import web as callbacks

    app = Flask("cunguan-simulation")
    app.register_blueprint(callbacks.bp)
    return app


@dataclass
class SandboxBank:
    """The simulator and the platform's callback endpoint, running; `close()` stops both."""

    simulator: Simulator
    simulator_url: str
    platform_url: str
    _servers: list[tuple[BaseWSGIServer, threading.Thread]] = field(default_factory=list)
    _failing: dict[str, frozenset[str]] = field(default_factory=dict)
    _http: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def start(
        cls,
        folder: Path,
        bank_keys_dir: Path,
        runtime: Callable[[str, dict[str, BankEndpoint]], Runtime],
        known_banks: Mapping[str, KnownBank],
    ) -> tuple[SandboxBank, Runtime]:
        """Serve the simulator playing `known_banks` (the platform's banks as served: a bank published in the flow or
        a bank's draft among them; own database in `folder`, the banks' keys in `bank_keys_dir`, no delays) and the
        sandbox platform's callback endpoint; `runtime(public_base_url, banks)` builds the sandbox runtime."""
        config = SimulatorConfig(
            db_path=folder / "bank_sim.db",
            keys_dir=bank_keys_dir,
            open_delay_s=0,
            payout_delay_s=0,
            banks=known_banks,
        )
        simulator_app = create_simulator_app(config)
        simulator_server = _serve(simulator_app)
        simulator_url = f"http://{HOST}:{simulator_server[0].port}"
        platform_app = _callback_app()
        platform_server = _serve(platform_app)
        platform_url = f"http://{HOST}:{platform_server[0].port}"
        banks = {
            code: BankEndpoint(code, bank.name, f"{simulator_url}/{code}", OPENING_LIMIT, OPENING_LIMIT)
            for code, bank in known_banks.items()
        }
        rt = runtime(platform_url, banks)
        platform_app.extensions["cunguan.runtime"] = rt
        bank = cls(simulator_app.extensions[EXTENSION_KEY], simulator_url, platform_url)
        bank._servers = [simulator_server, platform_server]
        bank._http.headers[TOKEN_HEADER] = simulator_app.config[CONFIG_KEY]  # the token it was made with
        for code in known_banks:
            bank._control("PUT", f"limits/{code}", {"per_second": OPENING_LIMIT, "per_day": OPENING_LIMIT})
        return bank, rt

    def close(self) -> None:
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(CONTROL_TIMEOUT_S)
        self._servers = []
        self._http.close()

    # --- the simulator's control API (/sim/*) ---------------------------------------------------------

    def _control(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        url = f"{self.simulator_url}/sim/{path}"
        response = self._http.request(method, url, json=payload, timeout=CONTROL_TIMEOUT_S)
        answer = response.json()
        if response.status_code != 200:
            reason = f"{answer.get('message')} {answer.get('details') or ''}".strip()
            raise BankProblem(f"银行模拟器拒绝 {method} /sim/{path}：{reason}")
        return answer

    def pay(self, bank_code: str, account_no: str, amount_fen: int, payer_name: str, payer_account: str) -> None:
        """A transfer into a virtual account; the simulator queues its `funds_arrived` callback."""
        payload = {
            "bank": bank_code,
            "account_no": account_no,
            "amount_fen": amount_fen,
            "payer_name": payer_name,
            "payer_account": payer_account,
        }
        self._control("POST", "pay", payload)

    def fail(self, bank_code: str, faults: frozenset[str]) -> None:
        """From now on the bank does every one of `faults` (`payout_failure`: payouts fail when they settle;
        `freeze_refusal`: freezes are refused), and nothing else."""
        if self._failing.get(bank_code, frozenset()) == faults:
            return
        if faults:
            self._control("PUT", f"faults/{bank_code}", dict.fromkeys(sorted(faults), 1.0))
        else:
            self._control("DELETE", f"faults/{bank_code}", None)
        self._failing[bank_code] = faults

    # --- where simulated paths part ------------------------------------------------------------------

    def snapshot(self) -> BankSnapshot:
        copy = sqlite3.connect(":memory:")
        with closing(sqlite3.connect(self.simulator.store.path)) as live:
            live.backup(copy)
        return BankSnapshot(copy, dict(self._failing))

    def restore(self, saved: BankSnapshot) -> None:
        with closing(sqlite3.connect(self.simulator.store.path)) as live:
            saved.database.backup(live)
        self._failing = dict(saved.failing)

    # --- running both sides until nothing is left to do ----------------------------------------------

    def _back_office(self) -> int:
        """What the simulator's background thread does, once: open due accounts, settle due payouts, send the
        due callbacks (over HTTP to the sandbox platform). Returns how many callbacks were sent."""
        self.simulator.operations.run_due()
        sent = 0
        while self.simulator.worker.sender.deliver_next():
            sent += 1
        return sent

    def settle(self, rt: Runtime, before_jobs: Callable[[], None] = lambda: None) -> None:
        """Run the platform's due jobs and the bank's back office in turn until neither has anything left;
        `before_jobs` runs first in every round (the simulation approves payouts waiting for approval)."""
        for _ in range(MAX_SETTLE_ROUNDS):
            before_jobs()
            ran = run_worker(rt, should_stop=lambda: False, burst=True) if _work_for_workers(rt) else 0
            sent = self._back_office()
            if not ran and not sent:
                return
        raise BankProblem(f"平台与银行往来 {MAX_SETTLE_ROUNDS} 轮仍未结束")

    def check(self, rt: Runtime) -> None:
        """BankProblem when a callback was refused by the platform or a platform job failed."""
        self._check(rt)

    def _check(self, rt: Runtime) -> None:
        with self.simulator.store.transaction() as tx:
            refused = [d for code in self.simulator.banks for d in tx.deliveries(code) if d.status == "pending"]
        if refused:
            first = refused[0]
            raise BankProblem(f"银行通知 {first.type} 未被平台接受：{first.last_error or '尚未送达'}")
        with rt.db.uow() as uow:
            failed = uow.session.scalars(select(Job).where(Job.status.in_(("dead", "pending")), Job.attempts > 0))
            stuck = [job for job in failed if job.last_error]
        if stuck:
            raise BankProblem(f"平台任务 {stuck[0].kind} 失败：{(stuck[0].last_error or '').strip()[:300]}")


def _work_for_workers(rt: Runtime) -> bool:
    """A job is due (or callbacks wait in the inbox, when workers process them): worth a worker run."""
    if processing_mode() == INBOX_MODE:
        return True
    now = rt.clock()
    with rt.db.uow() as uow:
        due = select(Job.id).where(Job.status == "pending", Job.run_after <= now).limit(1)
        return uow.session.scalar(due) is not None
