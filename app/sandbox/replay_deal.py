"""One real deal replayed in the sandbox under the draft: the same deal created (same product, amounts and
non-personal fields; the parties synthetic, their accounts only of the real ones' masked shape), then its recorded
history acted out through the services the simulation drivers use, the sandbox clock at each recorded time: a
person's step by a sandbox person of the same role, money in through the bank simulator with the recorded amount,
time passing with the worker's timers firing; the bank and the workers are settled after each step, failing a
payment where the real bank failed it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from app.db.models import Deal, Job, Payout
from app.deals import contract_import
from app.deals import freeze as freezes
from app.deals import service as deals
from app.deals.sample_forms import BUYER, SELLER, parse_details, product_form, sample_form
from app.deals.timers import fire_due_timers
from app.domain.cities import CityConfig
from app.domain.identity import luhn_ok
from app.domain.money import format_yuan
from app.domain.products import ProductVariant
from app.payouts import approvals as payout_approvals
from app.payouts.status import PayoutStatus
from app.platform.errors import CunguanError, ValidationError
from app.sandbox.bank import BankProblem
from app.sandbox.path_run import FUND_CENTRE
from app.sandbox.replay_history import Act, History, NotReplayable, failing_next
from app.sandbox.simulate import Sandbox

PAYER_PREFIXES = ("buyer_", "tenant_", "owner_", "applicant_")
PAYEE_PREFIXES = ("seller_", "landlord_", "contractor_", "developer_", "beneficiary_")
ACCOUNT_FORMATS = {"bank-card": (16, 19), "bank-account": (12, 30)}
OTHER_PAYER = ("仿真付款人", "6214830000000000")
HELD = timedelta(days=36_500)  # a payout the real bank has not answered yet waits beyond any replayed time
IMPORT_NUMBER = "REPLAY-IMPORT-00001"  # each deal is replayed in an empty sandbox: one number does


def shaped(real: str | None, sample: str, lengths: tuple[int, int] = (16, 19)) -> str:
    """A synthetic account number of the real one's masked shape (its length and last four digits), made of the
    sample's digits, with a valid Luhn check: masked, the two read the same (`**** 1234`)."""
    digits = "".join(c for c in (real or "") if c.isdigit())
    if len(digits) < 4:
        return sample
    length = min(max(len(digits), lengths[0]), lengths[1])
    body = list((sample * 3)[: length - 4] + digits[-4:])
    for candidate in "0123456789":  # one hidden digit takes each Luhn residue once: one of them checks
        body[length - 5] = candidate
        if luhn_ok("".join(body)):
            break
    return "".join(body)


@dataclass(frozen=True)
class Replayed:
    deal_id: int
    stopped: str | None  # why the replay stopped before the end of the history (None: it ran to the end)
    origins: tuple[str, ...]  # the sandbox accounts money came from


