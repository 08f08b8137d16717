"""Benchmark: the console at scale, small book against large book side by side, on PostgreSQL (issue 21).

Two cases, each in a fresh schema built in seconds with INSERT … SELECT generate_series: `small` (50,000
earlier ledger transfers, 1,000 deals with a funded custody account, 1,000 queued jobs) and `large`
(1,000,000 / 100,000 / 100,000). In each it times (median of 5 after one warm-up, milliseconds) every part of
the home page's figures (`app.ops.dashboard`), the figures whole, the pages `/admin/` (ops), `/admin/deals/`
(ops) and `/deals` (the agent owning every deal) through Flask's test client, and a job claim (`claim`,
rolled back). Prints the table with large/small; the issue's bar is ≤ 1.2 for the home page, the figures
and the claim, and deal lists under 300 ms.

Run: .venv/bin/python bench/scale.py [--cases small,large] [--json out.json]
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.calendars.alerts import calendar_alerts  # noqa: E402
from app.db.base import utcnow  # noqa: E402
from app.db.models import Deal  # noqa: E402
from app.figures import totals  # noqa: E402
from app.ledger.alerts import open_alerts  # noqa: E402
from app.ops import dashboard  # noqa: E402
from app.platform.runtime import Runtime  # noqa: E402
from app.queue import jobs  # noqa: E402
from bench.dashboard import bench_stack, earlier_transfers, fetch  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    transfers: int
    deals: int
    jobs: int


CASES = {
    "small": Case("small", 50_000, 1_000, 1_000),
    "large": Case("large", 1_000_000, 100_000, 100_000),
}


def copy_deals(rt: Runtime, template_id: int, count: int) -> None:
    """`count` copies of the template deal (numbers BENCH000000001 …), each with a custody account holding
    1,000.00 yuan, in two statements."""
    columns = [c.name for c in Deal.__table__.columns if c.name not in ("id", "deal_no")]
    listed = ", ".join(columns)
    with rt.db.engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO deals (deal_no, {listed}) SELECT 'BENCH' || lpad(n::text, 9, '0'), {listed}"
                " FROM deals, generate_series(1, :count) AS n WHERE deals.id = :template"
            ),
            {"count": count, "template": template_id},
        )
        connection.execute(
            text(
                "INSERT INTO ledger_accounts (code, type, name, debits_must_not_exceed_credits,"
                " credits_must_not_exceed_debits, hot, debits_posted, credits_posted, debits_pending,"
                " credits_pending, deal_id, created_at)"
                " SELECT 'custody:' || deal_no, 'liability', '存管', true, false, false, 0, 100000, 0, 0, id, now()"
                " FROM deals WHERE deal_no LIKE 'BENCH%'"
            )
        )


def queue_jobs(rt: Runtime, count: int) -> None:
    """`count` pending no-op jobs, due over the last hours (a large import's queue)."""
    with rt.db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO jobs (kind, payload, bank_code, status, attempts, max_attempts, run_after,"
                " created_at, updated_at) SELECT 'bench_noop', '{}', 'ceb', 'pending', 0, 12,"
                " now() - n * interval '100 milliseconds', now(), now() FROM generate_series(1, :count) AS n"
            ),
            {"count": count},
        )


def timed(run: Callable[[], object]) -> float:
    run()  # warm-up: plans and caches
    times = []
    for _ in range(5):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def claim_once(rt: Runtime) -> None:
    with rt.db.uow() as uow:  # left without commit: rolled back, the queue stays as it was
        assert jobs.claim(uow.session, "bench", now=utcnow()) is not None


def measure(case: Case, base: str) -> dict[str, float]:
    with bench_stack(base) as (rt, clients, template):
        started = time.perf_counter()
        earlier_transfers(rt, case.transfers)
        copy_deals(rt, template, case.deals - 1)
        queue_jobs(rt, case.jobs)
        folded = totals.fold(rt)  # what a worker does every 2 s: the copies' deltas into the running totals
        with rt.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
        print(
            f"{case.name}: built in {time.perf_counter() - started:.1f} s ({folded} figure deltas folded)",
            file=sys.stderr,
            flush=True,
        )
        now = rt.clock()
        days, start = dashboard.window(now.astimezone(dashboard.SHANGHAI).date())

        def part(function: Callable[..., object], *args: object) -> Callable[[], object]:
            def run() -> object:
                with rt.db.uow() as uow:
                    return function(uow.session, *args)

            return run

        parts: dict[str, Callable[[], object]] = {
            "flows": part(dashboard._flows, days, start),
            "kept figures (read)": part(lambda session: totals.read(session.connection())),
            "recount (the scan)": part(lambda session: totals.recount(session.connection())),
            "jobs": part(dashboard._jobs),
            "openings": part(lambda session: dashboard._openings(rt, session, now)),
            "ledger alerts": lambda: open_alerts(rt),
            "calendar alerts": lambda: calendar_alerts(rt, now),
            "figures": lambda: dashboard.compute(rt),
            "page /admin/": lambda: fetch(clients["ops"], "/admin/"),
            "page /admin/deals/": lambda: fetch(clients["ops"], "/admin/deals/"),
            "page /deals": lambda: fetch(clients["agent"], "/deals"),
            "job claim": lambda: claim_once(rt),
        }
        result = {name: timed(run) for name, run in parts.items()}
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="small,large")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = os.environ.get("CUNGUAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    names = args.cases.split(",")
    results = {name: measure(CASES[name], base) for name in names}
    header = f"{'median ms':<20}" + "".join(f"{name:>10}" for name in names)
    print(header + (f"{'large/small':>13}" if names == ["small", "large"] else ""))
    for what in results[names[0]]:
        line = f"{what:<20}" + "".join(f"{results[name][what]:>10.1f}" for name in names)
        if names == ["small", "large"]:
            line += f"{results['large'][what] / max(results['small'][what], 1e-9):>13.2f}"
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
