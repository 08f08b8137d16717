"""Worked accounting scenarios, written as a bookkeeper would read them: a rent month and a refund."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain import ledger
from app.domain.ledger import AccountSpec, TransferSpec
from app.ledger.repo import LedgerRepository, check_ledger, history
from app.platform.runtime import Runtime

T0 = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
CLEARING = ledger.bank_clearing("pab").code


def test_a_rent_month_rent_released_to_the_landlord_minus_fee_deposit_kept(rt: Runtime) -> None:
    """Tenant pays ¥6,000 rent + ¥6,000 deposit into custody; the rent goes to the landlord less a ¥60
    fee, paid out through the bank; the deposit stays in custody until the lease ends."""
    landlord = AccountSpec("payable:landlord:L1", "liability", "应付房东 L1", debits_must_not_exceed_credits=True)
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        for spec in (
            ledger.bank_clearing("pab"),
            ledger.deal_custody("R1"),
            ledger.fee_income(),
            landlord,
        ):
            repo.ensure_account(spec)
        repo.post(TransferSpec("arrival:pab:B1", CLEARING, "custody:R1", 12_000_00, "arrival"), T0)
        repo.post_linked(
            [
                TransferSpec("release:R1:2026-11", "custody:R1", landlord.code, 5_940_00, "release"),
                TransferSpec("fee:R1:2026-11", "custody:R1", "fee_income", 60_00, "fee"),
            ],
            T0,
        )
        repo.hold(TransferSpec("payout:R1:2026-11", landlord.code, CLEARING, 5_940_00, "payout"), T0)
        repo.post_pending("payout:R1:2026-11:posted", "payout:R1:2026-11", at=T0)
        uow.commit()
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.balance("custody:R1") == 6_000_00, "the deposit is still held"
        assert repo.balance(landlord.code) == 0, "the landlord was paid"
        assert repo.balance("fee_income") == 60_00
        assert repo.balance(CLEARING) == 6_060_00, "the bank holds deposit and fee"
        assert check_ledger(uow.session).ok


def test_an_intent_deposit_refunded_by_original_route(rt: Runtime) -> None:
    """A buyer's ¥20,000 intent deposit arrives; the deal falls through and the whole amount goes back
    to where it came from: a hold while the bank pays it back, posted when the bank confirms."""
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        repo.ensure_account(ledger.bank_clearing("pab"))
        repo.ensure_account(ledger.deal_custody("I1"))
        repo.post(TransferSpec("arrival:pab:B9", CLEARING, "custody:I1", 20_000_00, "arrival"), T0)
        repo.hold(TransferSpec("refund:I1", "custody:I1", CLEARING, 20_000_00, "refund"), T0)
        assert repo.totals("custody:I1") == (0, 20_000_00, 20_000_00, 0), "all of it on hold"
        repo.post_pending("refund:I1:posted", "refund:I1", at=T0)
        uow.commit()
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.balance("custody:I1") == 0 and repo.balance(CLEARING) == 0
        lines = history(uow.session, "custody:I1")
        assert [(line.entry.code, line.balance_fen) for line in lines] == [("arrival", 20_000_00), ("refund", 0)]
        assert check_ledger(uow.session).ok
