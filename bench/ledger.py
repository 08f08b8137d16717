"""Benchmark: N writers posting to distinct ordinary accounts vs all to one hot account.

Three ways of writing: `batched` (every writer submits to the group-commit LedgerBatcher and waits until its
posting is committed), `direct` (every posting is its own transaction through LedgerRepository, as a deal's
state change and its posting are committed together: what the services use) and, on PostgreSQL only,
`plain-sql`: the reference - the simplest correct transfer as one SQL statement-function on the same tables
(both totals moved, the CHECK constraints refusing an overdraft, the primary key refusing a repeated id; no
hot-account buffer, no result codes), one transaction per posting through the same driver and pool.

Every case starts from fresh tables holding `--history` earlier transfers spread over `--accounts` earlier
accounts (one statement each, so 1,000,000 take seconds), the modes of one case one after the other (so that
the ratio compares runs under the same load).

Run: .venv/bin/python bench/ledger.py [--writers 32] [--seconds 5] [--modes plain-sql,direct,batched]
     [--databases sqlite,postgresql] [--history 50000] [--accounts 2] [--cpu 1000] [--json out.json]
     (PostgreSQL from CUNGUAN_BENCH_POSTGRES_URL, default the local server; a fresh schema is used and dropped)
Prints a table and the ratio direct/plain-sql; writes JSON; never part of `make test`. With `--cpu N`, one
writer posts N times per mode and case instead (best of 3): the CPU of this process and of the PostgreSQL
backends per posting, what bounds the rate when the writers share one GIL and two cores with the server.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import BigInteger, String, cast, create_engine, event, func, insert, literal, select, text, update

import app.db.models  # noqa: F401 - every table (the ledger's accounts refer to deals)
from app.db.base import Base, UTCDateTime, utcnow
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.session import Database
from app.domain.ledger import AccountSpec, TransferSpec
from app.domain.ledger_batch import LedgerOp
from app.ledger.batcher import LedgerBatcher
from app.ledger.repo import LedgerRepository, check_ledger
from bench.proc import cpu_seconds

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


def prepare_accounts(db: Database, writers: int) -> None:
    with db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in [HOT] + [_custody(i) for i in range(writers)] + [_source(i) for i in range(writers)]:
            repo.ensure_account(spec)
        uow.commit()


def poster(db: Database, mode: str, batcher: LedgerBatcher | None) -> Callable[[TransferSpec], None]:
    """How a writer posts one transfer in this mode (each posting is its own transaction)."""

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

    return {"batched": post_batched, "direct": post_direct, "plain-sql": post_plain}[mode]


def _spec(mode: str, hot: bool, index: int, count: int) -> TransferSpec:
    debit = HOT.code if hot else _source(index).code
    case = "hot" if hot else "ordinary"
    return TransferSpec(f"{mode}:{case}:{index}:{count}", debit, _custody(index).code, 100, "arrival")


def run_case(db: Database, writers: int, seconds: float, hot: bool, mode: str) -> dict[str, float]:
    prepare_accounts(db, writers)
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    batcher = LedgerBatcher(db, committers=COMMITTERS) if mode == "batched" else None
    post = poster(db, mode, batcher)

    def writer(index: int) -> None:
        count = 0
        while time.monotonic() < deadline:
            count += 1
            spec = _spec(mode, hot, index, count)
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
        print(f"{mode}/{'hot' if hot else 'ordinary'}: {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    flat = sorted(value for per in latencies for value in per)
    return {
        "postings": len(flat),
        "errors": len(errors),
        "postings_per_s": len(flat) / elapsed,
        "p50_ms": statistics.median(flat) * 1000 if flat else 0.0,
        "p99_ms": flat[int(len(flat) * 0.99) - 1] * 1000 if flat else 0.0,
    }


def cpu_case(db: Database, count: int, hot: bool, mode: str) -> dict[str, float]:
    """One writer, `count` postings, best of 3: CPU milliseconds per posting of this process (the batched
    mode's committer thread included) and of the PostgreSQL backends it used (0 on SQLite)."""
    prepare_accounts(db, 1)
    batcher = LedgerBatcher(db, committers=COMMITTERS) if mode == "batched" else None
    post = poster(db, mode, batcher)
    post(_spec(mode, hot, 0, 0))  # the first posting connects and, on PostgreSQL, plans
    best = {"cpu_ms": float("inf"), "server_ms": float("inf")}
    for attempt in range(3):
        backends: dict[int, float] = {}  # backend pid -> its CPU seconds when first seen

        def seen(dbapi_connection: Any, *_args: object, backends: dict[int, float] = backends) -> None:
            pid = dbapi_connection.info.backend_pid
            backends.setdefault(pid, cpu_seconds(pid))

        if db.engine.dialect.name == "postgresql":
            event.listen(db.engine, "checkout", seen)
        cpu = time.process_time()
        for number in range(1 + attempt * count, 1 + (attempt + 1) * count):
            post(_spec(mode, hot, 0, number))
        cpu = time.process_time() - cpu
        if db.engine.dialect.name == "postgresql":
            event.remove(db.engine, "checkout", seen)
        server = sum(cpu_seconds(pid) - start for pid, start in backends.items())
        best = {
            "cpu_ms": min(best["cpu_ms"], cpu * 1000 / count),
            "server_ms": min(best["server_ms"], server * 1000 / count),
        }
    if batcher is not None:
        batcher.close()
    return {"postings": 1 + 3 * count, "errors": 0, **best}


def seed_history(db: Database, transfers: int, accounts: int) -> None:
    """A running ledger is never empty: `transfers` earlier transfers, each between one of `accounts` // 2
    pairs of earlier accounts (a bank's and a custody account), the accounts' totals their sums, then
    ANALYZE, so that PostgreSQL plans (and caches plans for) lookups on tables of realistic size. Each table is
    filled by one INSERT ... SELECT over a recursive series (PostgreSQL and SQLite alike)."""
    pairs = max(1, accounts // 2)
    accounts_table, transfers_table = LedgerAccount.__table__, LedgerTransfer.__table__
    now = literal(utcnow(), UTCDateTime())

    def series(last: int) -> Any:
        numbers = select(literal(0).label("n")).cte("series", recursive=True)
        return numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < last - 1))

    with db.uow() as uow:
        session = uow.session
        for side, kind, bank in (("bank", "asset", True), ("custody", "liability", False)):
            numbers = series(pairs)
            columns = ["code", "type", "name", "debits_must_not_exceed_credits", "credits_must_not_exceed_debits"]
            columns += ["hot", "debits_posted", "credits_posted", "debits_pending", "credits_pending", "created_at"]
            code = literal(f"history:{side}:") + cast(numbers.c.n, String)
            zero = literal(0, BigInteger())
            rows = select(code, literal(kind), code, literal(not bank), literal(bank), literal(False), zero, zero)
            session.execute(insert(accounts_table).from_select(columns, rows.add_columns(zero, zero, now)))
        if transfers:
            numbers = series(transfers)
            debit, credit = accounts_table.alias("debit"), accounts_table.alias("credit")
            rows = select(
                literal("history:") + cast(numbers.c.n, String),
                debit.c.id,
                credit.c.id,
                literal(100, BigInteger()),
                literal("arrival"),
                literal("single"),
                now,
            ).where(
                debit.c.code == literal("history:bank:") + cast(numbers.c.n % pairs, String),
                credit.c.code == literal("history:custody:") + cast(numbers.c.n % pairs, String),
            )
            columns = ["id", "debit_account_id", "credit_account_id", "amount_fen", "code", "kind", "created_at"]
            session.execute(insert(transfers_table).from_select(columns, rows))
            for total, side in (("debits_posted", "debit_account_id"), ("credits_posted", "credit_account_id")):
                moved = (
                    select(func.coalesce(func.sum(transfers_table.c.amount_fen), 0))
                    .where(transfers_table.c[side] == accounts_table.c.id)
                    .scalar_subquery()
                )
                session.execute(
                    update(accounts_table).where(accounts_table.c.code.like("history:%")).values({total: moved})
                )
        uow.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")


