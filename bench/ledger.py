"""Benchmark: N writers posting to distinct ordinary accounts vs all to one hot account.

Run: .venv/bin/python bench/ledger.py [--writers 32] [--seconds 5] [--json out.json]
     (PostgreSQL from CUNGUAN_BENCH_POSTGRES_URL, default the local server; a fresh schema is used and dropped)
Prints a table and writes JSON; never part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from app.db.base import Base
from app.db.ledger_repo import LedgerRepository, check_ledger
from app.db.session import Database
from app.domain.ledger import AccountSpec, TransferSpec

HOT = AccountSpec("bank_clearing:bench", "asset", "热点清算户", credits_must_not_exceed_debits=True)


def _custody(index: int) -> AccountSpec:
    return AccountSpec(f"custody:bench:{index}", "liability", "存管", debits_must_not_exceed_credits=True)


def _source(index: int) -> AccountSpec:
    return AccountSpec(f"bank_clearing:bench:{index}", "asset", "清算户", credits_must_not_exceed_debits=True)


def run_case(db: Database, writers: int, seconds: float, hot: bool) -> dict[str, float]:
    with db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in [HOT] + [_custody(i) for i in range(writers)] + [_source(i) for i in range(writers)]:
            repo.ensure_account(spec)
        uow.commit()
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    case = "hot" if hot else "ordinary"

    def writer(index: int) -> None:
        debit = HOT.code if hot else _source(index).code
        count = 0
        while time.monotonic() < deadline:
            count += 1
            spec = TransferSpec(f"{case}:{index}:{count}", debit, _custody(index).code, 100, "arrival")
            start = time.perf_counter()
            try:
                with db.uow() as uow:
                    LedgerRepository(uow.session).post(spec)
                    uow.commit()
            except Exception as error:  # counted and reported: a benchmark must not hide failures
                errors.append(repr(error)[:200])
                continue
            latencies[index].append(time.perf_counter() - start)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flat = sorted(value for per in latencies for value in per)
    return {
        "postings": len(flat),
        "errors": len(errors),
        "postings_per_s": len(flat) / elapsed,
        "p50_ms": statistics.median(flat) * 1000 if flat else 0.0,
        "p99_ms": flat[int(len(flat) * 0.99) - 1] * 1000 if flat else 0.0,
    }


def bench_database(name: str, url: str, writers: int, seconds: float) -> list[dict[str, object]]:
    db = Database(url, **({} if url.startswith("sqlite") else {"pool_size": writers + 4, "max_overflow": 0}))
    Base.metadata.create_all(db.engine)
    rows = []
    for hot in (False, True):
        result = run_case(db, writers, seconds, hot)
        rows.append({"database": name, "case": "hot" if hot else "ordinary", "writers": writers, **result})
    with db.uow() as uow:
        report = check_ledger(uow.session)
    assert report.ok, report.problems
    db.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += bench_database("sqlite", f"sqlite:///{folder}/bench.db", args.writers, args.seconds)
    base = os.environ.get("CUNGUAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        rows += bench_database("postgresql", f"{base}?options=-csearch_path%3D{schema}", args.writers, args.seconds)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(f"{'database':<11} {'case':<9} {'writers':>7} {'postings/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for row in rows:
        print(
            f"{row['database']:<11} {row['case']:<9} {row['writers']:>7} {row['postings_per_s']:>11.0f}"
            f" {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['errors']:>7}"
        )
    for database in ("sqlite", "postgresql"):
        by_case = {row["case"]: row for row in rows if row["database"] == database}
        ratio = by_case["hot"]["postings_per_s"] / max(by_case["ordinary"]["postings_per_s"], 1e-9)
        print(f"{database}: hot/ordinary = {ratio:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
