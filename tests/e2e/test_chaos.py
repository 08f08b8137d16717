"""Chaos (issue 6): 140 resale deals on three banks (ceb 110000, icbc 320100, pab 440300) while the bank
simulator drops, duplicates, reorders notifications, fails requests with 503 and times out payout answers; two
`flask worker` processes, one killed with SIGKILL mid-run and restarted; then `flask reconcile` for every bank and
day until every deal is final.

Asserted (tests/e2e/chaos_support.check_outcome): every deal closed; `flask ledger check` passes; each bank
reference posted exactly once; every payout submitted to the bank once (the simulator counts submissions per
payout id), paid once and settled once; no money left at the bank; every job done (none dead); every dropped
notification made good (补单 on the timeline, or the payout settled by a query) and reconciliation repaired
nothing that was not lost.

Agreements: one real agreement is rendered and signed, every other deal gets its own record carrying a copy of
that signed file (`SignOnce`, as the simulation sandbox does) - several hundred real renders do not fit the run.
Everything else is real: processes, HTTP, signatures, workers, ledger, workflows, reconciliation. The opening
limits are raised to 40/s for the run (platform env CUNGUAN_BANK_<CODE>_OPEN_PER_SECOND and the simulator's
/sim/limits), the lease to 2 s (`flask worker --lease`). Reconciliation rounds while deals are still moving are
finance's (the console's service), the closing round is `flask reconcile`. The longer run is `bench/chaos.py`.

Sized to finish well within two minutes on a shared 2-core machine (phases and CPU per process are printed;
`bench/chaos.py --deals 140` shows them as a table): at a drop rate of 5 %, 140 deals leave a kind of
notification undropped (asserted) about twice in a thousand runs; every fault kind and the kill mid-run stay.
It runs on one database: PostgreSQL where CUNGUAN_TEST_POSTGRES_URL is set (CI), SQLite otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.platform.runtime import Runtime
from tests.conftest import DATABASES
from tests.e2e.chaos_support import ChaosPlan, ChaosStack, check_outcome, make_app, run_chaos
from tests.factories import provision_key_folders

# One database per run: PostgreSQL where it is configured (CI), SQLite otherwise - the run is too long to
# repeat per database, and CI runs the suite once with PostgreSQL configured.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", [DATABASES[-1]], indirect=True)]

PLAN = ChaosPlan(deals=140)


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[ChaosStack]:
    keys = tmp_path / "keys"
    provision_key_folders(keys, tmp_path / "bank-sim-keys")
    running = ChaosStack(tmp_path, database_url, keys, PLAN)
    try:
        yield running
    finally:
        running.stop()


def test_chaos_deals_all_finish_and_nothing_is_paid_twice(stack: ChaosStack) -> None:
    flask_app = make_app(stack)
    runtime: Runtime = flask_app.extensions["cunguan.runtime"]
    try:
        report = run_chaos(stack, flask_app, PLAN)
        print(f"chaos: {PLAN.deals} deals in {report.seconds:.1f} s, {report.reconcile_rounds} reconciliation rounds")
        print(report.figures)
        print(report.phases)
        check_outcome(stack, runtime, report)
    except AssertionError:
        print(stack.logs())
        raise
    finally:
        runtime.db.dispose()
