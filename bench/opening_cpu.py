"""Benchmark: CPU and statements per account opening in one worker process, the bank faked (answers in 30 ms
with its stamp), so that what the platform itself spends per opening is measured apart from the simulator, the
web app and the machine's load (bench/opening_pace.py runs the whole stack).

A fresh PostgreSQL schema, N imported contracts of ceb (20/s), then `run_workers` with T threads until every
opening is done: CPU ms per opening (time.process_time, every thread), statements per opening (the most frequent
listed) and the pace (wall clock: read it with the load average).

Run: .venv/bin/python bench/opening_cpu.py [--rows 400] [--threads 8]
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.crypto.keys import ensure_keys  # noqa: E402
from app.db.base import Base  # noqa: E402
from app.db.models import Job  # noqa: E402
from app.deals.contract_import import import_contracts  # noqa: E402
from app.platform.config import BankEndpoint, Config  # noqa: E402
from app.platform.runtime import Runtime  # noqa: E402
from app.queue.worker import run_workers  # noqa: E402
from app.users.service import create_user  # noqa: E402
from bench.contract_import import _database  # noqa: E402
from tests.integration.test_contract_import import contract_csv, contract_row  # noqa: E402

BANK_ANSWER_S = 0.03


class _Bank:
    def open_virtual_account(self, *_args: Any, **_kwargs: Any) -> datetime:
        time.sleep(BANK_ANSWER_S)
        return datetime.now(UTC)


def _openings_done(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        done = select(func.count()).where(Job.kind == "open_virtual_account", Job.status == "done")
        return uow.session.scalar(done) or 0


def run(rows: int, threads: int, postgres_url: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        url, drop = _database("postgresql", folder, postgres_url)
        try:
            ensure_keys(folder / "keys")
            bank = BankEndpoint("ceb", "中国光大银行", "http://127.0.0.1:9", open_per_second=20, open_per_day=10**6)
            config = Config(
                instance_path=folder / "instance",
                database_url=url,
                keys_dir=folder / "keys",
                secret_key="bench",
                public_base_url="http://127.0.0.1:5000",
                banks={"ceb": bank},
            )
            rt = create_app(config).extensions["cunguan.runtime"]
            Base.metadata.create_all(rt.db.engine)
            create_user(rt, "bench-agent", "bench-password-1", "agent", "压测经纪人")
            import_contracts(rt, "bench-agent", "bench.csv", contract_csv([contract_row(n) for n in range(rows)]))
            fake = _Bank()
            rt.gateway = lambda _code: fake
            statements: Counter[str] = Counter()
            event.listen(
                rt.db.engine,
                "before_cursor_execute",
                lambda _c, _cur, sql, *_rest: statements.update([" ".join(sql.split()[:4])[:60]]),
            )
            looked, finished = [0.0], [False]

            def should_stop() -> bool:
                if time.monotonic() - looked[0] > 0.5:
                    looked[0], finished[0] = time.monotonic(), _openings_done(rt) >= rows
                return finished[0]

            cpu, wall = time.process_time(), time.perf_counter()
            run_workers(rt, threads, should_stop=should_stop, poll_s=0.2)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(
                f"{rows} openings, {threads} threads: {cpu / rows * 1000:.1f} ms CPU and "
                f"{sum(statements.values()) / rows:.1f} statements per opening; {rows / wall:.1f}/s of 20; load {load}"
            )
            for sql, count in statements.most_common(8):
                print(f"  {count / rows:6.2f}  {sql}")
            rt.db.dispose()
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    run(args.rows, args.threads, args.postgres_url)


if __name__ == "__main__":
    main()
