"""Deals for ops, finance, auditors and admins: search, and a detail page with everything around a deal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from flask import Response, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from app.admin.batch import BatchReport, BatchView, each
from app.admin.paging import page_number, paginate
from app.db.models import BankNotification, Deal, Job, VirtualAccount
from app.deals import freeze as deal_freeze
from app.deals.service import Actor, deal_view
from app.domain.timezone import SHANGHAI
from app.evidence import EVIDENCE_ROLES
from app.pdf.verify import verify_pdf
from app.pii.service import UNMASK_ROLES, audit_party_search, masked_parties, party_clause, unmask_deal_parties
from app.platform.errors import CunguanError, NotFound
from app.platform.runtime import Runtime
from app.state_machine.definition import WorkflowDefinition
from app.web.access import runtime

FILTERS = (
    "deal_no",
    "city",
    "product",
    "bank",
    "state",
    "account_no",
    "date_from",
    "date_to",
    "party_id",
    "party_phone",
)


@dataclass(frozen=True)
class FilterChoices:
    """The console's deal filters as dropdowns, in Chinese: (value, label) pairs; states per product, each in
    its product's words, as `<product>:<state>`."""

    cities: list[tuple[str, str]]
    products: list[tuple[str, str]]
    banks: list[tuple[str, str]]
    states: list[tuple[str, list[tuple[str, str]]]]


def filter_choices(rt: Runtime) -> FilterChoices:
    cities = []
    for stem in rt.cities.source.stems():
        if stem.isdigit():
            try:
                cities.append((stem, rt.cities.resolve(stem).data["name"]))
            except (CunguanError, KeyError):
                cities.append((stem, stem))
    latest: dict[str, WorkflowDefinition] = {}
    for (workflow_id, _version), definition in sorted(rt.workflows.items()):
        latest[workflow_id] = definition  # the newest version's wording
    variants = [rt.products.get(code) for code in rt.products.codes()]  # each on its declared workflow's states
    states = [
        (variant.name, [(f"{variant.code}:{code}", state.label) for code, state in definition.states.items()])
        for variant in variants
        if (definition := latest.get(variant.workflow_id)) is not None
    ]
    return FilterChoices(
        cities=sorted(cities),
        products=[(variant.code, variant.name) for variant in variants],
        banks=[(code, bank.name) for code, bank in rt.known_banks.items()],
        states=states,
    )


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


def search_query(args: dict[str, str]) -> Select[Any]:
    """Deals matching the filled filters, newest first (dates are Shanghai calendar days, inclusive)."""
    query = select(Deal).options(selectinload(Deal.virtual_account)).order_by(Deal.id.desc())
    if args.get("deal_no"):
        query = query.where(Deal.deal_no.contains(args["deal_no"]))
    for key, column in (("city", Deal.city_code), ("product", Deal.product), ("bank", Deal.bank_code)):
        if args.get(key):
            query = query.where(column == args[key])
    if args.get("state"):  # `<product>:<state>` from the dropdown, or a bare state
        product, _, state = args["state"].rpartition(":")
        query = query.where(Deal.state == state)
        if product:
            query = query.where(Deal.product == product)
    if args.get("account_no"):
        query = query.where(Deal.virtual_account.has(VirtualAccount.account_no == args["account_no"]))
    party = party_clause(args.get("party_id"), args.get("party_phone"))  # exact, through the blind index
    if party is not None:
        query = query.where(party)
    start, end = _day(args.get("date_from", "")), _day(args.get("date_to", ""))
    if start is not None:
        query = query.where(Deal.created_at >= datetime.combine(start, time.min, tzinfo=SHANGHAI))
    if end is not None:
        query = query.where(Deal.created_at < datetime.combine(end + timedelta(days=1), time.min, tzinfo=SHANGHAI))
    return query


def _deal_id(row: str) -> int:
    if not row.isdigit():
        raise NotFound("存管单不存在", details={"deal_id": row})
    return int(row)


def _state_label(rt: Runtime, deal: Deal) -> str:
    try:
        return rt.workflow(deal.workflow_id, deal.workflow_version).label(deal.state)
    except CunguanError:
        return deal.state


FREEZERS = frozenset(deal_freeze.FREEZE_ROLES)