def bench_database(name: str, url: str, args: argparse.Namespace, modes: list[str]) -> list[dict[str, object]]:
    """Each run starts from fresh tables holding the same history, so that no run sees another's leftovers;
    the modes of a case run one after the other."""
    writers = 1 if args.cpu else args.writers
    db = Database(url, **({} if url.startswith("sqlite") else {"pool_size": writers + 4, "max_overflow": 0}))
    rows = []
    for hot in (False, True):
        for mode in modes:
            if mode == "plain-sql" and name != "postgresql":
                continue
            Base.metadata.drop_all(db.engine)
            Base.metadata.create_all(db.engine)
            if mode == "plain-sql":
                with db.engine.begin() as connection:
                    connection.exec_driver_sql(PLAIN_SQL)
            seed_history(db, args.history, args.accounts)
            run = cpu_case(db, args.cpu, hot, mode) if args.cpu else run_case(db, writers, args.seconds, hot, mode)
            with db.uow() as uow:
                LedgerRepository(uow.session).fold_hot()
                uow.commit()
            with db.uow() as uow:
                report = check_ledger(uow.session)
            assert report.ok, report.problems
            assert report.transfers_checked == args.history + run["postings"], (report.transfers_checked, run)
            case = "hot" if hot else "ordinary"
            rows.append({"database": name, "mode": mode, "case": case, "writers": writers, **run})
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
    parser.add_argument("--history", type=int, default=50_000, help="earlier transfers in the ledger")
    parser.add_argument("--accounts", type=int, default=2, help="earlier accounts (pairs the history is spread over)")
    parser.add_argument("--cpu", type=int, default=0, help="N: CPU per posting, one writer, N postings, best of 3")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    modes = args.modes.split(",")
    databases = args.databases.split(",")
    rows = []
    if "sqlite" in databases:
        with tempfile.TemporaryDirectory() as folder:
            rows += bench_database("sqlite", f"sqlite:///{folder}/bench.db", args, modes)
    if "postgresql" in databases:
        rows += bench_postgresql(args, modes)
    (print_cpu_table if args.cpu else print_table)(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def bench_postgresql(args: argparse.Namespace, modes: list[str]) -> list[dict[str, object]]:
    base = os.environ.get("CUNGUAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        return bench_database("postgresql", f"{base}?options=-csearch_path%3D{schema}", args, modes)
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


def print_cpu_table(rows: list[dict[str, object]]) -> None:
    print(f"{'database':<11} {'mode':<10} {'case':<9} {'client CPU ms':>14} {'server CPU ms':>14} {'sum':>7}")
    for row in rows:
        cpu, server = float(row["cpu_ms"]), float(row["server_ms"])  # type: ignore[arg-type]
        what = f"{row['database']:<11} {row['mode']:<10} {row['case']:<9}"
        print(f"{what} {cpu:>14.3f} {server:>14.3f} {cpu + server:>7.3f}")


if __name__ == "__main__":
    main()
