"""Benchmark: N writers posting to distinct ordinary accounts vs all to one hot account.

Three ways of writing: `batched` (every writer submits to the group-commit LedgerBatcher and waits until its
posting is committed), `direct` (every posting is its own transaction through LedgerRepository, as a deal's
state change and its posting are committed together: what the services use) and, on PostgreSQL only,
`plain-sql`: the reference - the simplest correct transfer as one SQL statement-function on the same tables
(both totals moved, the CHECK constraints refusing an overdraft, the primary key refusing a repeated id; no
hot-account buffer, no result codes), one transaction per posting through the same driver and pool.

Run: .venv/bin/python bench/ledger.py [--writers 32] [--seconds 5] [--modes plain-sql,direct,batched]
     [--databases sqlite,postgresql] [--json out.json]
     (PostgreSQL from CUNGUAN_BENCH_POSTGRES_URL, default the local server; a fresh schema is used and dropped)
Prints a table and the ratio direct/plain-sql; writes JSON; never part of `make test`.
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

from sqlalchemy import create_engine, insert, text, update

import app.db.models  # noqa: F401 - every table (the ledger's accounts refer to deals)
from app.db.base import Base, utcnow
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.session import Database
from app.domain.ledger import AccountSpec, TransferSpec
from app.domain.ledger_batch import LedgerOp
from app.ledger.batcher import LedgerBatcher
from app.ledger.repo import LedgerRepository, check_ledger

COMMITTERS = int(os.environ.get("BENCH_COMMITTERS", "1"))
# The reference: what a plain-PostgreSQL ledger does for one transfer, in one statement.
PLAIN_SQL = """
CREATE OR REPLACE FUNCTION bench_plain_transfer(p_id varchar, p_debit varchar, p_credit varchar, p_amount bigint,
    p_code varchar, p_at timestamptz) RETURNS void LANGUAGE sql AS $$
    WITH moved AS (
        UPDATE ledger_accounts
        SET debits_posted = debits_posted + CASE WHEN code = p_debit THEN p_amount ELSE 0 END,
            credits_posted = credits_posted + CASE WHEN code = p_credit THEN p_amount ELSE 0 END
        WHERE code IN (p_debit, p_credit)
        RETURNING id, code
    )
    INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount_fen, code, kind, created_at)
    SELECT p_id, d.id, c.id, p_amount, p_code, 'single', p_at FROM moved AS d, moved AS c
    WHERE d.code = p_debit AND c.code = p_credit
