"""Benchmark: the chaos run of tests/e2e/test_chaos.py with bigger numbers (default 2,000 deals).

Same code (tests/e2e/chaos_support.py): deals on ceb, icbc and pab while the bank simulator drops, duplicates,
reorders notifications, fails requests with 503 and times out payout answers; two workers, one SIGKILLed and
restarted mid-run; reconciliation of every bank and day until every deal is final; then the same checks as the
test. Prints a table of what happened and how long it took: milestones and timed steps of the run ("at / took"),
CPU seconds per process, and how long callbacks queued at the bank. The pacing per database (agents at once,
callbacks in flight, worker poll) is `Tuning` in tests/e2e/chaos_support.py.

Run: .venv/bin/python bench/chaos.py [--deals 2000] [--seed N] [--postgres URL] [--json out.json]
(--postgres, or CUNGUAN_TEST_POSTGRES_URL, runs on a fresh schema of that server; SQLite otherwise.)
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# the chaos run's deals are confirmed by the platform's and the bank's signatures only, as in the chaos test
# (tests/conftest.py); its processes inherit this
os.environ.setdefault("CUNGUAN_PARTY_SIGNING", "0")

from tests.e2e.chaos_support import ChaosPlan, ChaosReport, ChaosStack, check_outcome, make_app, run_chaos  # noqa: E402
from tests.factories import provision_key_folders  # noqa: E402


@contextmanager
def database(workdir: Path, postgres_url: str) -> Iterator[str]:
    if not postgres_url:
        yield f"sqlite:///{workdir / 'chaos.db'}"
        return
    base = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", postgres_url)
    schema = f"chaos_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def table(report: ChaosReport, database_name: str) -> list[str]:
    figures = report.figures
    rows = [
        ("database", database_name),
        ("deals", str(report.plan.deals)),
        ("time (s)", f"{report.seconds:.1f}"),
        ("deals/s", f"{report.plan.deals / report.seconds:.1f}"),
        ("callbacks delivered", str(figures["callbacks_sent"])),
        ("callbacks dropped", str(figures["callbacks_dropped"])),
        ("callbacks duplicated", str(figures["callbacks_duplicated"])),
        (
            "callback queueing at the bank p50 / p90 (ms)",
            f"{figures['callback_lag_p50_ms']} / {figures['callback_lag_p90_ms']}",
        ),
        ("inbox rows (distinct notifications)", str(figures["inbox_rows"])),
        ("repairs by reconciliation (补单)", str(figures["repairs_recon"])),
        ("repairs on timelines (补单, incl. account queries)", str(figures["repair_events"])),
        ("reconciliation rounds", str(report.reconcile_rounds)),
        ("payouts", str(figures["payouts"])),
        ("payout submissions to the bank", str(figures["payout_submissions"])),
        ("payout queries (unknown outcome)", str(figures["query_jobs"])),
        ("job retries", str(figures["job_retries"])),
        ("dead jobs", str(figures["jobs_dead"])),
        ("worker killed after payouts at bank", str(report.killed_at_payouts)),
        ("final states", ", ".join(f"{state} {count}" for state, count in sorted(report.states.items()))),
        *((f"at / took (s): {name}", f"{seconds:.1f}") for name, seconds in report.phases.items()),
        *((f"CPU (s): {name}", f"{seconds:.1f}") for name, seconds in report.cpu_seconds.items()),
    ]
    width = max(len(name) for name, _ in rows)
    return ["| " + "what".ljust(width) + " | value |", "|" + "-" * (width + 2) + "|---|"] + [
        f"| {name.ljust(width)} | {value} |" for name, value in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=ChaosPlan.seed)
    parser.add_argument("--postgres", default=os.environ.get("CUNGUAN_TEST_POSTGRES_URL", ""))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    plan = ChaosPlan(deals=args.deals, seed=args.seed, deadline_s=max(600.0, args.deals * 1.5))
    with tempfile.TemporaryDirectory(prefix="chaos-bench-") as folder:
        workdir = Path(folder)
        keys = workdir / "keys"
        provision_key_folders(keys, workdir / "bank-sim-keys")
        with database(workdir, args.postgres) as url:
            stack = ChaosStack(workdir, url, keys, plan)
            flask_app = make_app(stack)
            try:
                report = run_chaos(stack, flask_app, plan, log=lambda line: print(f"[{time.strftime('%X')}] {line}"))
                check_outcome(stack, flask_app.extensions["cunguan.runtime"], report)
            except AssertionError:
                print(stack.logs())
                raise
            finally:
                stack.stop()
                flask_app.extensions["cunguan.runtime"].db.dispose()
    name = "postgresql" if args.postgres else "sqlite"
    print("\n".join(table(report, name)))
    print("all checks passed: every deal closed, ledger check, each reference once, no payout sent twice, repairs")
    if args.json:
        data = {"database": name, "seconds": report.seconds, "plan": asdict(report.plan), **report.figures}
        args.json.write_text(json.dumps(data | {"states": dict(report.states)}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
