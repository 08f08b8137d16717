"""Deal use cases: create from the intake form, confirm the agreement, record title transfer, read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.audit import log as audit
from app.db.ledger_models import LedgerTransfer
from app.db.models import Deal, DealEvent
from app.deals.arrival_text import ArrivalLine, arrival_lines, excess_clause_labels
from app.deals.pinning import pin, pinned_city
from app.deals.sample_forms import product_form
from app.deals.timers import DeadlineView, deadline_views
from app.deals.workflow import DealContext, fire, timeline_row
from app.definitions.banks import pinned_bank
from app.definitions.pins import deal_pins
from app.domain import ledger
from app.domain.cities import CityConfig, ProductConfig
from app.domain.custody_limits import CUSTODY_FIELDS, custody_limit_error
from app.domain.deal_account import AccountBox, account_box
from app.domain.extra_fields import ExtraItem, extra_items, read_extras
from app.domain.forms.products import DealFields, deal_fields
from app.domain.labels import product_label
from app.domain.money import parse_yuan
from app.domain.release_plan import plan_error
from app.domain.timezone import SHANGHAI
from app.fees.status import FeeLine, deal_fees
from app.ledger.repo import LedgerRepository
from app.payouts.status import PayoutPurpose
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime
from app.signing.policy import required_phones
from app.state_machine.definition import WorkflowDefinition
from app.state_machine.parameters import resolve


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    role: str

    @property
    def label(self) -> str:
        return f"user:{self.username}"


BANK_ACCOUNT = re.compile(r"[0-9]{8,32}")


def advisory_lock(session: Session, key: str) -> None:
    """On PostgreSQL a transaction lock on `key`; SQLite's BEGIN IMMEDIATE already serialises writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


def allocate_deal_numbers(session: Session, now: datetime, product_prefix: str, city_codes: list[str]) -> list[str]:
    """Deal numbers (the product's declared prefix, e.g. RE, city, the business day people see, a count), one per
    city code given, in order: one count per prefix under its advisory lock, so concurrent creations and imports
    count in turn."""
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    taken: dict[str, int] = {}
    for code in sorted(set(city_codes)):
        prefix = f"{product_prefix}{code}{day}"
        advisory_lock(session, prefix)
        count = select(func.count()).select_from(Deal).where(Deal.deal_no.like(f"{prefix}%"))
        taken[prefix] = session.scalar(count) or 0
    numbers = []
    for code in city_codes:
        prefix = f"{product_prefix}{code}{day}"
        taken[prefix] += 1
        numbers.append(f"{prefix}{taken[prefix]:05d}")
    return numbers


def custody_bank(product_config: ProductConfig, chosen: str) -> str:
    """The custodian bank chosen among the product's banks (government escrow may name several); the first
    one when no choice was made."""
    chosen = chosen.strip()
    if not chosen:
        return product_config.banks[0]
    if chosen not in product_config.banks:
        raise ValidationError(
            f"存管银行 {chosen} 不在本城市该业务的合作银行之列（{'、'.join(product_config.banks)}）",
            code="BANK_NOT_OFFERED",
            details={"custody_bank": chosen, "banks": list(product_config.banks)},
        )
    return chosen


def _deal_fields(rt: Runtime, product_config: ProductConfig, form: dict[str, str]) -> DealFields:
    """The deal's columns and case facts from the intake form of any product, within the city's custody limits."""
    fields = _form_fields(rt, product_config, form)
    base = rt.products.base_of(product_config.product)
    refused = custody_limit_error(base, product_config.custody, fields.columns["custody_amount_fen"])
    if refused is not None:
        raise refused
    if product_config.release is not None:  # the release plan must pay out exactly the custody amount
        refused = plan_error(product_config.release, fields.columns["custody_amount_fen"], CUSTODY_FIELDS[base])
        if refused is not None:
            raise refused
    return fields


def _form_fields(rt: Runtime, product_config: ProductConfig, form: dict[str, str]) -> DealFields:
    """The product's base form (its declaration's) cleaned by the rules of its base product; the city's extra
    fields kept (`deal_fields`)."""
    variant = rt.products.get(product_config.product)
    phones = required_phones(rt, product_config.product)  # the signing parties' (app.signing.policy)
    clean = product_form(product_config, variant, phones).validate(form)
    definition = rt.workflow(product_config.workflow_id, product_config.workflow_version)
    params = resolve(definition.parameters, product_config.overrides())
    return deal_fields(variant.base, clean, params, product_config.form)


