"""Reconciliation exceptions (差错): what a run found that needs a person, kept open until someone resolves it
with a reason (audited). Each has an identity per bank (`key`): the statement line's reference, the payout,
the ledger posting, the balance gap's figures; a later run that finds the same thing points at the same
exception, so re-running reconciliation never closes or duplicates one. A statement the bank marks incomplete
(the day is not over) is provisional: its findings are shown, counted as unresolved, and opened only by the
run of the day's final statement. A report may say "无未解决项" only when none is open and none is found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.reconciliation_models import ReconciliationException, ReconciliationItem, ReconciliationRun
from app.domain.statements import RESOLVED_STATUSES
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime


def exception_key(run: ReconciliationRun, item: ReconciliationItem, key: str | None) -> str:
    """The identity of what the item found: given by the ledger's side, else the statement line's reference,
    else (a row that cannot be read) the statement's day, row and digest."""
    if key is not None:
        return key
    if item.bank_reference is not None:
        return f"line:{item.bank_reference}"
    return f"invalid:{run.statement_date.isoformat()}:{item.row_no or 0}:{run.statement_sm3[:16]}"


def record(session: Session, run: ReconciliationRun, keys: list[str | None]) -> None:
    """Open an exception for every item of the (flushed) run of a complete statement that needs a person, or
    point it at the one already opened for the same thing (its last run is this one); `keys` pairs with
    `run.items`."""
    if not run.complete:
        return
    for item, given in zip(run.items, keys, strict=True):
        if item.status in RESOLVED_STATUSES:
            continue
        key = exception_key(run, item, given)
        found = session.scalar(
            select(ReconciliationException)
            .where(ReconciliationException.bank_code == run.bank_code, ReconciliationException.key == key)
            .with_for_update()
        )
        if found is None:
            found = ReconciliationException(
                bank_code=run.bank_code,
                statement_date=run.statement_date,
                key=key,
                kind=item.status,
                detail=item.detail,
                bank_reference=item.bank_reference,
                payout_id=item.payout_id,
                deal_no=item.deal_no,
                amount_fen=item.amount_fen,
                our_amount_fen=item.our_amount_fen,
                first_run_id=run.id,
                last_run_id=run.id,
                opened_at=run.finished_at,
            )
            session.add(found)
            session.flush()
        found.last_run_id = run.id
        item.exception_id = found.id


def resolve(rt: Runtime, exception_id: int, reason: str, actor: str) -> ReconciliationException:
    """A person closes the exception, saying why; audited in the same transaction."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("请填写处理原因", code="REASON_REQUIRED")
    with rt.db.uow() as uow:
        found = uow.session.get(ReconciliationException, exception_id, with_for_update=True)
        if found is None:
            raise NotFound("对账差错不存在", code="RECON_EXCEPTION_NOT_FOUND", details={"id": exception_id})
        if found.resolved_at is not None:
            raise ValidationError(
                f"该差错已由 {found.resolved_by} 处理", code="RECON_EXCEPTION_RESOLVED", details={"id": exception_id}
            )
        found.resolved_at, found.resolved_by, found.resolution = rt.clock(), actor, reason
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor,
            action="reconciliation.resolve",
            subject=f"reconciliation_exception:{found.id}",
            before={"status": "open"},
            after={"status": "resolved", "resolution": reason},
            detail={
                "bank": found.bank_code,
                "statement_date": found.statement_date.isoformat(),
                "kind": found.kind,
                "key": found.key,
                "amount_fen": found.amount_fen,
                "our_amount_fen": found.our_amount_fen,
            },
        )
        uow.commit()
        return found


@dataclass(frozen=True)
class OpenCounts:
    day: int  # open exceptions of the run's bank and day, and the findings of a provisional run
    other_days: int  # open exceptions of the same bank, other days
    provisional: bool = False  # the run's statement was incomplete: its findings are not opened

    @property
    def total(self) -> int:
        return self.day + self.other_days


def run_counts(rt: Runtime, run: ReconciliationRun) -> OpenCounts:
    """What is unresolved as a run's report says it now."""
    counts = open_counts(rt, run.bank_code, run.statement_date)
    if run.complete:
        return counts
    return OpenCounts(counts.day + run.unresolved, counts.other_days, provisional=True)


def open_counts(rt: Runtime, bank_code: str, day: date) -> OpenCounts:
    with rt.db.uow() as uow:
        open_ones = select(func.count()).where(
            ReconciliationException.bank_code == bank_code, ReconciliationException.resolved_at.is_(None)
        )
        on_day = uow.session.scalar(open_ones.where(ReconciliationException.statement_date == day)) or 0
        other_days = uow.session.scalar(open_ones.where(ReconciliationException.statement_date != day)) or 0
    return OpenCounts(on_day, other_days)


def verdict(counts: OpenCounts) -> str:
    """The report's last line: it says 无未解决项 only when no exception of the bank is open."""
    if counts.day:
        extra = f"（该银行其他对账日另有 {counts.other_days} 项）" if counts.other_days else ""
        if counts.provisional:
            extra += "（对账单未完整，银行日终后再对账登记差错）"
        return f"✗ 未解决 {counts.day} 项{extra}，请财务核查并填写处理原因"
    if counts.other_days:
        return f"✗ 本对账日各项已处理，但该银行其他对账日尚有 {counts.other_days} 项未解决"
    return "✓ 对账完成，无未解决项"


def list_exceptions(rt: Runtime, *, open_only: bool = True, limit: int = 500) -> list[ReconciliationException]:
    with rt.db.uow() as uow:
        query = select(ReconciliationException).order_by(
            ReconciliationException.statement_date.desc(), ReconciliationException.id
        )
        if open_only:
            query = query.where(ReconciliationException.resolved_at.is_(None))
        return list(uow.session.scalars(query.limit(limit)))
