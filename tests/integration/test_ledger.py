"""The minimal ledger on a real database: idempotent transfers, guarded balances, the check."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db.ledger_repo import LedgerRepository, check_ledger
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.errors import LedgerError
from app.services.runtime import Runtime


def _setup(repo: LedgerRepository) -> None:
    repo.ensure_account(ledger.bank_clearing("ceb"))
    repo.ensure_account(ledger.deal_custody("D1"))
    repo.ensure_account(ledger.seller_payable("D1"))


def test_arrival_release_payout_scenario_balances(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 300_00, "arrival"))
        repo.post(TransferSpec("arrival:ceb:R2", "bank_clearing:ceb", "custody:D1", 200_00, "arrival"))
        repo.post(TransferSpec("release:D1", "custody:D1", "payable:D1", 500_00, "release"))
        repo.post(TransferSpec("payout:P1", "payable:D1", "bank_clearing:ceb", 500_00, "payout"))
        uow.commit()
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert [repo.balance(c) for c in ("custody:D1", "payable:D1", "bank_clearing:ceb")] == [0, 0, 0]
        report = check_ledger(uow.session)
    assert report.ok and report.total_debits_fen == report.total_credits_fen == 1_500_00


def test_same_id_same_content_is_idempotent_other_content_is_an_error(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        spec = TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 300_00, "arrival")
        first, created = repo.post(spec)
        again, created_again = repo.post(spec)
        assert created and not created_again and first is again
        with pytest.raises(LedgerError) as caught:
            repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 301_00, "arrival"))
        assert caught.value.code == "TRANSFER_ID_CONFLICT"
        assert repo.balance("custody:D1") == 300_00


def test_custody_can_never_go_negative(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 100_00, "arrival"))
        with pytest.raises(LedgerError) as caught:
            repo.post(TransferSpec("release:D1", "custody:D1", "payable:D1", 100_01, "release"))
        assert caught.value.code == "BALANCE_CONSTRAINT" and "余额不足" in caught.value.message


@pytest.mark.parametrize(
    "spec",
    [
        lambda: TransferSpec("x", "a", "b", 0, "arrival"),
        lambda: TransferSpec("x", "a", "b", 1.5, "arrival"),  # type: ignore[arg-type]
        lambda: TransferSpec("x", "a", "a", 1, "arrival"),
        lambda: TransferSpec("x", "a", "b", 1, "gift"),
    ],
)
def test_invalid_transfers_are_refused_before_storage(spec) -> None:
    with pytest.raises(LedgerError):
        spec()


def test_check_finds_totals_that_disagree_with_transfers(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 100_00, "arrival"))
        uow.commit()
    with rt.db.engine.begin() as connection:
        connection.execute(text("UPDATE ledger_accounts SET credits_posted = 999 WHERE code = 'custody:D1'"))
    with rt.db.uow() as uow:
        report = check_ledger(uow.session)
    assert not report.ok
    assert any("custody:D1" in problem for problem in report.problems)
    assert any("借贷不平" in problem for problem in report.problems)


def test_database_refuses_a_negative_custody_written_behind_the_ledgers_back(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        _setup(LedgerRepository(uow.session))
        uow.commit()
    with pytest.raises(Exception, match=r"(?i)check|constraint"), rt.db.engine.begin() as connection:
        connection.execute(text("UPDATE ledger_accounts SET debits_posted = 5 WHERE code = 'custody:D1'"))


def test_ledger_check_command_exit_code(app, rt: Runtime) -> None:
    runner = app.test_cli_runner()
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 100_00, "arrival"))
        uow.commit()
    healthy = runner.invoke(args=["ledger", "check"])
    assert healthy.exit_code == 0 and "账务检查通过" in healthy.output
    with rt.db.engine.begin() as connection:
        connection.execute(
            text("UPDATE ledger_accounts SET debits_posted = 100, credits_posted = 100 WHERE code = 'payable:D1'")
        )
    broken = runner.invoke(args=["ledger", "check"])
    assert broken.exit_code == 1
    assert "payable:D1" in broken.output


def test_posted_transfers_cannot_be_updated_or_deleted_even_in_sql(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 100_00, "arrival"))
        uow.commit()
    for statement in (
        "UPDATE ledger_transfers SET amount_fen = 1",
        "DELETE FROM ledger_transfers",
    ):
        with pytest.raises(Exception, match="immutable"), rt.db.engine.begin() as connection:
            connection.execute(text(statement))
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).transfers_checked == 1
