"""Benchmark: signed bank callbacks over real HTTP through gunicorn on PostgreSQL.

Each `funds_arrived` callback is verified (SM2 signature, timestamp, nonce stored), stored raw in the
inbox, posted to the ledger (hot clearing account, deal custody) and fired through the deal's workflow.
The bare endpoint (`/api/banks/<bank>/ping`) on the same server only verifies the signature.

Run: .venv/bin/python bench/callbacks.py [--workers 4] [--clients 16] [--requests 2000] [--json out.json]
Requests are signed before the clock starts, so the client's signing does not count against the server.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select, text, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# the deals are set up straight to awaiting funds (no signing), from the tests' intake form, which has no phones
os.environ.setdefault("CUNGUAN_PARTY_SIGNING", "0")

from app import create_app  # noqa: E402
from app.banks.protocol import BANK_PREFIX, encode_json, sign_headers  # noqa: E402
from app.db.base import Base  # noqa: E402
from app.db.models import BankNotification, Deal, VirtualAccount  # noqa: E402
from app.deals import service as deals  # noqa: E402
from app.ledger.repo import LedgerRepository, check_ledger  # noqa: E402
from app.platform.config import Config  # noqa: E402
from app.tools.banksim.keys import bank_private_key_path, provision_simulated_banks  # noqa: E402
from app.users.service import create_user  # noqa: E402
from tests.factories import RESALE_FORM  # noqa: E402 - the same valid intake form the tests use


def prepare(config: Config, deals_count: int) -> list[str]:
    """Deals waiting for funds with opened accounts; returns their account numbers."""
    app = create_app(config)
    rt = app.extensions["cunguan.runtime"]
    Base.metadata.create_all(rt.db.engine)
    agent = create_user(rt, "bench-agent", "bench-password-1", "agent", "压测经纪人")
    who = deals.Actor(agent.id, agent.username, "agent")
    accounts = []
    for n in range(deals_count):
        deal_id = deals.create_deal(rt, who, "110000", "resale_escrow", RESALE_FORM)
        account_no = f"62260000{n:08d}"
        with rt.db.uow() as uow:  # setup only: skip signing and opening, straight to awaiting funds
            deal = uow.session.get(Deal, deal_id)
            assert deal is not None
            uow.session.add(
                VirtualAccount(
                    deal_id=deal_id,
                    bank_code="ceb",
                    request_id=f"VA-{n}",
                    account_name="存管",
                    account_no=account_no,
                    status="opened",
                )
            )
            uow.session.execute(update(Deal).where(Deal.id == deal_id).values(state="awaiting_funds"))
            uow.commit()
        accounts.append(account_no)
    rt.db.dispose()
    return accounts


def signed_requests(bank_keys_dir: Path, accounts: list[str], count: int, kind: str) -> list[tuple[str, bytes, dict]]:
    key = bank_private_key_path(bank_keys_dir, "ceb").read_bytes()  # signed as the bank, with its own key
    prepared = []
    for n in range(count):
        if kind == "ping":
            body = encode_json({"n": n})
            path = "/api/banks/ceb/ping"
        else:
            body = encode_json(
                {
                    "notification_id": f"N-{uuid.uuid4().hex}",
                    "type": "funds_arrived",
                    "bank_reference": f"R-{uuid.uuid4().hex[:20]}",
                    "account_no": accounts[n % len(accounts)],
                    "amount_fen": 1_00,
                    "payer_name": "李四",
                    "payer_account": "6214830000000001",
                    "arrived_at": "2026-11-23T08:00:00Z",
                }
            )
            path = "/api/banks/ceb/notifications"
        headers = sign_headers(BANK_PREFIX, key, body)
        headers["Content-Type"] = "application/json"
        prepared.append((path, body, headers))
    return prepared


def load(base_url: str, prepared: list[tuple[str, bytes, dict]], clients: int) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(prepared)))

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            path, body, headers = prepared[index]
            start = time.perf_counter()
            answer = session.post(base_url + path, data=body, headers=headers, timeout=30)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "ok": statuses.get(200, 0),
        "statuses": statuses,  # type: ignore[dict-item]
        "per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def start_server(args: argparse.Namespace, environment: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{args.port}"]
    if args.threads > 1:
        command += ["--threads", str(args.threads), "-k", "gthread"]
    server = subprocess.Popen([*command, "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=environment)
    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{args.port}/healthz", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


def start_processors(count: int, environment: dict[str, str]) -> list[subprocess.Popen]:
    """`flask worker` processes: in inbox mode they process the acknowledged callbacks."""
    command = [sys.executable, "-m", "flask", "--app", "wsgi:app", "worker", "--poll", "0.05"]
    return [subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.DEVNULL) for _ in range(count)]


def processed_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(
                select(func.count()).select_from(BankNotification).where(BankNotification.processed_at.is_not(None))
            )
    finally:
        engine.dispose()


def wait_processed(url: str, expected: int, started: float, timeout_s: float = 600) -> float:
    """Seconds from `started` until `expected` inbox rows in all are processed (polled every 20 ms)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            while time.perf_counter() - started < timeout_s:
                done = connection.scalar(
                    select(func.count()).select_from(BankNotification).where(BankNotification.processed_at.is_not(None))
                )
                connection.rollback()
                if done >= expected:
                    return time.perf_counter() - started
                time.sleep(0.02)
    finally:
        engine.dispose()
    raise RuntimeError(f"inbox not processed after {timeout_s} s")


