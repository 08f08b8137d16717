"""Benchmark: the job queue on PostgreSQL.

1. Claim cost as the queue grows: for each queue size it fills a fresh database with that many due jobs (and
   as many finished ones, as a running platform holds), then claims jobs one by one as the worker does, each
   in its own transaction, rolled back so that the queue keeps its size: p50 / p99 milliseconds per claim.
2. One bank stalled: a worker with 4 threads (2 slots per bank) runs jobs of three banks arriving at 30 per
   second for 6 s, each a bank call of 50 ms, first with every bank answering, then with one bank taking
   10 s per call, and the same with no per-bank limit (4 slots: the stalled bank may hold every thread); the
   other banks' job latency (queued → done), p50 / p99, side by side.

Run: .venv/bin/python bench/jobs.py [--sizes 1000,100000] [--claims 500] [--url postgresql+psycopg://…]
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db.base import Base  # noqa: E402
from app.db.models import Job  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.queue import jobs  # noqa: E402
from app.queue.worker import run_workers  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _fill(session: Session, size: int, now: datetime) -> None:
    for status, offset in (("done", 0), ("pending", size)):
        rows = [
            {
                "id": offset + n + 1,
                "kind": "noop",
                "payload": {},
                "status": status,
                "run_after": now - timedelta(seconds=size - n),
            }
            for n in range(size)
        ]
        for start in range(0, size, 10_000):
            session.execute(insert(Job), rows[start : start + 10_000])
    session.commit()
    session.execute(text("ANALYZE jobs"))
    session.commit()


def _fresh_database(url: str) -> Engine:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"bench_jobs_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return create_engine(url.rsplit("/", 1)[0] + f"/{name}")


def _drop(url: str, name: str | None) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def claim_times_ms(url: str, size: int, claims: int) -> list[float]:
    engine = _fresh_database(url)
    try:
        Base.metadata.create_all(engine)  # every table: the figure triggers (after_create) need the deals table too
        now = datetime.now(UTC)
        with Session(engine) as session:
            _fill(session, size, now)
        times = []
        with Session(engine) as session:
            for n in range(claims):
                start = time.perf_counter()
                job = jobs.claim(session, f"bench-{n}", now=now)
                times.append((time.perf_counter() - start) * 1000)
                assert job is not None
                session.rollback()
        return times
    finally:
        engine.dispose()
        _drop(url, engine.url.database)


def stalled_bank_latencies_ms(
    url: str, stall_s: float, per_bank: int = 2, seconds: float = 6.0, rate: float = 30.0
) -> list[float]:
    """Latency (queued → done) of the jobs of the banks that answer, jobs arriving at `rate` per second for
    `seconds` in turn for banks slow, b and c, while bank `slow` takes `stall_s` per call."""
    engine = _fresh_database(url)
    try:
        Base.metadata.create_all(engine)  # every table: the figure triggers (after_create) need the deals table too
        db = Database(engine.url.render_as_string(hide_password=False))
        rt = SimpleNamespace(db=db, clock=lambda: datetime.now(UTC), jobs={}, banks={})  # no opening limits here
        logging.getLogger("cunguan.worker").setLevel(logging.ERROR)  # no ledger or timers here: maintenance fails
        done: dict[int, float] = {}
        queued: dict[int, float] = {}
        total = int(seconds * rate)

        def call_bank(_rt: object, payload: dict[str, Any]) -> None:
            time.sleep(stall_s if payload["bank"] == "slow" and stall_s else 0.05)
            done[payload["n"]] = time.perf_counter()

        def produce() -> None:
            started = time.perf_counter()
            for n in range(total):
                time.sleep(max(0.0, started + n / rate - time.perf_counter()))
                bank = ("slow", "b", "c")[n % 3]
                with db.uow() as uow:
                    jobs.enqueue(uow.session, "bench_call", {"bank": bank, "n": n}, now=rt.clock(), bank_code=bank)
                    uow.commit()
                queued[n] = time.perf_counter()

        rt.jobs["bench_call"] = call_bank
        producer = threading.Thread(target=produce)
        producer.start()
        answering = [n for n in range(total) if n % 3]
        stop = lambda: all(n in done for n in answering)  # noqa: E731
        run_workers(rt, 4, should_stop=stop, poll_s=0.01, per_bank=per_bank)  # type: ignore[arg-type]
        producer.join()
        db.dispose()
        return [(done[n] - queued[n]) * 1000 for n in answering]
    finally:
        engine.dispose()
        _drop(url, engine.url.database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--stall", type=float, default=10.0, help="seconds the stalled bank takes per call")
    args = parser.parse_args()
    print(f"{'queued':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for size in (int(part) for part in args.sizes.split(",")):
        times = sorted(claim_times_ms(args.url, size, args.claims))
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"{size:>9} {statistics.median(times):>8.2f} {p99:>8.2f}")
    print(f"\n{'bank slow':>9} {'per bank':>8} {'p50 ms':>8} {'p99 ms':>8}   (latency of the other banks' jobs)")
    for stall_s, per_bank in ((0.0, 2), (args.stall, 2), (args.stall, 4)):  # 4 = no limit: one bank may hold all
        times = sorted(stalled_bank_latencies_ms(args.url, stall_s, per_bank))
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"{stall_s:>8.0f}s {per_bank:>8} {statistics.median(times):>8.0f} {p99:>8.0f}")


if __name__ == "__main__":
    main()