class DealsView(BatchView):
    read_roles = frozenset({"ops", "finance", "auditor"})
    write_roles = UNMASK_ROLES  # 显示完整信息 (audited)
    form_roles: ClassVar[dict[str, frozenset[str]]] = {"freeze": FREEZERS, "unfreeze": FREEZERS, "batch": FREEZERS}
    reason_actions = frozenset({"freeze"})

    @expose("/")
    def index(self) -> str:
        args = {key: request.args.get(key, "").strip() for key in FILTERS}
        rt = runtime()
        with rt.db.uow() as uow:
            page = paginate(uow.session, search_query(args), page_number(request.args.get("page")))
            audit_party_search(rt, uow.session, self.actor.label, args["party_id"], args["party_phone"], page.total)
            uow.commit()
        labels = {deal.id: _state_label(rt, deal) for deal in page.rows}
        filled = {key: value for key, value in args.items() if value}
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/deals.html",
            page=page,
            args=args,
            filled=filled,
            labels=labels,
            choices=filter_choices(rt),
        )

    @expose("/<int:deal_id>")
    def detail(self, deal_id: int) -> str:
        return self._detail(deal_id)

    @expose("/<int:deal_id>/unmask", methods=("POST",))
    def unmask(self, deal_id: int) -> Response | str:
        try:
            parties = unmask_deal_parties(runtime(), self.actor, deal_id, request.form.get("reason", ""))
        except CunguanError as error:
            flash(error.message, "error")
            return redirect(url_for(".detail", deal_id=deal_id))
        return self._detail(deal_id, parties=parties, unmasked=True)

    @expose("/<int:deal_id>/freeze", methods=("POST",))
    def freeze(self, deal_id: int) -> Response:
        return self._freeze(deal_id, deal_freeze.freeze, "存管单已冻结，付款将暂停提交银行")

    @expose("/<int:deal_id>/unfreeze", methods=("POST",))
    def unfreeze(self, deal_id: int) -> Response:
        return self._freeze(deal_id, deal_freeze.unfreeze, "存管单已解冻，暂停的付款将提交银行")

    def _freeze(self, deal_id: int, operation: Callable[[Runtime, Actor, int, str], object], done: str) -> Response:
        try:
            operation(runtime(), self.actor, deal_id, request.form.get("reason", ""))
        except CunguanError as error:
            flash(error.message, "error")
        else:
            flash(done, "success")
        return redirect(url_for(".detail", deal_id=deal_id))

    def row_labels(self, rows: list[str]) -> dict[str, str]:
        with runtime().db.uow() as uow:
            ids = [int(row) for row in rows if row.isdigit()]
            found = uow.session.execute(select(Deal.id, Deal.deal_no).where(Deal.id.in_(ids)))
            return {str(deal_id): deal_no for deal_id, deal_no in found}

    @action("freeze", "冻结", "冻结后这些存管单的付款将暂停提交银行，直到解冻。")
    def batch_freeze(self, rows: list[str], reason: str) -> BatchReport:
        rt, actor = runtime(), self.actor
        return each(rows, lambda row: deal_freeze.freeze(rt, actor, _deal_id(row), reason), self.row_labels(rows))

    def _detail(self, deal_id: int, parties: dict[str, Any] | None = None, unmasked: bool = False) -> str:
        rt = runtime()
        view = deal_view(rt, self.actor, deal_id)
        deal = view.deal
        account = deal.virtual_account
        payout_ids = [payout.payout_id for payout in deal.payouts]
        with rt.db.uow() as uow:
            related = Job.payload["payout_id"].as_string().in_(payout_ids)
            if account is not None:
                related = related | (Job.payload["virtual_account_id"].as_integer() == account.id)
            jobs = list(uow.session.scalars(select(Job).where(related).order_by(Job.id)))
            callbacks = []
            if account is not None and account.account_no:
                callbacks = list(
                    uow.session.scalars(
                        select(BankNotification)
                        .where(
                            BankNotification.bank_code == account.bank_code,
                            BankNotification.account_no == account.account_no,
                        )
                        .order_by(BankNotification.id)
                        .limit(100)
                    )
                )
        signature = None
        if deal.agreement is not None:
            report = verify_pdf(deal.agreement.pdf, rt.keys.platform_certificate_pem)
            signature = "签章有效" if report.valid else "签章无效：" + "；".join(report.errors)
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/deal.html",
            view=view,
            deal=deal,
            jobs=jobs,
            callbacks=callbacks,
            signature=signature,
            parties=parties or masked_parties(deal),
            unmasked=unmasked,
            can_unmask=self.actor.role in UNMASK_ROLES,
            can_download_evidence=self.actor.role in EVIDENCE_ROLES,
        )
