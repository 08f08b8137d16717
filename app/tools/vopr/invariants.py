"""The invariants of the fault simulation, checked during a seed and after its reconciliation."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit_log
from app.bank_inbox import suspense
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.models import Deal, Job, Payout, SuspenseItem
from app.domain import ledger
from app.domain.products import ProductRegistry
from app.ledger.repo import LedgerRepository, check_ledger
from app.payouts import approvals, payees, trail
from app.payouts.status import PayoutPurpose, PayoutStatus
from app.platform.runtime import Runtime
from app.tools.vopr.environment import BANK
from app.tools.vopr.world import FINAL_STATES, SeedWorld


def fund_safety_problems(session: Session, products: ProductRegistry) -> list[str]:
    """The fund-safety invariants both simulations check after a run: every payout's payee satisfies the payee
    rule, no origin got back more than it paid, no release exceeded its agreed amount (`payouts.payees`); every
    approval had two different people (payouts, suspense matches); the audit log holds every payout's life.
    The chain itself is checked by `audit_problems`."""
    rules = payees.payee_violations(session) + payees.over_refunded_origins(session)
    problems = [
        f"payee rule {broken.rule}: {broken.deal_no} {broken.payout_id} {broken.amount_fen} fen"
        for broken in rules + payees.releases_over_agreement(session, products)
    ]
    problems += [f"four eyes: {text}" for text in approvals.four_eyes_violations(session)]
    problems += [f"four eyes: {text}" for text in suspense.match_violations(session)]
    return problems + [f"audit: {text}" for text in trail.uncovered_payouts(session)]


def audit_problems(rt: Runtime) -> list[str]:
    """The audit chain verifies: hashes, MACs and the signed checkpoints (`flask audit verify`)."""
    _, breaks = audit_log.verify(rt)
    return [f"audit chain: {broken}" for broken in breaks]


class Invariants(SeedWorld):
    """What must hold whatever the faults: a problem for each breach."""

    def check_invariants(self, final: bool) -> None:
        """During the run (every 25 steps): no payout id booked twice at the bank, `check_ledger` ok, no custody
        or suspense account negative. After reconciliation (`final`), also: no hold left open; money conserved
        (the bank clearing account and custody + suspense both equal what arrived at the bank minus what it
        paid out); every arrival reached the ledger, and each bank reference reached custody at most once;
        the platform's and the bank's payout outcomes agree and no deal's seller was paid twice; every deal is
        final and its custody balance is exactly what its buyer paid minus what was released and what arrived after
        it ended (returned by original route); the fund-safety invariants (`fund_safety_problems`) and the audit
        chain (`audit_problems`); every job done."""
        bank = self.bank
        for payout_id, times in bank.bookings.items():
            if times > 1:
                self._fail(f"double payout: {payout_id} booked {times} times at the bank")
        with self.rt_web.db.uow() as uow:
            session = uow.session
            report = check_ledger(session)
            for problem in report.problems:
                self._fail(f"ledger check: {problem}")
            repo = LedgerRepository(session)
            accounts = list(session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)))
            held = 0
            for account in accounts:
                if account.code.startswith(("custody:", "suspense:")):
                    balance = repo.balance(account.code)
                    held += balance
                    if balance < 0:
                        self._fail(f"negative balance {balance} on {account.code}")
            if not final:
                return
            clearing_code = ledger.bank_clearing(BANK).code
            clearing = repo.balance(clearing_code) if any(a.code == clearing_code for a in accounts) else 0
            if any(a.debits_pending or a.credits_pending for a in accounts):
                self._fail("holds still open after reconciliation")
            expected = bank.arrived_fen - bank.paid_out_fen
            if clearing != expected or held != expected:
                self._fail(
                    f"money not conserved: bank holds {expected} (arrived {bank.arrived_fen}, paid out "
                    f"{bank.paid_out_fen}), clearing says {clearing}, custody+suspense hold {held}"
                )
            transfers = {t.id: t for t in session.scalars(select(LedgerTransfer))}
            codes = {a.id: a.code for a in accounts}
            for arrival in bank.arrivals:
                ref = arrival.bank_reference
                if f"arrival:{BANK}:{ref}" not in transfers:
                    self._fail(f"arrival {ref} ({arrival.amount_fen} fen) never reached the ledger")
                into_custody = [
                    t
                    for tid, t in transfers.items()
                    if tid.endswith(f":{BANK}:{ref}") and codes[t.credit_account_id].startswith("custody:")
                ]
                if len(into_custody) > 1:
                    self._fail(f"bank reference {ref} credited to custody {len(into_custody)} times")
            payouts = {p.payout_id: p for p in session.scalars(select(Payout))}
            for payout_id, at_bank in bank.payouts.items():
                ours = payouts.get(payout_id)
                if ours is None or (at_bank.status == "succeeded") != (ours.status == PayoutStatus.SUCCEEDED):
                    self._fail(f"payout {payout_id}: bank says {at_bank.status}, we say {ours and ours.status}")
            paid_per_deal: dict[int, list[str]] = {}
            for payout_id, at_bank in bank.payouts.items():
                ours = payouts.get(payout_id)
                if at_bank.status == "succeeded" and ours is not None and ours.purpose == PayoutPurpose.RELEASE:
                    paid_per_deal.setdefault(ours.deal_id, []).append(payout_id)
            for deal_id, paid in paid_per_deal.items():
                if len(paid) > 1:
                    self._fail(f"double payout: deal {deal_id} paid to the seller {len(paid)} times ({paid})")
            for payout_id, ours in payouts.items():
                if ours.status == PayoutStatus.SUCCEEDED and payout_id not in bank.payouts:
                    self._fail(f"payout {payout_id} succeeded here but the bank never booked it")
            for plan in self.plans:
                deal = session.get(Deal, plan.deal_id)
                assert deal is not None
                if deal.state not in FINAL_STATES:
                    self._fail(f"deal {deal.id} not final after reconciliation: {deal.state}")
                custody = repo.balance(ledger.deal_custody(deal.deal_no).code)
                # closed: the custody amount went to the seller, an overpayment held at closing back to its payer;
                # money arriving once the deal had ended went back to its payer from suspense, never to custody
                refunded = sum(
                    p.amount_fen
                    for p in payouts.values()
                    if p.deal_id == deal.id and p.purpose == PayoutPurpose.REFUND and p.status == PayoutStatus.SUCCEEDED
                )
                late = session.scalars(
                    select(SuspenseItem).where(SuspenseItem.deal_id == deal.id, SuspenseItem.reason == "deal_closed")
                ).all()
                if any(item.status != "returned" for item in late):
                    self._fail(f"deal {deal.id}: money that arrived after it ended was not returned")
                # refunded: every fen paid in went back by original route
                released = refunded + (plan.custody_fen if deal.state == "closed" else 0)
                # a stranger's money (not the designated payer's) never counted as the buyer's: only the buyer's late
                # money is part of what the buyer paid
                returned_late = sum(item.amount_fen for item in late if item.payer_matched is not False)
                if custody != plan.paid_matched_fen - released - returned_late:
                    self._fail(
                        f"deal {deal.id} ({deal.state}): custody {custody}, buyer paid {plan.paid_matched_fen}, "
                        f"released {released}, returned after it ended {returned_late}"
                    )
            for problem in fund_safety_problems(session, self.rt_web.products):
                self._fail(problem)
            for job in session.scalars(select(Job).where(Job.status != "done")):
                self._fail(f"job {job.id} {job.kind} left {job.status}: {job.last_error}")
        for problem in audit_problems(self.rt_web):
            self._fail(problem)
