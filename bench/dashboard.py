"""Benchmark: the console's home page and the deal lists as the book grows, on PostgreSQL.

It creates one deal through the services, copies it to 1,000, 10,000 and 100,000 deals, each with a funded
custody account, and times at each size (median and max of 5, milliseconds): the home page's figures
(`app.ops.dashboard.compute`, what `/admin/` shows every staff member), and through the app (Flask's test
client, logged in) the pages `/admin/` (ops), `/admin/deals/` (ops) and `/deals` (the agent who owns them all).

With --transfers N the ledger first gets N transfers older than the dashboard's window (the issue's
"1,000,000 earlier transfers"), written in one INSERT … SELECT.

Run: .venv/bin/python bench/dashboard.py [--sizes 1000,10000,100000] [--transfers 1000000]
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# the deals come from the tests' intake form, which has no phones: no party signing, as in the tests
os.environ.setdefault("CUNGUAN_PARTY_SIGNING", "0")

from app import create_app  # noqa: E402
from app.db.base import Base  # noqa: E402
from app.db.ledger_models import LedgerAccount  # noqa: E402
from app.db.models import Deal  # noqa: E402
from app.deals import service as deals  # noqa: E402
from app.figures import totals  # noqa: E402
from app.ops import dashboard  # noqa: E402
from app.platform.config import Config  # noqa: E402
from app.platform.runtime import Runtime  # noqa: E402
from app.tools.banksim.keys import provision_simulated_banks  # noqa: E402
from app.users.service import create_user  # noqa: E402
from tests.factories import RESALE_FORM  # noqa: E402 - the same valid intake form the tests use

BATCH = 5_000
PASSWORD = "bench-password-1"


def grow(rt: Runtime, template: dict[str, Any], have: int, want: int) -> None:
    """Copies of the template deal numbered have+1 … want, each with a custody account holding 1,000.00 yuan."""
    with rt.db.uow() as uow:
        for start in range(have, want, BATCH):
            numbers = range(start + 1, min(want, start + BATCH) + 1)
            deal_rows = [{**template, "deal_no": f"BENCH{n:09d}"} for n in numbers]
            ids = uow.session.scalars(insert(Deal).returning(Deal.id), deal_rows).all()
            uow.session.execute(
                insert(LedgerAccount),
                [
                    {
                        "code": f"custody:BENCH{n:09d}",
                        "type": "liability",
                        "name": "存管",
                        "credits_posted": 100_000,
                        "debits_posted": 0,
                        "deal_id": deal_id,
                    }
                    for n, deal_id in zip(numbers, ids, strict=True)
                ],
            )
        uow.commit()


def earlier_transfers(rt: Runtime, count: int) -> None:
    """`count` transfers between two accounts of their own, 30 days and more before now."""
    with rt.db.uow() as uow:
        accounts = [
            {"code": code, "type": "asset", "name": code, "debits_posted": 0, "credits_posted": 0}
            for code in ("bench:earlier-a", "bench:earlier-b")
        ]
        debit, credit = uow.session.scalars(insert(LedgerAccount).returning(LedgerAccount.id), accounts).all()
        uow.session.execute(
            text(
                "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount_fen, code, kind,"
                " created_at) SELECT 'EARLIER-' || n, :debit, :credit, 100, 'bench', 'single',"
                " now() - interval '30 days' - n * interval '1 second' FROM generate_series(1, :count) AS n"
            ),
            {"debit": debit, "credit": credit, "count": count},
        )
        uow.commit()


def logged_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token[1]})
    assert answer.status_code == 302, answer.text
    return client


def fetch(client: FlaskClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)


def report(size: int, what: str, run: Callable[[], object]) -> None:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{size:>8} {what:<16} {statistics.median(times):>10.1f} {max(times):>8.1f}", flush=True)


@contextmanager
def bench_stack(base: str) -> Iterator[tuple[Runtime, dict[str, FlaskClient], int]]:
    """The platform in a schema of its own on `base` (dropped afterwards): an agent and an ops user logged in
    (`clients` by role) and one resale deal (its id), the template the benchmarks copy."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with tempfile.TemporaryDirectory() as folder:
            instance = Path(folder)
            provision_simulated_banks(instance / "keys", instance / "bank-sim-keys", ["ceb", "icbc", "pab"])
            config = Config(
                instance_path=instance,
                database_url=f"{base}?options=-csearch_path%3D{schema}",
                keys_dir=instance / "keys",
                secret_key="bench",
            )
            app = create_app(config)
            rt: Runtime = app.extensions["cunguan.runtime"]
            Base.metadata.create_all(rt.db.engine)
            agent = create_user(rt, "bench-agent", PASSWORD, "agent", "压测经纪人")
            create_user(rt, "bench-ops", PASSWORD, "ops", "压测运营")
            clients = {role: logged_in(app, f"bench-{role}") for role in ("agent", "ops")}
            deal_id = deals.create_deal(
                rt, deals.Actor(agent.id, agent.username, "agent"), "110000", "resale_escrow", RESALE_FORM
            )
            try:
                yield rt, clients, deal_id
            finally:
                rt.db.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--transfers", type=int, default=0, help="earlier ledger transfers to add first")
    args = parser.parse_args()
    base = os.environ.get("CUNGUAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with bench_stack(base) as (rt, clients, deal_id):
        pages = (("/admin/", "ops"), ("/admin/deals/", "ops"), ("/deals", "agent"))
        with rt.db.uow() as uow:
            row = uow.session.execute(select(Deal.__table__).where(Deal.id == deal_id)).mappings().one()
            template = {key: value for key, value in row.items() if key not in ("id", "deal_no")}
        if args.transfers:
            earlier_transfers(rt, args.transfers)
        have = 1
        print(f"{'deals':>8} {'what':<16} {'median ms':>10} {'max ms':>8}")
        for size in (int(part) for part in args.sizes.split(",")):
            grow(rt, template, have, size)
            have = size
            totals.fold(rt)  # what a worker does every 2 s: the copies' deltas into the running totals
            with rt.db.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
            report(size, "figures", lambda: dashboard.compute(rt))
            for path, role in pages:
                report(size, path, lambda path=path, role=role: fetch(clients[role], path))


if __name__ == "__main__":
    main()
