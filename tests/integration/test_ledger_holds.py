"""Pending transfers (holds), linked batches and reversals, as accounting scenarios on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.db.ledger_models import LedgerTransfer
from app.domain import ledger
from app.domain.ledger import AccountSpec, TransferSpec
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.errors import LedgerError
from app.platform.runtime import Runtime

FEES = AccountSpec("fee_income", "income", "手续费收入")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

PAYABLE = AccountSpec("payable:D1", "liability", "应付卖方 D1", debits_must_not_exceed_credits=True)


def _funded(repo: LedgerRepository, amount_fen: int = 1_000_00) -> None:
    for spec in (ledger.bank_clearing("ceb"), ledger.deal_custody("D1"), PAYABLE, FEES):
        repo.ensure_account(spec)
    repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", amount_fen, "arrival"), T0)


def _state(repo: LedgerRepository, code: str) -> tuple[int, int, int, int]:
    account = repo.account(code)
    return account.debits_posted, account.credits_posted, account.debits_pending, account.credits_pending


def test_payout_hold_posted_on_success(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _funded(repo)
        repo.hold(TransferSpec("payout:P1", "custody:D1", "bank_clearing:ceb", 1_000_00, "payout"), T0)
        assert _state(repo, "custody:D1") == (0, 1_000_00, 1_000_00, 0)
        assert repo.balance("custody:D1") == 1_000_00, "a hold is not yet a movement"
        with pytest.raises(LedgerError) as caught:
            repo.hold(TransferSpec("payout:P2", "custody:D1", "bank_clearing:ceb", 1, "payout"), T0)
        assert caught.value.code == "BALANCE_CONSTRAINT", "money on hold cannot be released twice"
        repo.post_pending("payout:P1:posted", "payout:P1", at=T0)
        assert _state(repo, "custody:D1") == (1_000_00, 1_000_00, 0, 0)
        with pytest.raises(LedgerError) as caught:
            repo.void_pending("payout:P1:void", "payout:P1", T0)
        assert caught.value.code == "PENDING_ALREADY_RESOLVED"
        assert check_ledger(uow.session).ok


def test_payout_hold_voided_on_failure_then_paid_again(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _funded(repo)
        repo.hold(TransferSpec("payout:P1", "custody:D1", "bank_clearing:ceb", 1_000_00, "payout"), T0)
        voided, created = repo.void_pending("payout:P1:void", "payout:P1", T0)
        assert created and voided.amount_fen == 1_000_00
        assert repo.void_pending("payout:P1:void", "payout:P1", T0)[1] is False, "idempotent"
        assert _state(repo, "custody:D1") == (0, 1_000_00, 0, 0)
        repo.hold(TransferSpec("payout:P2", "custody:D1", "bank_clearing:ceb", 1_000_00, "payout"), T0)
        repo.post_pending("payout:P2:posted", "payout:P2", at=T0)
        assert repo.balance("custody:D1") == 0
        assert check_ledger(uow.session).ok


def test_partial_post_releases_the_rest(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _funded(repo)
        repo.hold(TransferSpec("payout:P1", "custody:D1", "bank_clearing:ceb", 1_000_00, "payout"), T0)
        with pytest.raises(LedgerError):
            repo.post_pending("payout:P1:posted", "payout:P1", 1_000_01, T0)
        repo.post_pending("payout:P1:posted", "payout:P1", 600_00, T0)
        assert _state(repo, "custody:D1") == (600_00, 1_000_00, 0, 0)
        assert repo.balance("custody:D1") == 400_00
        assert check_ledger(uow.session).ok


def test_expired_holds_are_voided(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _funded(repo)
        repo.hold(TransferSpec("h1", "custody:D1", "payable:D1", 100_00, "release"), T0, timeout_s=60)
        repo.hold(TransferSpec("h2", "custody:D1", "payable:D1", 100_00, "release"), T0, timeout_s=3600)
        repo.hold(TransferSpec("h3", "custody:D1", "payable:D1", 100_00, "release"), T0)
        assert repo.void_expired(T0 + timedelta(seconds=59)) == []
        assert repo.void_expired(T0 + timedelta(seconds=61)) == ["h1"]
        assert repo.void_expired(T0 + timedelta(days=9)) == ["h2"], "no timeout means held until resolved"
        assert _state(repo, "custody:D1")[2] == 100_00
        assert check_ledger(uow.session).ok


def test_linked_transfers_all_or_nothing(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _funded(repo)
        release_minus_fee = [
            TransferSpec("release:D1", "custody:D1", "payable:D1", 990_00, "release"),
            TransferSpec("fee:D1", "custody:D1", "fee_income", 10_00, "fee"),
        ]
        too_much = [
            TransferSpec("release:D1:x", "custody:D1", "payable:D1", 990_00, "release"),
            TransferSpec("fee:D1:x", "custody:D1", "fee_income", 10_01, "fee"),
        ]
        with pytest.raises(LedgerError):
            repo.post_linked(too_much, T0)
        assert repo.balance("custody:D1") == 1_000_00, "the first of the failed batch was undone"
        assert uow.session.get(LedgerTransfer, "release:D1:x") is None
        repo.post_linked(release_minus_fee, T0)
        assert (repo.balance("payable:D1"), repo.balance("fee_income"), repo.balance("custody:D1")) == (
            990_00,
            10_00,
            0,
        )
        assert check_ledger(uow.session).ok


def test_reversal_corrects_without_touching_the_original(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _funded(repo)
        repo.post(TransferSpec("release:D1", "custody:D1", "payable:D1", 300_00, "release"), T0)
        reversal, _ = repo.reverse("release:D1", "reversal:release:D1", T0)
        accounts = (repo.account("payable:D1").id, repo.account("custody:D1").id)
        assert (reversal.debit_account_id, reversal.credit_account_id) == accounts
        assert repo.balance("custody:D1") == 1_000_00 and repo.balance("payable:D1") == 0
        with pytest.raises(LedgerError):
            repo.reverse("release:D1", "reversal:release:D1:again", T0)  # payable has nothing left
        hold, _ = repo.hold(TransferSpec("h", "custody:D1", "payable:D1", 1, "release"), T0)
        with pytest.raises(LedgerError) as caught:
            repo.reverse(hold.id, "reversal:h", T0)
        assert caught.value.code == "NOT_POSTED"
        assert check_ledger(uow.session).ok


def test_check_detects_pending_totals_that_disagree(rt: Runtime) -> None:
    from sqlalchemy import text

    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _funded(repo)
        repo.hold(TransferSpec("h", "custody:D1", "payable:D1", 100_00, "release"), T0)
        uow.commit()
    with rt.db.engine.begin() as connection:
        connection.execute(text("UPDATE ledger_accounts SET debits_pending = 0 WHERE code = 'custody:D1'"))
    with rt.db.uow() as uow:
        report = check_ledger(uow.session)
    assert any("custody:D1" in problem and "debits_pending" in problem for problem in report.problems)


def test_balances_read_in_the_transaction_that_locked_the_account_follow_its_postings(rt: Runtime) -> None:
    """A transaction reads the totals of accounts it locked without asking the database; a savepoint rolled
    back must not leave those totals behind."""
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in (ledger.bank_clearing("ceb"), ledger.deal_custody("V")):
            repo.ensure_account(spec)
        repo.post(TransferSpec("arrival:V1", "bank_clearing:ceb", "custody:V", 100_00, "arrival"), T0)
        assert repo.balance("custody:V") == 100_00
        try:
            with uow.session.begin_nested():
                repo.post(TransferSpec("arrival:V2", "bank_clearing:ceb", "custody:V", 50_00, "arrival"), T0)
                assert repo.balance("custody:V") == 150_00
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        assert repo.balance("custody:V") == 100_00
        repo.hold(TransferSpec("payout:V", "custody:V", "bank_clearing:ceb", 30_00, "release"), T0)
        assert repo.totals("custody:V") == (0, 100_00, 30_00, 0)
        uow.commit()
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).totals("custody:V") == (0, 100_00, 30_00, 0)
        assert check_ledger(uow.session).ok


def test_an_account_created_in_a_rolled_back_savepoint_is_not_remembered(rt: Runtime) -> None:
    """What a transaction knows of its accounts goes with a savepoint's rollback: an account created there
    is gone, and a later posting creates it again instead of pointing at a row that does not exist."""
    clearing, custody = ledger.bank_clearing("ceb"), ledger.deal_custody("W")
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        arrival = TransferSpec("arrival:W1", clearing.code, custody.code, 10_00, "arrival")
        try:
            with uow.session.begin_nested():
                repo.post(arrival, T0, ensure=[(clearing, None), (custody, None)])
                assert repo.balance(custody.code) == 10_00
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        with pytest.raises(LedgerError) as missing:
            repo.balance(custody.code)
        assert missing.value.code == "UNKNOWN_ACCOUNT"
        transfer, created = repo.post(arrival, T0, ensure=[(clearing, None), (custody, None)])
        assert created and transfer.amount_fen == 10_00
        uow.commit()
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).balance(custody.code) == 10_00
        assert check_ledger(uow.session).ok