class DealReplay:
    """Replays one real deal (loaded with its parties from the platform's database) in `sandbox` under `city`."""

    def __init__(self, sandbox: Sandbox, city: CityConfig, real: Deal, variant: ProductVariant) -> None:
        self.s, self.city, self.real, self.variant = sandbox, city, real, variant
        self.config = city.product(real.product)
        self.deal_id = 0
        self.payers: dict[str, tuple[str, str]] = {}

    # --- the deal ---------------------------------------------------------------------------------------

    def _overrides(self) -> dict[str, str]:
        """The form values taken from the real deal: its non-personal fields (its facts keep them as typed:
        yuan in fen) and account numbers of its parties' masked shape."""
        facts = self.real.facts or {}
        values: dict[str, str] = {}
        for spec in product_form(self.config, self.variant).fields:
            fmt = spec.format or ""
            if fmt in ACCOUNT_FORMATS:
                if spec.name.startswith(PAYER_PREFIXES):
                    values[spec.name] = shaped(self.real.buyer_bank_account, BUYER["account"], ACCOUNT_FORMATS[fmt])
                elif spec.name.startswith(PAYEE_PREFIXES):
                    values[spec.name] = shaped(self.real.seller_bank_account, SELLER["account"], ACCOUNT_FORMATS[fmt])
                continue
            value = facts.get(spec.name)
            if value is None or isinstance(value, dict | list):
                continue
            if spec.is_yuan:
                values[spec.name] = format_yuan(int(value), symbol=False)
            elif isinstance(value, bool):
                values[spec.name] = "true" if value else "false"
            else:
                values[spec.name] = str(value)
        return values

    def create(self, imported: bool = False) -> None:
        """The deal under the draft, at the real deal's creation time, by the intake or (`imported`) by the
        stock-contract import; NotReplayable when the draft refuses it."""
        overrides = self._overrides() | ({"lease_contract_no": IMPORT_NUMBER} if imported else {})
        try:
            form = sample_form(self.config, self.variant, overrides)
        except ValidationError as invalid:
            raise NotReplayable(f"按草稿配置无法新建：{parse_details(invalid.details) or invalid.message}") from invalid
        if self.real.bank_code in self.config.banks and "custody_bank" in form:
            form["custody_bank"] = self.real.bank_code
        self.s.clock.now = self.real.created_at
        try:
            if imported:
                self.deal_id = self._import(form)
            else:
                agent, city = self.s.people.agent, self.city.admin_code
                self.deal_id = deals.create_deal(self.s.rt, agent, city, self.real.product, form)
        except CunguanError as refused:
            detail = f"：{parse_details(refused.details)}" if refused.details else ""
            raise NotReplayable(f"按草稿配置无法新建：{refused.message}{detail}") from refused
        self._remember_payer()

    def _import(self, form: dict[str, str]) -> int:
        """The deal entering as its real one did: one row of an import file."""
        buffer = io.StringIO()
        csv.writer(buffer).writerows([[contract_import.CITY_COLUMN, *form], [self.city.admin_code, *form.values()]])
        agent = self.s.people.agent.username
        result = contract_import.import_contracts(self.s.rt, agent, "replay.csv", buffer.getvalue().encode())
        if result.imported != 1:
            bad = "；".join(f"{row.field}：{row.reason}" for row in result.bad_rows)
            raise NotReplayable(f"按草稿配置无法导入：{bad or '没有导入'}")
        with self.s.rt.db.uow() as uow:
            deal_id = uow.session.scalar(select(func.max(Deal.id)))
        assert deal_id is not None
        return deal_id

    def _remember_payer(self) -> None:
        with self.s.rt.db.uow() as uow:
            deal = uow.session.get(Deal, self.deal_id)
            assert deal is not None
            buyer = (deal.buyer_name or BUYER["name"], deal.buyer_bank_account or BUYER["account"])
        self.payers = {"buyer": buyer}

    # --- the history ------------------------------------------------------------------------------------

    def run(self, history: History) -> Replayed:
        """Act out `history`; stops at the first step the sandbox refuses (the reason is kept)."""
        self.create(history.imported)
        origins: list[str] = []
        try:
            self._settle(history, -1)  # what creating it set off (an imported deal's account opening)
        except BankProblem as problem:
            return Replayed(self.deal_id, f"新建后未能完成：{problem}", ())
        for act in history.acts:
            self.s.clock.advance_to(act.at)
            try:
                fire_due_timers(self.s.rt)  # what a worker did meanwhile, under the draft's deadlines
                self._settle(history, act.position)
                self._act(act, origins)
                self._settle(history, act.position)
            except (CunguanError, BankProblem) as error:
                message = getattr(error, "message", None) or str(error)
                return Replayed(self.deal_id, f"「{act.label}」未能重放：{message}", tuple(origins))
        return Replayed(self.deal_id, None, tuple(origins))

    def _act(self, act: Act, origins: list[str]) -> None:
        people = self.s.people
        who = {"agent": people.agent, "finance": people.approvers[-1]}.get(act.role, people.ops)
        if act.kind == "arrival":
            self._pay_in(act, origins)
        elif act.kind == "timer":
            return  # fired above, if the draft's deadline has passed by then
        elif act.event == "confirm":
            deals.confirm_agreement(self.s.rt, people.agent, self.deal_id)
        elif act.event == "title_transferred":
            deals.record_title_transferred(self.s.rt, people.ops, self.deal_id)
        elif act.event == "freeze":
            freezes.freeze(self.s.rt, people.ops, self.deal_id, act.reason)
        elif act.event == "unfreeze":
            freezes.unfreeze(self.s.rt, people.ops, self.deal_id, act.reason)
        else:
            actor = (
                who
                if act.event in deals.MANUAL_ACTIONS and who.role in deals.MANUAL_ACTIONS[act.event].roles
                else people.ops
            )
            deals.manual_action(self.s.rt, actor, self.deal_id, act.event, act.reason, act.inputs)

    def _payer(self, account: str) -> tuple[str, str]:
        real_buyer = "".join(c for c in (self.real.buyer_bank_account or "") if c.isdigit())
        digits = "".join(c for c in account if c.isdigit())
        if not digits or digits == real_buyer:
            return self.payers["buyer"]
        if digits == FUND_CENTRE[1]:
            return FUND_CENTRE
        return OTHER_PAYER[0], shaped(digits, OTHER_PAYER[1])

    def _pay_in(self, act: Act, origins: list[str]) -> None:
        with self.s.rt.db.uow() as uow:
            deal = uow.session.get(Deal, self.deal_id)
            assert deal is not None
            account = deal.virtual_account
            if account is None or not account.account_no:
                raise BankProblem("存管单没有已开立的虚户，无法入账")
            bank_code, account_no = deal.bank_code, account.account_no
        name, payer = self._payer(act.payer_account)
        origins.append(payer)
        self.s.bank.pay(bank_code, account_no, act.amount_fen, name, payer)

    def _settle(self, history: History, position: int) -> None:
        with self.s.rt.db.uow() as uow:
            bank_code = uow.session.scalar(select(Deal.bank_code).where(Deal.id == self.deal_id))
        assert bank_code is not None
        self.s.bank.fail(bank_code, frozenset({"payout_failure"}) if failing_next(history, position) else frozenset())
        self.s.bank.settle(self.s.rt, lambda: self._release(history.answered))

    def _release(self, answered: int) -> None:
        """Before the workers run: the deal's first `answered` payouts go their way (approved by sandbox people
        other than who asked, when above the draft's line); a later one stays where the real one still is, in
        flight - unapproved, its submission held - so that a running deal is replayed only up to its state."""
        with self.s.rt.db.uow() as uow:
            session = uow.session
            payouts = list(session.scalars(select(Payout).where(Payout.deal_id == self.deal_id).order_by(Payout.id)))
            held = [p.payout_id for p in payouts[answered:]]
            for job in session.scalars(select(Job).where(Job.kind == "submit_payout", Job.status == "pending")):
                if job.payload.get("payout_id") in held:
                    job.run_after = self.s.clock() + HELD
            session.commit()
            waiting = [p.payout_id for p in payouts[:answered] if p.status == PayoutStatus.AWAITING_APPROVAL]
        for payout_id in waiting:
            for approver in self.s.people.approvers:
                try:
                    if payout_approvals.approve(self.s.rt, approver, payout_id).released:
                        break
                except ValidationError as refused:
                    if refused.code != "SAME_PERSON":
                        raise
