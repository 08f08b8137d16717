"""Suspense and its review queue: money we hold but cannot credit to a deal (yet).

Three reasons: an arrival for an account we do not know - often only because the bank's `account_opened`
notice is late, so the credit is matched as soon as the account is recorded; an arrival from someone
other than the deal's designated payer, which goes back by original route, automatically or after a
person looked (city config `payer.wrong_payer`); and an arrival for a deal that has ended (closed,
cancelled, refunded): nobody is owed it but its payer, so it goes back by original route at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.bank_inbox.custody import Credit, CreditKind, credit_custody, credit_transfer_id
from app.db.models import Deal, SuspenseItem, VirtualAccount
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext, fire_or_note, has_ended, note
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.ledger.repo import LedgerRepository
from app.payouts import lifecycle
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime

REASON_LABELS = {"unknown_account": "未知账户", "wrong_payer": "非指定付款人", "deal_closed": "存管单已结束"}
REMATCH_RESOLUTION = "开户通知晚于到账，自动匹配"
STATUS_LABELS = {"open": "待处理", "matched": "已匹配", "returning": "退回中", "returned": "已原路退回"}


def receive(
    rt: Runtime,
    session: Session,
    bank_code: str,
    body: dict[str, Any],
    account: VirtualAccount | None,
    actor: str,
    *,
    deal_closed: bool = False,
) -> str:
    """Post the arrival to suspense (idempotent on the bank reference) and queue it for review: money for an
    unknown account, from a payer the deal does not accept, or (`deal_closed`) for a deal that has ended."""
    repo = LedgerRepository(session)
    clearing = repo.ensure_account(ledger.bank_clearing(bank_code))
    suspense = repo.ensure_account(ledger.suspense(bank_code))
    transfer_id = credit_transfer_id("arrival", bank_code, body["bank_reference"])
    deal = account.deal if account is not None else None
    _, created = repo.post(
        TransferSpec(
            transfer_id,
            clearing.code,
            suspense.code,
            body["amount_fen"],
            "unmatched_arrival",
            deal.id if deal is not None else None,
        ),
        at=rt.clock(),
    )
    if not created:
        return "duplicate_bank_reference"
    item = SuspenseItem(
        bank_code=bank_code,
        bank_reference=body["bank_reference"],
        transfer_id=transfer_id,
        account_no=body["account_no"],
        amount_fen=body["amount_fen"],
        payer_name=body.get("payer_name"),
        payer_account=body.get("payer_account"),
        payer_matched=body.get("designated_payer_matched"),
        reason="unknown_account" if deal is None else "deal_closed" if deal_closed else "wrong_payer",
        status="open",
        deal_id=deal.id if deal is not None else None,
        created_at=rt.clock(),
    )
    session.add(item)
    session.flush()
    if deal is None:
        return "suspense"
    if deal_closed:
        return _after_closing(rt, session, item, deal, actor)
    return _wrong_payer(rt, session, item, deal, actor)


def _after_closing(rt: Runtime, session: Session, item: SuspenseItem, deal: Deal, actor: str) -> str:
    label = "存管单已结束后入金，已挂账并自动原路退回"
    note(
        DealContext(rt, session, deal, actor),
        "late_arrival",
        {"amount_fen": item.amount_fen, "bank_reference": item.bank_reference, "label": label},
    )
    lifecycle.open_return(rt, session, item, "system:auto", "存管单已结束后入金，自动原路退回")
    return "deal_closed_returning"


def _wrong_payer(rt: Runtime, session: Session, item: SuspenseItem, deal: Deal, actor: str) -> str:
    ctx = DealContext(rt, session, deal, actor)
    detail = {"amount_fen": item.amount_fen, "bank_reference": item.bank_reference, "label": "非指定付款人入金，已挂账"}
    fire_or_note(ctx, "wrong_payer_arrival", detail)
    if pinned_city(rt, session, deal).product(deal.product).payer.wrong_payer == "return":
        lifecycle.open_return(rt, session, item, "system:auto", "非指定付款人入金，按城市规则自动原路退回")
        return "wrong_payer_returning"
    return "wrong_payer_review"


def rematch_after_opening(rt: Runtime, session: Session, account: VirtualAccount, actor: str) -> int:
    """The account is known now: credit what arrived for it before `account_opened` did."""
    items = session.scalars(
        select(SuspenseItem)
        .where(
            SuspenseItem.bank_code == account.bank_code,
            SuspenseItem.account_no == account.account_no,
            SuspenseItem.reason == "unknown_account",
            SuspenseItem.status == "open",
        )
        .order_by(SuspenseItem.id)
    ).all()
    for item in items:
        item.deal_id = account.deal_id
        if account.designated_payer and item.payer_matched is False:
            item.reason = "wrong_payer"
            _wrong_payer(rt, session, item, account.deal, actor)
            continue
        _credit_deal(rt, session, item, account.deal, "rematch", REMATCH_RESOLUTION, actor)
    return len(items)


def _matchable_deal(rt: Runtime, item: SuspenseItem, deal: Deal | None, deal_no: str) -> Deal:
    if deal is None:
        raise NotFound("存管单不存在", code="DEAL_NOT_FOUND", details={"deal_no": deal_no})
    if deal.bank_code != item.bank_code:
        raise ValidationError("挂账与存管单不在同一家银行", code="BANK_MISMATCH")
    if has_ended(rt, deal):  # as an arrival for it would: its custody would keep the money for good
        raise ValidationError(
            "存管单已结束，不能匹配入账，请原路退回", code="DEAL_FINISHED", details={"deal_no": deal_no}
        )
    return deal


def propose_match(rt: Runtime, item_id: int, deal_no: str, reason: str, actor: str) -> None:
    """A finance user proposes that the credit belongs to the deal (with a reason); nothing moves until a
    second finance user approves it (`approve_match`). A new proposal replaces an earlier one."""
    if not reason.strip():
        raise ValidationError("请填写匹配原因", code="REASON_REQUIRED")
    with rt.db.uow() as uow:
        item = _open_item(uow.session, item_id)
        deal = uow.session.scalar(select(Deal).where(Deal.deal_no == deal_no))
        deal = _matchable_deal(rt, item, deal, deal_no)
        item.proposed_deal_no, item.proposed_reason = deal.deal_no, reason.strip()
        item.proposed_by, item.proposed_at = actor, rt.clock()
        _audit(rt, uow.session, item, actor, "suspense.match_propose", {"deal_no": deal_no, "reason": reason.strip()})
        uow.commit()


def approve_match(rt: Runtime, item_id: int, actor: str) -> str:
    """A second finance user approves the proposed match: the money goes into the deal's custody. Returns
    the deal number."""
    with rt.db.uow() as uow:
        item = _open_item(uow.session, item_id)
        deal_no, reason = item.proposed_deal_no, item.proposed_reason
        if item.proposed_by is None or deal_no is None or reason is None:
            raise ValidationError("该挂账没有待批准的匹配", code="NO_MATCH_PROPOSED", details={"id": item_id})
        if item.proposed_by == actor:
            raise ValidationError(
                "匹配须由另一位财务人员批准，提出人不能批准自己的匹配", code="SAME_PERSON", details={"actor": actor}
            )
        deal = uow.session.scalar(select(Deal).where(Deal.deal_no == deal_no))
        deal = _matchable_deal(rt, item, deal, deal_no)
        item.deal_id = deal.id
        _credit_deal(rt, uow.session, item, deal, "match", reason, actor)
        detail = {"deal_no": deal_no, "reason": reason, "proposed_by": item.proposed_by}
        _audit(rt, uow.session, item, actor, "suspense.match", detail)
        uow.commit()
        return deal_no


def return_item(rt: Runtime, item_id: int, reason: str, actor: str) -> str:
    """A person sends the credit back by original route; returns the payout id."""
    if not reason.strip():
        raise ValidationError("请填写退回原因", code="REASON_REQUIRED")
    with rt.db.uow() as uow:
        item = _open_item(uow.session, item_id)
        payout_id = lifecycle.open_return(rt, uow.session, item, actor, reason.strip())
        _audit(rt, uow.session, item, actor, "suspense.return", {"payout_id": payout_id, "reason": reason.strip()})
        uow.commit()
        return payout_id


def _credit_deal(
    rt: Runtime, session: Session, item: SuspenseItem, deal: Deal, kind: CreditKind, resolution: str, actor: str
) -> None:
    """The item's money into the deal's custody (`custody.credit_custody`, from suspense); the item is matched."""
    credit = Credit(kind, item.bank_code, item.bank_reference, item.amount_fen, item.payer_name, item.payer_account)
    item.status, item.resolution, item.resolved_by, item.resolved_at = "matched", resolution, actor, rt.clock()
    credit_custody(rt, session, deal, credit, actor, {"matched": resolution})


def _audit(rt: Runtime, session: Session, item: SuspenseItem, actor: str, action: str, detail: dict[str, str]) -> None:
    """A person's decision on a suspense item is audited in the same transaction as the decision."""
    audit.append(
        session,
        at=rt.clock(),
        actor=actor,
        action=action,
        subject=f"suspense:{item.id}",
        before={"status": "open"},
        after={"status": item.status, "resolution": item.resolution},
        detail={**detail, "bank_reference": item.bank_reference, "amount_fen": item.amount_fen},
    )


