"""The people of the fault simulation: agents create, confirm and cancel deals, buyers pay (partly, fully,
too much, from a wrong payer), ops record the title transfer, fail a funded deal (cancel, terminate, the buyer
withdrew: refunded by original route) and retry failed payouts and refunds, finance approves payouts and
refunds and returns a wrong payer's money."""

from __future__ import annotations

from sqlalchemy import select

from app.bank_inbox import suspense
from app.db.models import Payout, SuspenseItem
from app.deals import service as deals
from app.deals.sample_forms import SAMPLE_FORMS
from app.payouts import approvals as payout_approvals
from app.payouts.status import PayoutStatus
from app.tools.vopr.world import DealPlan, SeedWorld

CITIES = ("110000", "310000")  # Beijing: any payer; Shanghai: designated payer, wrong payer returned
BUYER_ACCOUNT = SAMPLE_FORMS["resale_escrow"]["buyer_bank_account"]
STRANGER_ACCOUNT = "6222999900001111"


class People(SeedWorld):
    """What people do to the deals, one act at a time (or, when reconciling, everything the deals wait for)."""

    def _create_deal(self) -> None:
        city = self.rng.choice(CITIES)
        custody_fen = self.rng.choice([100, self.rng.randint(101, 99_999), self.rng.randint(100_000, 300_000_000)])
        price = SAMPLE_FORMS["resale_escrow"]["price"]
        if self.rng.random() < 0.15:  # above the payout approval threshold (5,000,000 yuan): two people release it
            custody_fen, price = self.rng.randint(500_000_001, 800_000_000), "9000000"
        form = {
            **SAMPLE_FORMS["resale_escrow"],
            "price": price,
            "city_code": city,
            "product": "resale_escrow",
            "custody_amount": f"{custody_fen // 100}.{custody_fen % 100:02d}",
        }
        deal_id = deals.create_deal(self.rt_web, self._actor("agent"), city, "resale_escrow", form)
        self.plans.append(DealPlan(deal_id, city, custody_fen))
        self._note(f"create deal {deal_id} in {city}, custody {custody_fen} fen")
        self._count("deals")

    def _plan(self, deal_id: int) -> DealPlan:
        return next(p for p in self.plans if p.deal_id == deal_id)

    def _pay(self, deal_id: int, request_id: str, *, remainder: bool = False) -> None:
        account = self.bank.accounts.get(request_id)
        if account is None:
            return
        plan = self._plan(deal_id)
        missing = plan.custody_fen - plan.paid_matched_fen
        payer = BUYER_ACCOUNT
        if remainder:
            amount = missing
        else:
            roll = self.rng.random()
            if roll < 0.15 and account.designated_payer is not None:
                payer, amount = STRANGER_ACCOUNT, self.rng.randint(1, 50_000)
            elif roll < 0.25 or missing <= 1:
                amount = self.rng.randint(1, 10_000)  # more than asked (or a top-up of a funded deal)
            elif roll < 0.55:
                amount = self.rng.randint(1, missing - 1)  # partial
            else:
                amount = missing
        if amount <= 0:
            return
        arrival = self.bank.pay_in(account.account_no, amount, "张三" if payer == BUYER_ACCOUNT else "王五", payer)
        if arrival.matched is not False:
            plan.paid_matched_fen += amount
        self._note(f"pay {amount} fen into deal {deal_id} ({arrival.bank_reference}, payer {payer})")
        self._count("payments")

    def _people(self, remainder: bool) -> None:
        """One person acts on one deal (or, when reconciling, on every deal that waits for a person)."""
        rows = self._deals()
        if not remainder and rows:
            rows = [self.rng.choice(rows)]
        for deal_id, state, request_id, _ in rows:
            if state == "created":
                if not remainder and self.rng.random() < 0.1:
                    deals.fire_user_event(self.rt_web, self._actor("agent"), deal_id, "cancel", ("agent",))
                    self._note(f"cancel deal {deal_id}")
                else:
                    deals.confirm_agreement(self.rt_web, self._actor("agent"), deal_id)
                    self._note(f"confirm deal {deal_id}")
            elif state in ("awaiting_account", "awaiting_funds") and request_id is not None:
                if not remainder or self._plan(deal_id).paid_matched_fen < self._plan(deal_id).custody_fen:
                    self._pay(deal_id, request_id, remainder=remainder)
            elif state == "funded":
                roll = 1.0 if remainder else self.rng.random()
                if roll < 0.3 and request_id is not None:
                    self._pay(deal_id, request_id)  # more money after it is funded
                elif roll < 0.45:  # the deal fails: its money goes back by original route
                    event = self.rng.choice(("cancel", "terminate", "buyer_withdrew"))
                    deals.manual_action(self.rt_web, self._actor("ops"), deal_id, event, "交易失败，原路退回")
                    self._note(f"{event} funded deal {deal_id}")
                    self._count("deals_failed")
                else:
                    deals.record_title_transferred(self.rt_web, self._actor("ops"), deal_id)
                    self._note(f"title transferred on deal {deal_id}")
            elif state in ("releasing", "closed", "refunding") and (remainder or self.rng.random() < 0.5):
                self._approve(deal_id)  # the release or refund; after closing, an overpayment's refund
            elif state in ("payout_failed", "refund_failed"):
                retry = "retry_payout" if state == "payout_failed" else "retry_refund"
                deals.fire_user_event(self.rt_web, self._actor("ops"), deal_id, retry, ("ops",))
                self._note(f"{retry} of deal {deal_id}")
                self._count(f"{retry.removeprefix('retry_')}_retries")
        if remainder:
            self._return_failed_returns()

    def _approve(self, deal_id: int) -> None:
        with self.rt_web.db.uow() as uow:
            waiting = list(
                uow.session.scalars(
                    select(Payout.payout_id).where(
                        Payout.deal_id == deal_id, Payout.status == PayoutStatus.AWAITING_APPROVAL
                    )
                )
            )
        for payout_id in waiting:  # finance approves; when the system asked for it, ops is the second person
            for approver in ("finance", "ops"):
                outcome = payout_approvals.approve(self.rt_web, self._actor(approver), payout_id)
                self._note(f"{approver} approves {payout_id} (released: {outcome.released})")
                self._count("approvals")
                if outcome.released:
                    break

    def _return_failed_returns(self) -> None:
        with self.rt_web.db.uow() as uow:
            items = list(
                uow.session.scalars(
                    select(SuspenseItem.id).where(SuspenseItem.status == "open", SuspenseItem.deal_id.is_not(None))
                )
            )
        for item_id in items:
            suspense.return_item(self.rt_web, item_id, "仿真：原路退回", "user:finance")
            self._note(f"finance returns suspense item {item_id}")
