"""Benchmark: `flask contracts import` of generated stock rental contracts on SQLite and PostgreSQL.

Each run: a fresh database, an agent, a CSV of N valid contracts (UTF-8) written to a temporary folder, then
the import through the service the CLI calls (rows checked by the intake form, deals written in batches),
then the same file again (everything skipped as already imported).

Run: .venv/bin/python bench/contract_import.py [--rows 100000] [--batch-size 500] [--db sqlite,postgresql]
     [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--profile] [--json out.json]
With --open: the accounts of the imported contracts opened at the bank simulator by the worker processes
(bench/opening_pace.py): [--open-rows ceb=2000,pab=500] [--workers 2].
Not part of `make test`.

2026-11-23, 2 shared cores (load 6-8 from other work), 100,000 rows, batches of 500:
PostgreSQL 274.6 s (364 rows/s), re-run 15.0 s; SQLite 154.7 s (646 rows/s), re-run 4.0 s.
Per row: the intake form's validation (jsonschema) and SM4 encryption of five PII fields dominate; on
PostgreSQL also psycopg's conversion of the large multi-row INSERTs (an unnest-based insert would avoid it).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.crypto.keys import ensure_keys  # noqa: E402
from app.db.base import Base  # noqa: E402
from app.db.models import Deal, Job  # noqa: E402
from app.deals.contract_import import import_contracts  # noqa: E402
from app.platform.config import BankEndpoint, Config  # noqa: E402
from app.users.service import create_user  # noqa: E402
from tests.integration.test_contract_import import contract_csv, contract_row  # noqa: E402 - the tests' rows

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _database(kind: str, folder: Path, postgres_url: str) -> tuple[str, Any]:
    """A fresh database URL and a function that drops it afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in postgres_url else "?"
    return f"{postgres_url}{separator}options=-csearch_path%3D{schema}", drop


def run(kind: str, rows: int, batch_size: int, postgres_url: str, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url, drop = _database(kind, folder, postgres_url)
        try:
            keys = folder / "keys"
            ensure_keys(keys)
            config = Config(
                instance_path=folder / "instance",
                database_url=url,
                keys_dir=keys,
                secret_key="bench",
                public_base_url="http://127.0.0.1:5000",
                banks={"ceb": BankEndpoint("ceb", "中国光大银行", "http://127.0.0.1:9")},
            )
            app = create_app(config)
            rt = app.extensions["cunguan.runtime"]
            Base.metadata.create_all(rt.db.engine)
            rt.clock = lambda: NOW
            create_user(rt, "bench-agent", "bench-password-1", "agent", "压测经纪人")
            data = contract_csv([contract_row(n) for n in range(rows)])
            profiler = cProfile.Profile() if profile else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            result = import_contracts(rt, "bench-agent", "bench.csv", data, batch_size=batch_size)
            if profiler:
                profiler.disable()
            elapsed_s = time.perf_counter() - started
            started = time.perf_counter()
            again = import_contracts(rt, "bench-agent", "bench.csv", data, batch_size=batch_size)
            rerun_s = time.perf_counter() - started
            with rt.db.uow() as uow:
                deals = uow.session.scalar(select(func.count()).select_from(Deal))
                jobs = uow.session.scalar(select(func.count()).select_from(Job))
            assert result.imported == rows == deals == jobs and not result.bad_rows, (result, deals, jobs)
            assert again.already_imported == rows and again.imported == 0
            rt.db.dispose()
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            return {
                "db": kind,
                "rows": rows,
                "batch_size": batch_size,
                "file_mb": round(len(data) / 1e6, 1),
                "import_s": round(elapsed_s, 1),
                "rows_per_s": round(rows / elapsed_s),
                "rerun_s": round(rerun_s, 1),
                "rerun_rows_per_s": round(rows / rerun_s),
            }
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--open", action="store_true", help="open the accounts at the bank simulator's pace")
    parser.add_argument("--open-rows", default="ceb=2000,pab=500")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.open:
        _openings(args)
        return
    results = [run(kind, args.rows, args.batch_size, args.postgres_url, args.profile) for kind in args.db.split(",")]
    print(f"{'db':<11}{'rows':>9}{'batch':>7}{'MB':>6}{'import s':>10}{'rows/s':>9}{'re-run s':>10}{'rows/s':>9}")
    for r in results:
        print(
            f"{r['db']:<11}{r['rows']:>9}{r['batch_size']:>7}{r['file_mb']:>6}{r['import_s']:>10}"
            f"{r['rows_per_s']:>9}{r['rerun_s']:>10}{r['rerun_rows_per_s']:>9}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _openings(args: argparse.Namespace) -> None:
    from bench.opening_pace import run_openings

    rows = {bank: int(count) for bank, count in (part.split("=") for part in args.open_rows.split(","))}
    results = [r for kind in args.db.split(",") for r in run_openings(kind, rows, args.workers, args.postgres_url)]
    print(
        f"{'db':<11}{'bank':<5}{'accounts':>9}{'limit/s':>8}{'rate/s':>8}{'of limit':>9}{'max 1 s':>8}"
        f"{'slack ms':>9}{'estimate s':>11}{'real s':>8}{'429':>6}{'deferred':>9}"
    )
    for r in results:
        print(
            f"{r['db']:<11}{r['bank']:<5}{r['accounts']:>9}{r['limit_per_s']:>8}{r['rate_per_s']:>8}"
            f"{r['of_limit']:>9}{r['max_in_1s']:>8}{r['slack_ms_p50']:>9}{r['estimate_s']!s:>11}{r['real_s']:>8}"
            f"{r['refused_429']:>6}{r['deferrals']:>9}"
        )
    for r in results[:1]:
        load = ", ".join(f"{x:.1f}" for x in r["load_average"])
        print(f"CPU ms per opening (every bank's, start-up included): {r['cpu_ms_per_opening']}; load average {load}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