$$
"""
PLAIN_CALL = text(
    "SELECT bench_plain_transfer(CAST(:id AS varchar), CAST(:debit AS varchar), CAST(:credit AS varchar),"
    " CAST(:amount AS bigint), CAST(:code AS varchar), CAST(:at AS timestamptz))"
)
HOT = AccountSpec("bank_clearing:bench", "asset", "热点清算户", credits_must_not_exceed_debits=True, hot=True)


def _custody(index: int) -> AccountSpec:
    return AccountSpec(f"custody:bench:{index}", "liability", "存管", debits_must_not_exceed_credits=True)


def _source(index: int) -> AccountSpec:
    return AccountSpec(f"bank_clearing:bench:{index}", "asset", "清算户", credits_must_not_exceed_debits=True)


def run_case(db: Database, writers: int, seconds: float, hot: bool, mode: str) -> dict[str, float]:
    with db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in [HOT] + [_custody(i) for i in range(writers)] + [_source(i) for i in range(writers)]:
            repo.ensure_account(spec)
        uow.commit()
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    case = "hot" if hot else "ordinary"
    batcher = LedgerBatcher(db, committers=COMMITTERS) if mode == "batched" else None

    def post_direct(spec: TransferSpec) -> None:
        with db.uow() as uow:
            LedgerRepository(uow.session).post(spec)
            uow.commit()

    def post_batched(spec: TransferSpec) -> None:
        assert batcher is not None
        result = batcher.submit(LedgerOp.post(spec, utcnow()))
        if result.status != "created":
            raise RuntimeError(f"{result.status}: {result.message}")

    def post_plain(spec: TransferSpec) -> None:
        with db.engine.begin() as connection:
            parameters = {"debit": spec.debit_code, "credit": spec.credit_code, "amount": spec.amount_fen}
            connection.execute(PLAIN_CALL, {"id": spec.id, "code": spec.code, "at": utcnow(), **parameters})

    post = {"batched": post_batched, "direct": post_direct, "plain-sql": post_plain}[mode]

    def writer(index: int) -> None:
        debit = HOT.code if hot else _source(index).code
        count = 0
        while time.monotonic() < deadline:
            count += 1
            spec = TransferSpec(f"{mode}:{case}:{index}:{count}", debit, _custody(index).code, 100, "arrival")
            start = time.perf_counter()
            try:
                post(spec)
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
    if batcher is not None:
        batcher.close()
    if errors:
        print(f"{mode}/{case}: {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    flat = sorted(value for per in latencies for value in per)
    return {
        "postings": len(flat),
        "errors": len(errors),
        "postings_per_s": len(flat) / elapsed,
        "p50_ms": statistics.median(flat) * 1000 if flat else 0.0,
        "p99_ms": flat[int(len(flat) * 0.99) - 1] * 1000 if flat else 0.0,
    }


HISTORY = 50_000


def seed_history(db: Database) -> None:
    """A running ledger is never empty: HISTORY earlier transfers between two accounts, then ANALYZE, so
    that PostgreSQL plans (and caches plans for) lookups on a table of realistic size."""
    a = AccountSpec("history:bank", "asset", "历史清算", credits_must_not_exceed_debits=True)
    b = AccountSpec("history:custody", "liability", "历史存管", debits_must_not_exceed_credits=True)
    with db.uow() as uow:
        repo = LedgerRepository(uow.session)
        a_id, b_id = repo.ensure_account(a).id, repo.ensure_account(b).id
        now = utcnow()
        rows = [
            {
                "id": f"history:{n}",
                "debit_account_id": a_id,
                "credit_account_id": b_id,
                "amount_fen": 100,
                "code": "arrival",
                "kind": "single",
                "created_at": now,
            }
            for n in range(HISTORY)
        ]
        uow.session.execute(insert(LedgerTransfer.__table__), rows)
        uow.session.execute(
            update(LedgerAccount.__table__).where(LedgerAccount.id == a_id).values(debits_posted=100 * HISTORY)
        )
        uow.session.execute(
            update(LedgerAccount.__table__).where(LedgerAccount.id == b_id).values(credits_posted=100 * HISTORY)
        )
        uow.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")


def bench_database(name: str, url: str, writers: int, seconds: float, modes: list[str]) -> list[dict[str, object]]:
    """Each case starts from fresh tables holding the same history, so that no case runs against another's
    leftovers."""
    db = Database(url, **({} if url.startswith("sqlite") else {"pool_size": writers + 4, "max_overflow": 0}))
    rows = []
    for mode in modes:
        if mode == "plain-sql" and name != "postgresql":
            continue
        for hot in (False, True):
            Base.metadata.drop_all(db.engine)
            Base.metadata.create_all(db.engine)
            if mode == "plain-sql":
                with db.engine.begin() as connection:
                    connection.exec_driver_sql(PLAIN_SQL)
            seed_history(db)
            result = run_case(db, writers, seconds, hot, mode)
            with db.uow() as uow:
                LedgerRepository(uow.session).fold_hot()
                uow.commit()
            with db.uow() as uow:
                report = check_ledger(uow.session)
            assert report.ok, report.problems
            assert report.transfers_checked == HISTORY + result["postings"], (report.transfers_checked, result)
            case = "hot" if hot else "ordinary"
            rows.append({"database": name, "mode": mode, "case": case, "writers": writers, **result})
    db.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--modes", default="plain-sql,direct,batched", help="comma-separated: plain-sql (PostgreSQL), direct, batched"
    )
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    modes = args.modes.split(",")
    databases = args.databases.split(",")
    rows = []
    if "sqlite" in databases:
        with tempfile.TemporaryDirectory() as folder:
            rows += bench_database("sqlite", f"sqlite:///{folder}/bench.db", args.writers, args.seconds, modes)
    if "postgresql" in databases:
        rows += bench_postgresql(args.writers, args.seconds, modes)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def bench_postgresql(writers: int, seconds: float, modes: list[str]) -> list[dict[str, object]]:
    base = os.environ.get("CUNGUAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        return bench_database("postgresql", f"{base}?options=-csearch_path%3D{schema}", writers, seconds, modes)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def print_table(rows: list[dict[str, object]]) -> None:
    header = f"{'database':<11} {'mode':<10} {'case':<9} {'writers':>7} {'postings/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
    print(header + f" {'errors':>7}")
    for row in rows:
        print(
            f"{row['database']:<11} {row['mode']:<10} {row['case']:<9} {row['writers']:>7}"
            f" {row['postings_per_s']:>11.0f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['errors']:>7}"
        )
    rate = {(row["database"], row["mode"], row["case"]): float(row["postings_per_s"]) for row in rows}  # type: ignore[arg-type]
    for database, mode, case in rate:
        if case == "ordinary" and (database, mode, "hot") in rate:
            ratio = rate[database, mode, "hot"] / max(rate[database, mode, case], 1e-9)
            print(f"{database} {mode}: hot/ordinary = {ratio:.2f}")
    for case in ("ordinary", "hot"):
        if ("postgresql", "direct", case) in rate and ("postgresql", "plain-sql", case) in rate:
            ratio = rate["postgresql", "direct", case] / max(rate["postgresql", "plain-sql", case], 1e-9)
            print(f"postgresql {case}: direct/plain-sql = {ratio:.2f}")


if __name__ == "__main__":
    main()
