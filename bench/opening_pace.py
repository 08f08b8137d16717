"""Account opening at the bank's pace, end to end: `flask contracts import` of stock rent contracts, then the
platform's worker processes open their virtual accounts at the bank simulator (its own process, the banks' real
limits: 光大 ceb 20/s, 平安 pab 5/s) while the web app takes the banks' `account_opened` notices.

Measured per bank from the simulator's own records (the time it stamped each accepted request): the rate over
the run against the bank's limit, the most requests it saw in any one second, the requests it refused (429,
counted in its log), and the import's printed estimate against the real duration.

Run: .venv/bin/python bench/contract_import.py --open [--open-rows ceb=2000,pab=500] [--workers 2]
(深圳's rule leaves about half of the generated pab rows outside rent custody: pab=600 opens about 300.)
The workers run before the import, as in production; the slack column is the median of how much later than the
window allowed each request came (its stamp - the stamp `per_second` places back - 1 s).
Not part of `make test`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.contract_import import _database  # noqa: E402 - the same scratch databases
from bench.proc import cpu_seconds  # noqa: E402
from tests.integration.test_contract_import import contract_csv, contract_row  # noqa: E402 - the tests' rows
from tests.ports import port_of, reserve_port  # noqa: E402

FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
CITY_OF_BANK = {"ceb": "110000", "pab": "440300"}  # 北京 rents through 光大, 深圳 through 平安 (city_configs/)
LIMIT_PER_S = {"ceb": 20, "pab": 5}
WORKER_THREADS = 8  # per worker process: room for ceb's derived opening slots (app.banks.settings) and pab's
DURATION = re.compile(r"（(\w+)）共 (\d+) 户待开.*?约需 ([^（]+)（")


def _seconds(chinese: str) -> float:
    """'1 分 40 秒' → 100.0 (app.domain.contract_import.duration_text, read back)."""
    units = {"天": 86_400, "小时": 3_600, "分": 60, "秒": 1}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)\s*(天|小时|分|秒)", chinese)))


class _Stack:
    """Simulator, web app and workers as processes of their own, in a scratch folder."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.ports = [reserve_port(), reserve_port()]
        self.web_port, self.sim_port = (port_of(p) for p in self.ports)
        self.env = {
            **os.environ,
            "CUNGUAN_INSTANCE_PATH": str(folder / "instance"),
            "CUNGUAN_KEYS_DIR": str(folder / "keys"),
            "CUNGUAN_SECRET_KEY": "bench",
            "DATABASE_URL": database_url,
            "CUNGUAN_PUBLIC_URL": f"http://127.0.0.1:{self.web_port}",
            **{
                f"CUNGUAN_BANK_{code.upper()}_URL": f"http://127.0.0.1:{self.sim_port}/{code}"
                for code in ("ceb", "pab", "icbc", "abc")
            },
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []

    def flask(self, *args: str) -> str:
        done = subprocess.run([*FLASK, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=3600)
        if done.returncode not in (0, 2):
            raise RuntimeError(f"flask {' '.join(args)}: {done.stdout}\n{done.stderr}")
        return done.stdout + done.stderr

    def spawn(self, name: str, command: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.names.append(name)
        self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def setup(self) -> None:
        sim_keys = self.folder / "bank-sim-keys"
        self.flask("keys", "init")
        self.flask(
            "bank-sim",
            "keys",
            "--keys-dir",
            str(sim_keys),
            "--platform-key",
            str(self.folder / "keys" / "platform.pub.pem"),
        )
        self.flask("keys", "import-bank", "--from-dir", str(sim_keys))
        self.flask("db", "upgrade")
        self.flask("city", "import-files")
        self.flask("user", "create-demo")
        for reservation in self.ports:
            reservation.close()
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
                str(self.folder / "sim.db"),
                "--keys-dir",
                str(sim_keys),
                "--open-delay",
                "0.2",
            ],
        )
        self.spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--no-control-socket",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{self.web_port}",
                "wsgi:app",
            ],
        )
        _wait(lambda: requests.get(f"http://127.0.0.1:{self.web_port}/healthz", timeout=1).ok, "web")

    def start_workers(self, count: int) -> None:
        for n in range(count):
            self.spawn(f"worker{n}", [*FLASK, "worker", "--poll", "0.2", "--concurrency", str(WORKER_THREADS)])

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far by the simulator, the web app (its workers included) and the workers."""
        used: dict[str, float] = {}
        for name, process in zip(self.names, self.processes, strict=True):
            kind = "worker" if name.startswith("worker") else name
            used[kind] = used.get(kind, 0.0) + sum(cpu_seconds(pid) for pid in _with_children(process.pid))
        return used

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def requested_at(self) -> dict[str, list[float]]:
        """Per bank, the simulator's stamp of every opening request it accepted, in order."""
        path = self.folder / "sim.db"
        if not path.exists():
            return {}
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
            rows = db.execute("SELECT bank_code, requested_at FROM accounts ORDER BY requested_at").fetchall()
        stamps: dict[str, list[float]] = {}
        for bank_code, at in rows:
            stamps.setdefault(bank_code, []).append(float(at))
        return stamps