def _open_item(session: Session, item_id: int) -> SuspenseItem:
    item = session.get(SuspenseItem, item_id, with_for_update=True)
    if item is None:
        raise NotFound("挂账记录不存在", code="SUSPENSE_NOT_FOUND", details={"id": item_id})
    if item.status != "open":
        raise ValidationError(
            f"该挂账已处理（{STATUS_LABELS[item.status]}）", code="SUSPENSE_RESOLVED", details={"id": item_id}
        )
    return item


def list_items(rt: Runtime, status: str | None = "open") -> list[SuspenseItem]:
    with rt.db.uow() as uow:
        query = select(SuspenseItem).order_by(SuspenseItem.created_at)
        if status is not None:
            query = query.where(SuspenseItem.status == status)
        items = list(uow.session.scalars(query))
        for item in items:
            _ = item.deal  # loaded for the caller after the session closes
        return items


def match_violations(session: Session) -> list[str]:
    """Suspense credits moved into a deal by one person alone (for the simulations' invariants): a person's match
    needs a proposal by another finance user (the automatic re-match after a late account notice has none)."""
    found: list[str] = []
    matched = session.scalars(select(SuspenseItem).where(SuspenseItem.status == "matched"))
    for item in matched:
        by_person = item.resolution != REMATCH_RESOLUTION
        if by_person and (item.proposed_by is None or item.proposed_by == item.resolved_by):
            found.append(f"suspense {item.id}: matched by {item.resolved_by}, proposed by {item.proposed_by}")
    return found
