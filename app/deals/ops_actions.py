"""Manual actions from the operations console, each with a reason and an audit entry."""

from __future__ import annotations

from app.audit import log as audit
from app.bank_inbox import suspense
from app.db.models import Job
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime

RETRYABLE = ("pending", "dead")


def _reason(reason: str, message: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError(message, code="REASON_REQUIRED")
    return reason


def retry_job(rt: Runtime, job_id: int, reason: str, actor: str) -> None:
    """A dead (or failing) job runs again now, with a fresh attempt budget."""
    reason = _reason(reason, "请填写重试原因")
    with rt.db.uow() as uow:
        job = uow.session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise NotFound("任务不存在", code="JOB_NOT_FOUND", details={"id": job_id})
        if job.status not in RETRYABLE:
            raise ValidationError("只能重试失败或已放弃的任务", code="JOB_NOT_RETRYABLE", details={"id": job_id})
        before = {"status": job.status, "attempts": job.attempts, "last_error": job.last_error}
        job.status, job.attempts, job.run_after = "pending", 0, rt.clock()
        job.locked_by = job.locked_until = None
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor,
            action="job.retry",
            subject=f"job:{job.id}",
            before=before,
            after={"status": "pending", "attempts": 0},
            detail={"kind": job.kind, "reason": reason},
        )
        uow.commit()


def match_suspense(rt: Runtime, item_id: int, deal_no: str, reason: str, actor: str) -> None:
    """Propose to credit a suspense item to a deal; a second person approves (`suspense.approve_match`)."""
    reason = _reason(reason, "请填写匹配原因")
    deal_no = deal_no.strip()
    if not deal_no:
        raise ValidationError("请填写存管单号", code="DEAL_NO_REQUIRED")
    suspense.propose_match(rt, item_id, deal_no, reason, actor)


def return_suspense(rt: Runtime, item_id: int, reason: str, actor: str) -> str:
    """Send a suspense item back by original route; returns the payout id."""
    return suspense.return_item(rt, item_id, _reason(reason, "请填写退回原因"), actor)
