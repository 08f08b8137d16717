"""Hot accounts on a real database: buffered postings, exact reads, folding, low-balance alerts, batching."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.db.ledger_models import LedgerAccount, LedgerAlert, LedgerHotEntry, LedgerTransfer
from app.domain import ledger
from app.domain.ledger import AccountSpec, TransferSpec
from app.domain.ledger_batch import LedgerOp
from app.ledger.batcher import LedgerBatcher
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.errors import LedgerError
from app.platform.runtime import Runtime

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CLEARING = ledger.bank_clearing("ceb")


def _setup(rt: Runtime, deals: int = 2, alert_below_fen: int | None = None) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        repo.ensure_account(AccountSpec(**{**CLEARING.__dict__, "alert_below_fen": alert_below_fen}))
        repo.ensure_account(ledger.fee_income())
        for n in range(deals):
            repo.ensure_account(ledger.deal_custody(f"D{n}"))
        uow.commit()


def _arrive(rt: Runtime, ref: str, deal: int, amount: int) -> None:
    with rt.db.uow() as uow:
        spec = TransferSpec(f"arrival:ceb:{ref}", CLEARING.code, f"custody:D{deal}", amount, "arrival")
        LedgerRepository(uow.session).post(spec, T0)
        uow.commit()


def _buffer_rows(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(LedgerHotEntry)) or 0)


def test_safe_postings_to_a_hot_account_are_buffered_and_reads_stay_exact(rt: Runtime) -> None:
    _setup(rt)
    _arrive(rt, "R1", 0, 300_00)
    _arrive(rt, "R2", 1, 200_00)
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        row = repo.account(CLEARING.code)
        assert (row.debits_posted, row.credits_posted) == (0, 0), "the hot row was not touched"
        assert repo.balance(CLEARING.code) == 500_00, "buffered postings count in the balance"
        assert repo.balance("custody:D0") == 300_00
        assert check_ledger(uow.session).ok
    assert _buffer_rows(rt) == 2
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).fold_hot(T0) == 2
        uow.commit()
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.account(CLEARING.code).debits_posted == 500_00 and repo.balance(CLEARING.code) == 500_00
        assert check_ledger(uow.session).ok
    assert _buffer_rows(rt) == 0


def test_a_posting_that_could_break_the_flag_folds_and_checks_the_exact_balance(rt: Runtime) -> None:
    _setup(rt)
    _arrive(rt, "R1", 0, 500_00)
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        with pytest.raises(LedgerError) as caught:
            repo.post(TransferSpec("payout:P0", "custody:D0", CLEARING.code, 500_01, "payout"), T0)
        assert caught.value.code == "BALANCE_CONSTRAINT"
        repo.post(TransferSpec("payout:P1", "custody:D0", CLEARING.code, 500_00, "payout"), T0)
        uow.commit()
    assert _buffer_rows(rt) == 0, "the guarded posting folded the buffer first"
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.totals(CLEARING.code) == (500_00, 500_00, 0, 0)
        assert check_ledger(uow.session).ok


def test_unguarded_hot_income_account_buffers_both_sides(rt: Runtime) -> None:
    _setup(rt)
    _arrive(rt, "R1", 0, 100_00)
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        repo.post(TransferSpec("fee:D0", "custody:D0", "fee_income", 3_00, "fee"), T0)
        repo.reverse("fee:D0", "fee:D0:reversal", T0)
        assert repo.balance("fee_income") == 0 and repo.account("fee_income").credits_posted == 0
        uow.commit()
    assert _buffer_rows(rt) == 3  # one arrival, the fee, its reversal
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).ok


def _open_alerts(rt: Runtime) -> list[tuple[int, int]]:
    with rt.db.uow() as uow:
        rows = uow.session.execute(
            select(LedgerAlert.projected_fen, LedgerAlert.threshold_fen).where(LedgerAlert.cleared_at.is_(None))
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_low_projected_balance_raises_an_alert_before_postings_fail_and_clears_it(rt: Runtime) -> None:
    _setup(rt, alert_below_fen=100_00)
    _arrive(rt, "R1", 0, 300_00)
    with rt.db.uow() as uow:  # a payout hold in flight lowers the projected balance to 50.00
        LedgerRepository(uow.session).hold(TransferSpec("payout:P1", "custody:D0", CLEARING.code, 250_00, "payout"), T0)
        uow.commit()
    assert _open_alerts(rt) == [(50_00, 100_00)], "alert while the hold can still be posted"
    with rt.db.uow() as uow:
        LedgerRepository(uow.session).post_pending("payout:P1:posted", "payout:P1", at=T0)
        uow.commit()
    assert len(_open_alerts(rt)) == 1, "one alert per episode"
    _arrive(rt, "R2", 1, 500_00)
    with rt.db.uow() as uow:
        LedgerRepository(uow.session).fold_hot(T0)
        uow.commit()
    assert _open_alerts(rt) == [], "cleared once the balance is back above the threshold"
    with rt.db.uow() as uow:
        alert = uow.session.scalars(select(LedgerAlert)).one()
        assert alert.cleared_at is not None and alert.account.code == CLEARING.code


def test_a_refused_posting_on_a_guarded_hot_account_raises_an_alert_without_threshold(rt: Runtime) -> None:
    _setup(rt)
    with rt.db.uow() as uow:  # the deal's money arrived at another bank: CEB's clearing account is empty
        repo = LedgerRepository(uow.session)
        repo.ensure_account(ledger.bank_clearing("icbc"))
        repo.post(TransferSpec("arrival:icbc:R1", "bank_clearing:icbc", "custody:D0", 100_00, "arrival"), T0)
        uow.commit()
    with rt.db.uow() as uow, pytest.raises(LedgerError):
        LedgerRepository(uow.session).post(
            TransferSpec("payout:P1", "custody:D0", CLEARING.code, 1_00, "payout"), T0
        )  # leaving the unit of work without commit rolls back
    assert _open_alerts(rt) == [], "the refusal rolled back with the caller's transaction"
    batcher = LedgerBatcher(rt.db)
    try:
        result = batcher.submit(
            LedgerOp.post(TransferSpec("payout:P1", "custody:D0", CLEARING.code, 1_00, "payout"), T0)
        )
    finally:
        batcher.close()
    assert result.status == "BALANCE_CONSTRAINT"
    assert _open_alerts(rt) == [(0, 0)]


def test_batcher_serves_many_threads_with_their_own_results(rt: Runtime) -> None:
    _setup(rt, deals=8)
    batcher = LedgerBatcher(rt.db, max_batch=16)
    results: dict[int, list[str]] = {}

    def caller(n: int) -> None:
        statuses = []
        for i in range(20):
            spec = TransferSpec(f"arrival:ceb:{n}:{i}", CLEARING.code, f"custody:D{n}", 10_00, "arrival")
            statuses.append(batcher.submit(LedgerOp.post(spec, T0)).status)
        chain = batcher.submit_many(
            [
                LedgerOp.post(
                    TransferSpec(f"release:{n}", f"custody:D{n}", "fee_income", 150_00, "fee"), T0, linked=True
                ),
                LedgerOp.post(TransferSpec(f"fee:{n}", f"custody:D{n}", "fee_income", 60_00, "fee"), T0),
            ]
        )
        statuses += [r.status for r in chain]
        statuses.append(batcher.submit(LedgerOp.post(spec, T0)).status)  # a repeat of the last arrival
        results[n] = statuses

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    for statuses in results.values():
        assert statuses == ["created"] * 20 + ["LINKED_OP_FAILED", "BALANCE_CONSTRAINT", "exists"]
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.balance(CLEARING.code) == 8 * 20 * 10_00
        assert [repo.balance(f"custody:D{n}") for n in range(8)] == [200_00] * 8
        assert repo.balance("fee_income") == 0
        report = check_ledger(uow.session)
        assert report.ok and report.transfers_checked == 160
        assert uow.session.scalar(select(LedgerAccount.hot).where(LedgerAccount.code == CLEARING.code)) is True


def test_worker_maintenance_folds_buffers_and_voids_expired_holds(rt: Runtime) -> None:
    from app.queue.worker import run_worker

    _setup(rt)
    _arrive(rt, "R1", 0, 300_00)
    with rt.db.uow() as uow:
        LedgerRepository(uow.session).hold(
            TransferSpec("payout:P1", "custody:D0", CLEARING.code, 100_00, "payout"), T0, timeout_s=60
        )
        uow.commit()
    rt.clock = lambda: datetime(2026, 11, 23, 2, 2, tzinfo=UTC)  # two minutes later: the hold has expired
    assert run_worker(rt, should_stop=lambda: False, burst=True) == 0
    assert _buffer_rows(rt) == 0
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.totals(CLEARING.code) == (300_00, 0, 0, 0)
        assert repo.account(CLEARING.code).debits_posted == 300_00
        assert uow.session.get(LedgerTransfer, "expire:payout:P1") is not None


def test_cli_threshold_alerts_and_fold(app: Flask, rt: Runtime) -> None:
    _setup(rt)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["ledger", "alert-threshold", "custody:D0", "10"]).exit_code == 1, "not hot"
    result = runner.invoke(args=["ledger", "alert-threshold", CLEARING.code, "1,000.00"])
    assert result.exit_code == 0 and "¥1,000.00" in result.output
    _arrive(rt, "R1", 0, 300_00)
    fold = runner.invoke(args=["ledger", "fold"])
    assert fold.exit_code == 0 and "1 条" in fold.output
    alerts = runner.invoke(args=["ledger", "alerts"])
    assert alerts.exit_code == 1 and "¥300.00" in alerts.output and "¥1,000.00" in alerts.output
    assert runner.invoke(args=["ledger", "alert-threshold", CLEARING.code, "--off"]).exit_code == 0
    runner.invoke(args=["ledger", "fold"])
    assert runner.invoke(args=["ledger", "alerts"]).exit_code == 0


def test_staff_see_the_alert_banner_and_the_metric(rt: Runtime, login: Callable[[str], FlaskClient]) -> None:
    _setup(rt, alert_below_fen=1_000_00)
    _arrive(rt, "R1", 0, 300_00)
    with rt.db.uow() as uow:
        LedgerRepository(uow.session).fold_hot(T0)
        uow.commit()
    page = login("finance").get("/deals").text
    assert "账户预警" in page and "银行清算户（中国光大银行）" in page and "¥300.00" in page
    assert "bank_clearing:ceb" not in page, "people see the account's label, not its code"
    metrics = login("admin").get("/metrics")
    assert metrics.status_code == 200
    assert 'cunguan_ledger_hot_projected_balance_fen{account="bank_clearing:ceb"} 30000' in metrics.text
    assert 'cunguan_ledger_hot_alert{account="bank_clearing:ceb"} 1' in metrics.text
    agent = login("agent")
    assert "账户预警" not in agent.get("/deals").text
    assert agent.get("/metrics").status_code == 403


def test_first_postings_at_a_new_bank_create_its_accounts_once_even_at_the_same_time(rt: Runtime) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with rt.db.uow() as uow:
                barrier.wait()
                LedgerRepository(uow.session).ensure_account(ledger.bank_clearing("pab"))
                uow.commit()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with rt.db.uow() as uow:
        codes = uow.session.scalars(select(LedgerAccount.code).where(LedgerAccount.code == "bank_clearing:pab")).all()
        assert codes == ["bank_clearing:pab"]


def test_the_same_transfer_posted_by_two_transactions_at_once_is_posted_once(rt: Runtime) -> None:
    """Two servers receive the same bank reference at the same moment: the second sees the first's."""
    _setup(rt)
    first_posted, release = threading.Event(), threading.Event()
    outcomes: dict[str, bool] = {}
    errors: list[BaseException] = []
    spec = TransferSpec("arrival:ceb:SAME", CLEARING.code, "custody:D0", 100_00, "arrival")

    def post(name: str, hold_open: bool) -> None:
        try:
            with rt.db.uow() as uow:
                outcomes[name] = LedgerRepository(uow.session).post(spec, T0)[1]
                if hold_open:
                    first_posted.set()
                    release.wait(10)
                uow.commit()
        except BaseException as error:  # reported below
            errors.append(error)

    first = threading.Thread(target=post, args=("first", True))
    first.start()
    assert first_posted.wait(10)
    second = threading.Thread(target=post, args=("second", False))
    second.start()
    second.join(0.5)  # the second is now waiting for the first (row lock, or SQLite's write lock)
    release.set()
    first.join()
    second.join()
    assert errors == []
    assert outcomes == {"first": True, "second": False}
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).balance("custody:D0") == 100_00
        assert check_ledger(uow.session).ok