def _with_children(pid: int) -> list[int]:
    try:
        children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except OSError:
        children = []
    return [pid, *children]


def _wait(condition: Callable[[], object], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _tails(stack: _Stack, workers: int) -> str:
    names = ["simulator", "web", *(f"worker{n}" for n in range(workers))]
    return "\n".join(f"--- {name} ---\n{stack.log(name)[-3000:]}" for name in names)


def _max_in_one_second(stamps: list[float]) -> int:
    best, start = 0, 0
    for end, at in enumerate(stamps):
        while at - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _slack_ms_p50(stamps: list[float], per_second: int) -> float:
    """Median of how much later than the window allowed each request came: its stamp - (the stamp `per_second`
    places back + 1 s). Pacing alone loses the margin and the way to the bank; the rest is the workers."""
    slack = sorted((stamps[k] - stamps[k - per_second] - 1.0) * 1000 for k in range(per_second, len(stamps)))
    return round(slack[len(slack) // 2], 1) if slack else 0.0


def run_openings(kind: str, rows: dict[str, int], workers: int, postgres_url: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url, drop = _database(kind, folder, postgres_url)
        stack = _Stack(folder, url)
        try:
            stack.setup()
            csv_rows = [contract_row(n, CITY_OF_BANK[bank]) for bank, count in rows.items() for n in range(count)]
            # distinct contract numbers per city (contract_row numbers them per n)
            source = folder / "contracts.csv"
            source.write_bytes(contract_csv(csv_rows))
            stack.start_workers(workers)  # running before the import, as in production
            time.sleep(3)
            started = time.time()
            printed = stack.flask("contracts", "import", str(source), "--agent", "agent")
            found = DURATION.findall(printed)
            estimates = {bank: _seconds(text_) for bank, _, text_ in found}
            queued = {bank: int(count) for bank, count, _ in found}  # rows the import took (the others are refused)
            total = sum(queued.values())
            progress_at, seen, stalled_at = time.monotonic(), 0, time.monotonic()
            while (now_seen := sum(len(s) for s in stack.requested_at().values())) < total:
                time.sleep(1.0)
                if now_seen > seen:
                    seen, stalled_at = now_seen, time.monotonic()
                elif time.monotonic() - stalled_at > 120:
                    raise RuntimeError(f"no opening for 120 s ({now_seen} of {total}):\n{_tails(stack, workers)}")
                if time.monotonic() - progress_at > 10:
                    done = {bank: len(s) for bank, s in stack.requested_at().items()}
                    print(f"  … {done} of {rows}", flush=True)
                    progress_at = time.monotonic()
            stamps = stack.requested_at()
            cpu_ms = {kind: round(seconds * 1000 / total, 1) for kind, seconds in stack.cpu_s().items()}
            worker_logs = "".join(stack.log(f"worker{n}") for n in range(workers))
            refused = len(re.findall(r'" 429 ', stack.log("simulator")))
            deferrals = worker_logs.count("job deferred")
            results = []
            for bank, count in queued.items():
                bank_stamps = stamps[bank]
                span = bank_stamps[-1] - bank_stamps[0]
                rate = (count - 1) / span if span > 0 else float("inf")
                real = bank_stamps[-1] - started
                results.append(
                    {
                        "db": kind,
                        "bank": bank,
                        "accounts": count,
                        "limit_per_s": LIMIT_PER_S[bank],
                        "rate_per_s": round(rate, 2),
                        "of_limit": round(rate / LIMIT_PER_S[bank], 3),
                        "max_in_1s": _max_in_one_second(bank_stamps),
                        "slack_ms_p50": _slack_ms_p50(bank_stamps, LIMIT_PER_S[bank]),
                        "estimate_s": estimates.get(bank),
                        "real_s": round(real, 1),
                        "refused_429": refused,
                        "deferrals": deferrals,
                        "cpu_ms_per_opening": cpu_ms,  # both banks' openings together, start-up included
                        "load_average": os.getloadavg(),
                    }
                )
            return results
        finally:
            stack.stop()
            drop()
            logs = os.environ.get("BENCH_LOGS")  # a folder to keep the processes' logs in
            if logs:
                Path(logs).mkdir(parents=True, exist_ok=True)
                for log in folder.glob("*.log"):
                    (Path(logs) / f"{kind}-{log.name}").write_bytes(log.read_bytes())
