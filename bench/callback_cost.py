"""Benchmark: what one bank callback costs in process, by path, on PostgreSQL (no HTTP, one thread).

For the bare signature check (`/api/banks/<bank>/ping`), the acknowledgement (inbox mode: verified, stored),
inline processing (stored and processed in the request) and the worker's processing of acknowledged
callbacks: CPU milliseconds of this Python process and of the PostgreSQL backends it used per callback, wall
milliseconds, and SQL statements per callback. `bench/callbacks.py` measures the same over HTTP.

Run: .venv/bin/python bench/callback_cost.py [--callbacks 1000] [--deals 200]
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.bank_inbox.inbox import drain_inbox  # noqa: E402
from app.platform.config import Config  # noqa: E402
from app.tools.banksim.keys import provision_simulated_banks  # noqa: E402
from bench.callbacks import prepare, signed_requests  # noqa: E402 - the same deals and signed bodies
from bench.proc import cpu_seconds  # noqa: E402


@contextmanager
def measured(engine: Engine, count: int, label: str) -> Iterator[None]:
    """Print the cost per callback of what runs inside: this process's CPU and that of every PostgreSQL
    backend it used (the request's transaction and the definitions' freshness reads may take two pooled
    connections), each backend counted from the first time it was checked out inside."""
    statements = [0]
    backends: dict[int, float] = {}  # backend pid -> its CPU seconds when first seen

    def counting(*_args: object) -> None:
        statements[0] += 1

    def seen(dbapi_connection: Any, *_args: object) -> None:
        pid = dbapi_connection.info.backend_pid
        if pid not in backends:
            backends[pid] = cpu_seconds(pid)

    event.listen(engine, "before_cursor_execute", counting)
    event.listen(engine, "checkout", seen)
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        yield
    finally:
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        backend_cpu = sum(cpu_seconds(pid) - start for pid, start in backends.items())
        event.remove(engine, "checkout", seen)
        event.remove(engine, "before_cursor_execute", counting)
        print(
            f"{label:<28} {cpu * 1000 / count:>8.2f} {backend_cpu * 1000 / count:>10.2f}"
            f" {wall * 1000 / count:>8.2f} {statements[0] / count:>11.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callbacks", type=int, default=1000)
    parser.add_argument("--deals", type=int, default=200)
    args = parser.parse_args()
    base = os.environ.get("CUNGUAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with tempfile.TemporaryDirectory() as folder:
            keys_dir, bank_keys_dir = Path(folder) / "keys", Path(folder) / "bank-sim-keys"
            provision_simulated_banks(keys_dir, bank_keys_dir, ["ceb"])
            config = Config(
                instance_path=Path(folder),
                database_url=f"{base}?options=-csearch_path%3D{schema}",
                keys_dir=keys_dir,
                secret_key="bench",
            )
            accounts = prepare(config, args.deals)
            app = create_app(config)
            rt = app.extensions["cunguan.runtime"]
            client = app.test_client()

            def post_all(kind: str) -> Callable[[], None]:
                requests = signed_requests(bank_keys_dir, accounts, args.callbacks, kind)

                def run() -> None:
                    for path, body, headers in requests:
                        answer = client.post(path, data=body, headers=headers)
                        assert answer.status_code == 200, answer.get_data(as_text=True)

                return run

            print(f"{args.callbacks} callbacks on {args.deals} deals, PostgreSQL, per callback:")
            print(f"{'path':<28} {'CPU ms':>8} {'PG CPU ms':>10} {'wall ms':>8} {'statements':>11}")
            for mode, kind, label in (
                ("inline", "ping", "bare signature check"),
                ("inline", "callback", "inline (processed)"),
                ("inbox", "callback", "acknowledged (inbox)"),
            ):
                os.environ["CUNGUAN_CALLBACK_PROCESSING"] = mode
                post_all(kind)()  # warm up: imports, pools, compiled statements
                run = post_all(kind)
                with measured(rt.db.engine, args.callbacks, label):
                    run()
            with measured(rt.db.engine, 2 * args.callbacks, "processed by the worker"):
                processed = drain_inbox(rt)
            assert processed == 2 * args.callbacks, processed
            assert rt.db.engine.pool.checkedout() == 0, rt.db.engine.pool.status()  # every connection returned
            rt.db.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