def drain_rate(url: str, before: int, expected: int, timeout_s: float = 600) -> float:
    """Rows processed per second from the first row the processors finish (their start-up not counted)
    until `expected` rows in all are processed (polled every 20 ms)."""
    engine = create_engine(url)
    processed = select(func.count()).select_from(BankNotification).where(BankNotification.processed_at.is_not(None))
    deadline = time.perf_counter() + timeout_s
    first_seen = first_count = None
    try:
        with engine.connect() as connection:
            while time.perf_counter() < deadline:
                done = connection.scalar(processed)
                connection.rollback()
                now = time.perf_counter()
                if first_seen is None and done > before:
                    first_seen, first_count = now, done
                if done >= expected and first_seen is not None and first_count is not None:
                    return (done - first_count) / max(now - first_seen, 1e-3)
                time.sleep(0.02)
    finally:
        engine.dispose()
    raise RuntimeError(f"inbox not processed after {timeout_s} s")


def run_mode(
    args: argparse.Namespace, mode: str, url: str, bank_keys_dir: Path, base_env: dict[str, str], accounts: list[str]
) -> list[dict]:
    environment = {**base_env, "CUNGUAN_CALLBACK_PROCESSING": mode}
    server = start_server(args, environment)
    processors: list[subprocess.Popen] = []
    rows = []
    try:
        base_url = f"http://127.0.0.1:{args.port}"
        ping = signed_requests(bank_keys_dir, accounts, args.requests, "ping")
        load(base_url, ping[: args.clients * 4], args.clients)  # warm up: imports, connection pools
        rows.append({"endpoint": "ping", "mode": mode, **load(base_url, ping, args.clients)})
        callbacks = signed_requests(bank_keys_dir, accounts, args.requests, "callback")
        if mode == "inbox" and not args.process_after:
            processors = start_processors(args.processors, environment)
            time.sleep(3)  # let them import and connect before the clock starts
        before = processed_count(url)
        started = time.perf_counter()
        row = {"endpoint": "callback", "mode": mode, **load(base_url, callbacks, args.clients)}
        if mode == "inbox" and args.process_after:  # as if the workers ran on machines of their own
            processors = start_processors(args.processors, environment)
            row["drained_per_s"] = drain_rate(url, before, before + row["ok"])
        processed_s = wait_processed(url, before + row["ok"], started)
        row["processed_per_s"] = row["ok"] / processed_s
        rows.append(row)
    finally:
        for process in [server, *processors]:
            process.terminate()
        for process in [server, *processors]:
            process.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--workers", type=int, default=(os.cpu_count() or 1) + 1, help="gunicorn worker processes (as deploy/)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="threads per gunicorn worker (gthread if > 1; as deploy/gunicorn.conf.py)",
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--deals", type=int, default=200)
    parser.add_argument("--port", type=int, default=5077)
    parser.add_argument(
        "--mode",
        choices=("inline", "inbox", "both"),
        default="both",
        help="inline: the 200 means processed; inbox: the 200 means stored, `flask worker` processes",
    )
    parser.add_argument("--processors", type=int, default=1, help="`flask worker` processes in inbox mode")
    parser.add_argument(
        "--process-after",
        action="store_true",
        help="inbox mode: start the processors when the load is over (the web server has the CPUs to itself,"
        " as on machines of its own); the processed rate still counts from the first request, the drained rate"
        " from the processors' start (several processors share the inbox by partition)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = os.environ.get("CUNGUAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}?options=-csearch_path%3D{schema}"
    modes = ("inline", "inbox") if args.mode == "both" else (args.mode,)
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            instance = Path(folder)
            keys_dir, bank_keys_dir = instance / "keys", instance / "bank-sim-keys"
            provision_simulated_banks(keys_dir, bank_keys_dir, ["ceb", "icbc", "pab"])
            config = Config(instance_path=instance, database_url=url, keys_dir=keys_dir, secret_key="bench")
            accounts = prepare(config, args.deals)
            environment = {
                **os.environ,
                "DATABASE_URL": url,
                "CUNGUAN_INSTANCE_PATH": str(instance),
                "CUNGUAN_KEYS_DIR": str(keys_dir),
                "CUNGUAN_SECRET_KEY": "bench",
                "CUNGUAN_LOG_LEVEL": "WARNING",
            }
            for mode in modes:
                rows += run_mode(args, mode, url, bank_keys_dir, environment, accounts)
            engine = create_engine(url)
            with engine.connect() as connection:
                stored = connection.scalar(select(func.count()).select_from(BankNotification))
                unprocessed = connection.scalar(
                    select(func.count()).select_from(BankNotification).where(BankNotification.processed_at.is_(None))
                )
            from sqlalchemy.orm import Session

            with Session(engine) as session:
                LedgerRepository(session).fold_hot()
                session.commit()
                report = check_ledger(session)
            engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(
        f"gunicorn: {args.workers} workers x {args.threads} threads; {args.clients} clients; {args.requests} requests;"
        f" {args.processors} processor(s){' started after the load' if args.process_after else ''}"
    )
    print(
        f"{'mode':<7} {'endpoint':<9} {'ok':>6} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7} {'processed/s':>12}"
        f" {'drained/s':>10}"
    )
    for row in rows:
        processed = f"{row['processed_per_s']:>12.0f}" if "processed_per_s" in row else " " * 12
        drained = f"{row['drained_per_s']:>10.0f}" if "drained_per_s" in row else " " * 10
        print(
            f"{row['mode']:<7} {row['endpoint']:<9} {row['ok']:>6} {row['per_s']:>7.0f}"
            f" {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} {processed} {drained}  {row['statuses']}"
        )
    for mode in modes:
        ping, callback = (r for r in rows if r["mode"] == mode)
        print(f"{mode}: callbacks / bare = {callback['per_s'] / ping['per_s']:.2f}")
    print(f"inbox rows {stored}, unprocessed {unprocessed}; ledger check {'ok' if report.ok else report.problems}")
    callbacks_sent = sum(r["requests"] for r in rows if r["endpoint"] == "callback")
    assert stored == callbacks_sent, "every verified callback is in the inbox, even if processing failed"
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
