"""Many writers at once on one hot account and many ordinary ones, and a writer killed mid-batch."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from app.db.base import utcnow
from app.db.ledger_models import LedgerTransfer
from app.db.session import Database
from app.domain import ledger
from app.domain.ledger import AccountSpec, TransferSpec
from app.domain.ledger_batch import LedgerOp
from app.ledger.batcher import LedgerBatcher
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.runtime import Runtime

THREADS = 32
ROUNDS = 12
CLEARING = ledger.bank_clearing("ceb")


def _custody(n: int) -> str:
    return f"custody:T{n}"


def test_32_threads_on_one_hot_account_keep_the_ledger_exact(rt: Runtime) -> None:
    options = {} if rt.db.url.startswith("sqlite") else {"pool_size": THREADS + 4, "max_overflow": 0}
    db = Database(rt.db.url, **options)
    with db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in (CLEARING, ledger.fee_income(), *(ledger.deal_custody(f"T{n}") for n in range(THREADS))):
            repo.ensure_account(spec)
        uow.commit()
    batcher = LedgerBatcher(db)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(n: int) -> None:
        """Arrivals (buffered on the hot account), fees (hot income) and payouts (which lock it)."""
        try:
            for i in range(ROUNDS):
                arrival = TransferSpec(f"arrival:{n}:{i}", CLEARING.code, _custody(n), 100_00, "arrival")
                if n % 2:  # half of the writers go through the group-commit batcher
                    assert batcher.submit(LedgerOp.post(arrival, utcnow())).status == "created"
                else:
                    with db.uow() as uow:
                        LedgerRepository(uow.session).post(arrival)
                        uow.commit()
                with db.uow() as uow:
                    repo = LedgerRepository(uow.session)
                    repo.post(TransferSpec(f"fee:{n}:{i}", _custody(n), "fee_income", 1_00, "fee"))
                    if i % 3 == 2:
                        repo.hold(TransferSpec(f"payout:{n}:{i}", _custody(n), CLEARING.code, 250_00, "payout"))
                        repo.post_pending(f"payout:{n}:{i}:posted", f"payout:{n}:{i}", 240_00)
                    uow.commit()
        except BaseException as error:  # reported below: a thread's failure must fail the test
            errors.append(error)

    def folder() -> None:
        while not done.is_set():
            try:
                with db.uow() as uow:
                    LedgerRepository(uow.session).fold_hot()
                    uow.commit()
            except BaseException as error:
                errors.append(error)
                return
            time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    fold_thread = threading.Thread(target=folder)
    fold_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    fold_thread.join()
    batcher.close()
    assert errors == []

    payouts = ROUNDS // 3
    with db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.balance(CLEARING.code) == THREADS * (ROUNDS * 100_00 - payouts * 240_00)
        assert repo.balance("fee_income") == THREADS * ROUNDS * 1_00
        expected_custody = ROUNDS * 100_00 - ROUNDS * 1_00 - payouts * 240_00
        assert {repo.balance(_custody(n)) for n in range(THREADS)} == {expected_custody}
        report = check_ledger(uow.session)
        assert report.ok, report.problems
        assert report.transfers_checked == THREADS * (2 * ROUNDS + 2 * payouts)
    db.dispose()


def test_a_writer_killed_mid_batch_leaves_no_half_transfer(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in (
            CLEARING,
            ledger.fee_income(),
            ledger.deal_custody("C"),
            AccountSpec("payable:C", "liability", "应付 C", debits_must_not_exceed_credits=True),
        ):
            repo.ensure_account(spec)
        uow.commit()
    script = Path(__file__).with_name("ledger_crash_writer.py")
    process = subprocess.Popen([sys.executable, str(script), rt.db.url], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = []
    while sum(line.startswith("commit") for line in lines) < 3:
        line = process.stdout.readline()
        assert line, f"writer ended early: {lines[-5:]}"
        lines.append(line.strip())
    time.sleep(random.uniform(0.01, 0.08))
    process.send_signal(signal.SIGKILL)
    lines += [line.strip() for line in process.stdout.read().splitlines()]
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    begun = max(int(line.split()[1]) for line in lines if line.startswith("begin"))
    committed = max(int(line.split()[1]) for line in lines if line.startswith("commit"))

    with rt.db.uow() as uow:
        ids = uow.session.scalars(select(LedgerTransfer.id)).all()
        report = check_ledger(uow.session)
    assert report.ok, report.problems
    per_chain = Counter(transfer_id.rsplit(":", 1)[0] for transfer_id in ids)
    assert set(per_chain.values()) == {3}, "every chain is whole"
    batches = {int(chain.split(":")[1]) for chain in per_chain}
    assert batches == set(range(1, len(batches) + 1)), "batches are whole and in order"
    assert begun == committed + 1, "killed inside a batch"
    assert committed <= len(batches) <= begun
    assert len(per_chain) == 200 * len(batches)


def test_a_transfer_posted_meanwhile_by_another_transaction_is_reported_existing(rt: Runtime) -> None:
    """Two transactions post the same hold at once. The second plans it as new, waits for the first's locks,
    then finds the id taken: it runs again (no savepoint needed for one op) and reports the transfer as
    existing - and the hot-account buffer it folded while waiting is not lost."""
    if rt.db.url.startswith("sqlite"):
        _same_id_sequentially(rt)
        return
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in (CLEARING, ledger.deal_custody("R"), ledger.deal_custody("R3")):
            repo.ensure_account(spec)
        repo.post(TransferSpec("arrival:R", CLEARING.code, "custody:R", 500_00, "arrival"))
        uow.commit()
    hold = TransferSpec("payout:R", "custody:R", CLEARING.code, 200_00, "release")
    first = rt.db.uow()
    first.__enter__()
    LedgerRepository(first.session).hold(hold)  # clearing and custody locked until `first` ends
    outcome: dict[str, object] = {}

    def second() -> None:
        try:
            with rt.db.uow() as uow:
                transfer, created = LedgerRepository(uow.session).hold(hold)
                outcome["created"], outcome["amount"] = created, transfer.amount_fen
                uow.commit()
        except BaseException as error:  # reported below
            outcome["error"] = error

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)  # the second now waits for the locks
    with rt.db.uow() as uow:  # buffered on the hot account without a lock: the second folds it
        LedgerRepository(uow.session).post(TransferSpec("arrival:R3", CLEARING.code, "custody:R3", 7_00, "arrival"))
        uow.commit()
    first.commit()
    first.__exit__(None, None, None)
    thread.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome == {"created": False, "amount": 200_00}
    with rt.db.uow() as uow:
        report = check_ledger(uow.session)
        assert LedgerRepository(uow.session).totals(CLEARING.code) == (507_00, 0, 0, 200_00)
    assert report.ok, report.problems


def _same_id_sequentially(rt: Runtime) -> None:
    """SQLite has one writer at a time: the second simply finds the first's transfer."""
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in (CLEARING, ledger.deal_custody("R")):
            repo.ensure_account(spec)
        repo.post(TransferSpec("arrival:R", CLEARING.code, "custody:R", 500_00, "arrival"))
        hold = TransferSpec("payout:R", "custody:R", CLEARING.code, 200_00, "release")
        assert repo.hold(hold)[1] is True
        assert repo.hold(hold)[1] is False
        uow.commit()
