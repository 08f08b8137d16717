"""Benchmark: what claiming one job costs as the queue grows, on PostgreSQL.

For each queue size it fills a fresh database with that many due jobs (and as many finished ones, as a
running platform holds), then claims jobs one by one as the worker does, each in its own transaction,
rolled back so that the queue keeps its size: p50 / p99 milliseconds per claim.

Run: .venv/bin/python bench/jobs.py [--sizes 1000,100000] [--claims 500] [--url postgresql+psycopg://…]
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db.base import Base  # noqa: E402
from app.db.models import Job  # noqa: E402
from app.queue import jobs  # noqa: E402

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


def claim_times_ms(url: str, size: int, claims: int) -> list[float]:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"bench_jobs_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_engine(url.rsplit("/", 1)[0] + f"/{name}")
    try:
        Base.metadata.create_all(engine, tables=[Job.__table__])  # type: ignore[list-item]
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
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    print(f"{'queued':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for size in (int(part) for part in args.sizes.split(",")):
        times = sorted(claim_times_ms(args.url, size, args.claims))
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"{size:>9} {statistics.median(times):>8.2f} {p99:>8.2f}")


if __name__ == "__main__":
    main()
