"""The minimal ledger on a real database: idempotent transfers, guarded balances, the check."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.domain import ledger
from app.domain.ledger import AccountSpec, TransferSpec
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.errors import LedgerError
from app.platform.runtime import Runtime

PAYABLE = AccountSpec("payable:D1", "liability", "应付卖方 D1", debits_must_not_exceed_credits=True)


def _setup(repo: LedgerRepository) -> None:
    repo.ensure_account(ledger.bank_clearing("ceb"))
    repo.ensure_account(ledger.deal_custody("D1"))
    repo.ensure_account(PAYABLE)


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
        assert created and not created_again and first == again
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


def test_balance_at_any_past_instant_history_and_daily_cutoff(rt: Runtime) -> None:
    from datetime import UTC, date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from app.ledger.repo import balance_at, cutoff, history

    t0 = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # 23:30 on 22 Nov in Shanghai
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        repo.post(TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 300_00, "arrival"), at=t0)
        repo.post(
            TransferSpec("arrival:ceb:R2", "bank_clearing:ceb", "custody:D1", 200_00, "arrival"),
            at=t0 + timedelta(hours=1),  # 00:30 on 23 Nov in Shanghai
        )
        repo.post(TransferSpec("release:D1", "custody:D1", "payable:D1", 450_00, "release"), at=t0 + timedelta(hours=2))
        uow.commit()
    with rt.db.uow() as uow:
        session = uow.session
        assert balance_at(session, "custody:D1", t0 - timedelta(seconds=1)) == 0
        assert balance_at(session, "custody:D1", t0) == 300_00, "a transfer counts from its own instant"
        assert balance_at(session, "custody:D1", t0 + timedelta(minutes=90)) == 500_00
        assert balance_at(session, "custody:D1", t0 + timedelta(days=1)) == 50_00
        assert balance_at(session, "bank_clearing:ceb", t0 + timedelta(days=1)) == 500_00

        lines = history(session, "custody:D1")
        assert [(line.entry.transfer_id, line.balance_fen) for line in lines] == [
            ("arrival:ceb:R1", 300_00),
            ("arrival:ceb:R2", 500_00),
            ("release:D1", 50_00),
        ]
        latest = history(session, "custody:D1", limit=1)
        assert [(line.entry.debit_fen, line.balance_fen) for line in latest] == [(450_00, 50_00)]

        shanghai = ZoneInfo("Asia/Shanghai")
        day22 = cutoff(session, "custody:D1", date(2026, 11, 22), shanghai)
        day23 = cutoff(session, "custody:D1", date(2026, 11, 23), shanghai)
    assert (day22.opening_fen, day22.credits_fen, day22.debits_fen, day22.closing_fen) == (0, 300_00, 0, 300_00)
    assert (day23.opening_fen, day23.credits_fen, day23.debits_fen, day23.closing_fen) == (
        300_00,
        200_00,
        450_00,
        50_00,
    )


def test_balance_and_history_commands(app, rt: Runtime) -> None:
    from datetime import UTC, datetime

    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        _setup(repo)
        repo.post(
            TransferSpec("arrival:ceb:R1", "bank_clearing:ceb", "custody:D1", 1_234_567_89, "arrival"),
            at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
        )
        uow.commit()
    runner = app.test_cli_runner()
    now = runner.invoke(args=["ledger", "balance", "custody:D1"])
    assert now.exit_code == 0 and "¥1,234,567.89" in now.output
    before = runner.invoke(args=["ledger", "balance", "custody:D1", "--at", "2026-11-23T09:59"])  # Shanghai time
    assert before.exit_code == 0 and "¥0.00" in before.output
    after = runner.invoke(args=["ledger", "balance", "custody:D1", "--at", "2026-11-23T02:00Z"])
    assert "¥1,234,567.89" in after.output
    listing = runner.invoke(args=["ledger", "history", "custody:D1"])
    assert listing.exit_code == 0 and "arrival:ceb:R1" in listing.output and "2026-11-23 10:00:00" in listing.output
    unknown = runner.invoke(args=["ledger", "balance", "nope"])
    assert unknown.exit_code == 1 and "账户不存在" in unknown.output and "Traceback" not in unknown.output
    cut = runner.invoke(args=["ledger", "cutoff", "custody:D1", "--date", "2026-11-23"])
    assert "期初 ¥0.00" in cut.output and "期末 ¥1,234,567.89" in cut.output