def create_deal(rt: Runtime, actor: Actor, city_code: str, product: str, form: dict[str, str]) -> int:
    """Validate the form and create the deal in its workflow's initial state. Nothing is created on error."""
    if actor.role != "agent":
        raise ValidationError("只有经纪人可以新建存管单", code="ROLE_NOT_ALLOWED")
    resolved, city = rt.cities.get_resolved(city_code)
    product_config = city.product(product)
    fields = _deal_fields(rt, product_config, form)
    bank_code = custody_bank(product_config, form.get("custody_bank") or "")
    definition = rt.workflow(product_config.workflow_id, product_config.workflow_version)
    template = product_config.agreement_template
    pins = deal_pins(rt.definitions, product, definition.id, definition.version, template, bank_code)
    with rt.db.uow() as uow:
        now = rt.clock()
        deal_no = allocate_deal_numbers(uow.session, now, rt.products.get(product).deal_prefix, [city_code])[0]
        made = DealOrigin(city_code, city, product_config, definition, bank_code, actor.user_id, pins)
        deal = Deal(**deal_row(deal_no, made, definition.initial, fields, now))
        uow.session.add(deal)
        uow.session.flush()
        pin(uow.session, resolved, city, now)
        LedgerRepository(uow.session).ensure_account(ledger.deal_custody(deal.deal_no), deal_id=deal.id)
        uow.session.add(DealEvent(**creation_row(deal.id, deal.state, actor.label, {}, now)))
        created = {"state": deal.state, "city": city_code, "product": product, "bank": bank_code}
        audit.append(
            uow.session,
            at=now,
            actor=actor.label,
            action="deal.create",
            subject=f"deal:{deal_no}",
            after={**created, "custody_amount_fen": deal.custody_amount_fen},
        )
        uow.commit()
        return deal.id


@dataclass(frozen=True)
class DealOrigin:
    """What a new deal is made with besides its form: where, under which rules, at which bank, by whom."""

    city_code: str
    city: CityConfig
    product: ProductConfig
    definition: WorkflowDefinition
    bank_code: str
    created_by_id: int
    definitions: dict[str, str]  # the published definitions it starts with (app.definitions.pins)


def deal_row(deal_no: str, made: DealOrigin, state: str, fields: DealFields, now: datetime) -> dict[str, Any]:
    """A new deal's row in `state`, pinned to the city config and workflow version it is made under (the
    ORM's hook adds the blind indexes; a bulk insert adds them with `blind_indexes`)."""
    return {
        "deal_no": deal_no,
        "city_code": made.city_code,
        "product": made.product.product,
        "bank_code": made.bank_code,
        "workflow_id": made.definition.id,
        "workflow_version": made.definition.version,
        "city_config_sha256": made.city.sha256,
        "agreement_template": made.product.agreement_template,
        "definitions": made.definitions,
        "state": state,
        "facts": fields.facts,
        "created_by_id": made.created_by_id,
        "created_at": now,
        "updated_at": now,
        **fields.columns,
    }


