"""Start the platform (web + worker) and the bank simulator as real processes on loopback ports reserved for
them (tests/ports.py)."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.control_token import TOKEN_HEADER, read_control_token
from tests.conftest import csrf_token
from tests.factories import simulated_banks_folder
from tests.ports import port_of, reserve_port

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
# gunicorn with the production settings (add `-w N -b HOST:PORT wsgi:app`). No control socket: its default path
# ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl) is one per user, which two servers of a test, and those of any
# other test process, would take from each other.
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--no-control-socket"]


def wait_until(condition: Callable[[], object], timeout_s: float = 30.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@dataclass
class Stack:
    workdir: Path
    database_url: str
    keys_dir: Path
    web_port: int = field(init=False)
    sim_port: int = field(init=False)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    reservations: list[socket.socket] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.web_port = self.reserve_port()
        self.sim_port = self.reserve_port()

    def reserve_port(self) -> int:
        """A loopback port held until `stop()`, for a server process of this stack to bind."""
        self.reservations.append(reserve_port())
        return port_of(self.reservations[-1])

    @property
    def bank_keys_dir(self) -> Path:
        """The simulated banks' own key folder (the simulator's), paired with the platform's `keys_dir`."""
        return simulated_banks_folder(self.keys_dir)

    @property
    def sim_db(self) -> Path:
        return self.workdir / "bank_sim.db"

    @contextmanager
    def sim_rows(self) -> Iterator[sqlite3.Connection]:
        """The simulator's own SQLite file, read-only (it runs in WAL mode: reading never blocks it): what it
        holds unmasked, where its /sim/state masks people's data."""
        with closing(sqlite3.connect(f"file:{self.sim_db}?mode=ro", uri=True, timeout=30)) as connection:
            connection.row_factory = sqlite3.Row
            yield connection

    def sim_control(self, method: str, path: str, payload: dict[str, Any] | None = None) -> requests.Response:
        """A call to the simulator's /sim/ control API with the control token it wrote at start."""
        headers = {TOKEN_HEADER: read_control_token(self.bank_keys_dir)}
        return requests.request(method, f"{self.sim_url}/sim/{path}", json=payload, headers=headers, timeout=30)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CUNGUAN_INSTANCE_PATH": str(self.workdir / "instance"),
            "CUNGUAN_KEYS_DIR": str(self.keys_dir),
            "BANK_SIM_KEYS_DIR": str(self.bank_keys_dir),  # the simulator's token file, for `bank-sim pay`
            "CUNGUAN_SECRET_KEY": "e2e-secret",
            "DATABASE_URL": self.database_url,
            # every bank at this stack's simulator: none at the default address (another stack's, or `make run`'s)
            **{f"CUNGUAN_BANK_{code.upper()}_URL": f"{self.sim_url}/{code}" for code in SIMULATED_BANKS},
            "CUNGUAN_PUBLIC_URL": self.web_url,
            "PYTHONUNBUFFERED": "1",
            # the payout watchdog asks the bank seconds, not minutes, after a payout went out: a run's jobs finish
            "CUNGUAN_PAYOUT_CHECK_DELAY_S": "3",
        }

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FLASK, *args], cwd=ROOT, env=self.env(), capture_output=True, text=True, check=check, timeout=120
        )

    def spawn(self, name: str, command: list[str], **extra_env: str) -> None:
        """Start `command` as one of this stack's processes (stopped by `stop()`), its output in `<name>.log`."""
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=ROOT, env={**self.env(), **extra_env}, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append((name, process))

    def start(self) -> dict[str, str]:
        """Migrate, create demo users (returns their passwords), start simulator, web and worker."""
        self.flask("db", "upgrade")
        output = self.flask("user", "create-demo").stdout
        passwords = dict(re.findall(r"用户名 (\w+)\s+密码 (\S+)", output))
        sim_db = str(self.sim_db)
        self.spawn(
            "simulator",
            [
                sys.executable,
                "-m",
                "app.tools.banksim",
                "serve",
                "--port",
                str(self.sim_port),
                "--db",
                sim_db,
                "--keys-dir",
                str(self.bank_keys_dir),
                "--open-delay",
                "0.2",
                "--payout-delay",
                "0.2",
            ],
        )
        self.spawn("web", [*FLASK, "run", "--port", str(self.web_port), "--no-debugger", "--no-reload"])
        self.spawn("worker", [*FLASK, "worker", "--poll", "0.2"])
        wait_until(lambda: requests.get(f"{self.web_url}/healthz", timeout=1).ok, what="web app")
        wait_until(lambda: self.sim_control("GET", "state").ok, what="bank simulator")
        return passwords

    def stop(self) -> None:
        for _, process in self.processes:
            process.terminate()
        for _, process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for reservation in self.reservations:
            reservation.close()
        self.reservations.clear()

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{(self.workdir / f'{name}.log').read_text(errors='replace')[-4000:]}"
            for name, _ in self.processes
        )


def login(url: str, username: str, password: str) -> requests.Session:
    """A browser's session logged in at the web app `url` (CSRF token, cookie, the page it lands on)."""
    session = requests.Session()
    token = csrf_token(session.get(f"{url}/login", timeout=10).text)
    answer = session.post(
        f"{url}/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    # land on the page the login redirects to, as a browser does: the fresh session (login clears the old one)
    # gets its CSRF token now, not from two concurrent requests made with it later, each setting a token of its
    # own in the one cookie jar (the loser's form post would then be refused with a 400)
    assert session.get(urljoin(f"{url}/login", answer.headers["Location"]), timeout=10).ok
    return session