def creation_row(deal_id: int, state: str, actor: str, detail: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A deal's first timeline row: made in `state` (by the intake, or by an import that names its source)."""
    return timeline_row(deal_id, "create", None, state, actor, {"label": "新建存管单", **detail}, now)


def load_for(session: Session, deal_id: int, actor: Actor) -> Deal:
    deal = session.get(
        Deal,
        deal_id,
        options=[selectinload(Deal.virtual_account), selectinload(Deal.agreement), selectinload(Deal.payouts)],
    )
    if deal is None or (actor.role == "agent" and deal.created_by_id != actor.user_id):
        raise NotFound("存管单不存在或无权查看", details={"deal_id": deal_id})
    return deal


def fire_user_event(rt: Runtime, actor: Actor, deal_id: int, event: str, allowed_roles: tuple[str, ...]) -> None:
    """A person moves a deal: role checked here, transition rules in the workflow."""
    if actor.role not in allowed_roles:
        raise ValidationError("当前角色无权执行此操作", code="ROLE_NOT_ALLOWED", details={"event": event})
    with rt.db.uow() as uow:
        deal = load_for(uow.session, deal_id, actor)
        fire(DealContext(rt, uow.session, deal, actor.label), event)
        uow.commit()


@dataclass(frozen=True)
class ManualAction:
    """An event a person fires on a deal with a reason; `fields` are the extra inputs it needs:
    `deduction` (yuan kept from a deposit). No action takes a payee or an account: money goes where the signed
    agreement (or an approved amendment) says, a guarantee's frozen account is the one the bank's signed freeze
    receipt names (app/deals/bank_freeze.py)."""

    label: str
    roles: tuple[str, ...] = ("ops",)
    fields: tuple[str, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        """The form inputs its fields are typed into."""
        return tuple(name for field in self.fields for name in FIELD_INPUTS[field])


# each extra field of a manual action and the form inputs it is typed into
FIELD_INPUTS = {
    "deduction": ("deduction",),
}


MANUAL_ACTIONS = {
    "retry_payout": ManualAction("重新付款"),
    "retry_refund": ManualAction("重新退款"),
    "cancel": ManualAction("取消存管单"),
    "terminate": ManualAction("解除合同"),
    "move_out_confirmed": ManualAction("退租交接完成，结算押金", fields=("deduction",)),
    "stage_completed": ManualAction("登记阶段完工"),
    "stage_accepted": ManualAction("阶段验收通过"),
    "stage_rejected": ManualAction("阶段验收不通过"),
    "purchase_signed": ManualAction("已签购房合同，意向金转付开发企业"),
    "buyer_withdrew": ManualAction("买方放弃购买，原路退回"),
    "policy_cancelled": ManualAction("因政策取消，原路退回"),
    "gov_approved": ManualAction("监管部门核准放款"),
    "handover_done": ManualAction("物业交割完成"),
    "gov_rejected": ManualAction("监管部门不予放款"),
    "conditions_met": ManualAction("解冻条件达成"),
    "claim_made": ManualAction("担保索赔，向受益人付款"),
    "claim_withdrawn": ManualAction("担保权人撤回兑付主张，申请解冻"),
    "fund_rejected": ManualAction("公积金中心拒绝提取"),
}


def action_payload(action: ManualAction, inputs: dict[str, str]) -> dict[str, Any]:
    """The event payload from the action's extra inputs."""
    payload: dict[str, Any] = {}
    if "deduction" in action.fields:
        payload["deduction_fen"] = parse_yuan(inputs.get("deduction") or "0")
    return payload


def manual_action(
    rt: Runtime, actor: Actor, deal_id: int, event: str, reason: str, inputs: dict[str, str] | None = None
) -> None:
    """A person's manual action on a deal (retry a failed payout, cancel, record a stage's acceptance…):
    a reason is required, the workflow decides whether the deal's state allows it, and it is audited in the
    same transaction."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("请填写操作原因", code="REASON_REQUIRED")
    action = MANUAL_ACTIONS.get(event)
    if action is None or actor.role not in action.roles:
        raise ValidationError("当前角色无权执行此操作", code="ROLE_NOT_ALLOWED", details={"event": event})
    with rt.db.uow() as uow:
        deal = load_for(uow.session, deal_id, actor)
        before = deal.state
        payload = action_payload(action, inputs or {})
        fire(DealContext(rt, uow.session, deal, actor.label, payload), event, {"reason": reason, **payload})
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor.label,
            action=f"deal.{event}",
            subject=f"deal:{deal.deal_no}",
            before={"state": before},
            after={"state": deal.state},
            detail={"reason": reason, **payload},
        )
        uow.commit()


def confirm_agreement(rt: Runtime, actor: Actor, deal_id: int) -> None:
    fire_user_event(rt, actor, deal_id, "confirm", ("agent",))


def record_title_transferred(rt: Runtime, actor: Actor, deal_id: int) -> None:
    fire_user_event(rt, actor, deal_id, "title_transferred", ("ops",))


@dataclass(frozen=True)
class DealView:
    deal: Deal
    state_label: str
    events: list[DealEvent]
    transfers: list[LedgerTransfer]
    custody_balance_fen: int
    arrived_total_fen: int
    actions: list[str]
    account_codes: dict[int, str]
    event_labels: dict[str, str]
    deadlines: list[DeadlineView]
    fees: list[FeeLine]
    ended: bool  # in a final state of its workflow: nothing more to freeze, sign or pay
    extras: tuple[ExtraItem, ...]  # the city's extra fields with their labels, personal data masked
    account: AccountBox  # the custody sub-account, or the frozen account of a guarantee
    arrivals: dict[int, ArrivalLine]  # timeline row id -> what arrived against what was due
    labels: dict[int, str]  # timeline row id -> its label as the facts have it (no overpayment refund claimed)
    bank_name: str  # the custodian bank's name as the deal pinned it (the name its agreement prints)


def deal_view(rt: Runtime, actor: Actor, deal_id: int) -> DealView:
    """Everything the deal page shows, read in one session (the objects stay usable after it closes) and
    from one snapshot: on PostgreSQL the session reads at REPEATABLE READ, so a callback committing in
    between cannot make the page show the account number with the state from before it."""
    with rt.db.uow() as uow:
        if uow.session.get_bind().dialect.name == "postgresql":
            uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        deal = load_for(uow.session, deal_id, actor)
        definition = rt.workflow(deal.workflow_id, deal.workflow_version)
        repo = LedgerRepository(uow.session)
        custody_code = ledger.deal_custody(deal.deal_no).code
        transfers = repo.transfers_for_deal(deal.id)
        codes = {t.debit_account_id: t.debit_account.code for t in transfers}
        codes.update({t.credit_account_id: t.credit_account.code for t in transfers})
        ended = deal.state in definition.states and definition.states[deal.state].final
        opened = deal.virtual_account
        bank = pinned_bank(rt.definitions, rt.known_banks, deal)
        return DealView(
            deal=deal,
            state_label=definition.label(deal.state),
            events=list(deal.events),
            arrivals=arrival_lines(definition, deal.events),
            labels=excess_clause_labels(
                definition, deal.events, [p.created_at for p in deal.payouts if p.purpose == PayoutPurpose.REFUND]
            ),
            transfers=transfers,
            custody_balance_fen=repo.balance(custody_code),
            arrived_total_fen=repo.account(custody_code).credits_posted,
            actions=definition.events_from(deal.state),
            account_codes=codes,
            event_labels=definition.events,
            deadlines=deadline_views(rt, uow.session, deal),
            fees=deal_fees(rt, uow.session, deal, transfers),
            ended=ended,
            extras=_extras(rt, uow.session, deal),
            account=account_box(
                by_freeze=any("request_freeze" in t.actions for t in definition.transitions),
                number=opened.account_no if opened is not None else None,
                requested=opened is not None,
                signed=deal.agreement is not None,
                ended=ended,
            ),
            bank_name=bank.name if bank is not None else deal.bank_code,
        )


def _extras(rt: Runtime, session: Session, deal: Deal) -> tuple[ExtraItem, ...]:
    """The deal's extra fields as its pinned city config labels and orders them."""
    product = pinned_city(rt, session, deal).products.get(deal.product)
    return extra_items(product.form if product is not None else None, read_extras(deal.extra_fields))


def list_deals(rt: Runtime, actor: Actor, limit: int = 100, search: str = "") -> list[tuple[Deal, str]]:
    """The newest deals the actor may see with their state's label; `search` keeps those whose number,
    address (decrypted here: it cannot be searched in the database), state or product contains it."""
    with rt.db.uow() as uow:
        query = select(Deal).order_by(Deal.id.desc()).limit(limit)
        if actor.role == "agent":
            query = query.where(Deal.created_by_id == actor.user_id)
        deals = list(uow.session.scalars(query))
        rows = [(deal, rt.workflow(deal.workflow_id, deal.workflow_version).label(deal.state)) for deal in deals]
    needle = search.strip()
    if not needle:
        return rows
    return [
        (deal, label)
        for deal, label in rows
        if any(
            needle in text
            for text in (deal.deal_no, deal.property_address or "", label, product_label(deal.product, rt.products))
        )
    ]


def agreement_html(rt: Runtime, actor: Actor, deal_id: int) -> str:
    """The signed agreement's HTML, or before signing the preview of exactly what will be signed."""
    from app.agreements.service import render_html

    with rt.db.uow() as uow:
        deal = load_for(uow.session, deal_id, actor)
        return deal.agreement.html if deal.agreement is not None else render_html(rt, deal)


def agreement_pdf(rt: Runtime, actor: Actor, deal_id: int) -> tuple[str, bytes]:
    """The signed agreement's PDF; every download is audited (who, which deal, the file's SM3)."""
    with rt.db.uow() as uow:
        deal = load_for(uow.session, deal_id, actor)
        if deal.agreement is None:
            raise NotFound("协议尚未签署", code="AGREEMENT_NOT_SIGNED")
        deal_no, pdf = deal.deal_no, deal.agreement.pdf
        detail = {"pdf_sm3": deal.agreement.pdf_sm3, "bytes": len(pdf)}
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor.label,
            action="agreement.download",
            subject=f"deal:{deal_no}",
            detail=detail,
        )
        uow.commit()
        return deal_no, pdf


def deal_payload(view: DealView) -> dict[str, Any]:
    """A machine-readable summary of a deal (JSON for API clients and tests)."""
    deal = view.deal
    account = deal.virtual_account
    return {
        "deal_no": deal.deal_no,
        "state": deal.state,
        "state_label": view.state_label,
        "custody_amount_fen": deal.custody_amount_fen,
        "custody_balance_fen": view.custody_balance_fen,
        "arrived_total_fen": view.arrived_total_fen,
        "account_no": account.account_no if account is not None else None,
        "agreement_signed": deal.agreement is not None,
        "events": [{"event": e.event, "to_state": e.to_state, "actor": e.actor} for e in view.events],
        "fees": [
            {"name": f.name, "amount_fen": f.amount_fen, "charged_fen": f.charged_fen, "status": f.status}
            for f in view.fees
        ],
    }
