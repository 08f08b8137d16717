"""Payouts in the audit log: every money instruction — a release, refund or return opened, an approval, the
bank accepting it, the bank's result — with who, the payout, its payee and amount, and its state before and
after (`payout.open`, `payout.approve`, `payout.submitted`, `payout.result`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.audit_models import AuditEntry
from app.db.models import Payout
from app.domain.pii_mask import mask_card, mask_name
from app.payouts.status import PayoutStatus, is_final


def payout_state(payout: Payout) -> dict[str, Any]:
    """What an entry says about a payout: the payee's account masked as pages show it, the name masked too
    (the log is kept for years and cannot be re-encrypted)."""
    return {
        "status": str(payout.status),
        "purpose": str(payout.purpose),
        "amount_fen": payout.amount_fen,
        "payee_name": mask_name(payout.payee_name) if payout.payee_name else "",
        "payee_account": mask_card(payout.payee_account) if payout.payee_account else "",
        "approvals_required": payout.approvals_required,
        "approved_by": list(payout.approved_by or []),
        "bank_reference": payout.bank_reference,
    }


def record(
    session: Session,
    payout: Payout,
    action: str,
    actor: str | None,
    now: datetime,
    *,
    before: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    deal = payout.deal
    audit.append(
        session,
        at=now,
        actor=actor or "system",
        action=f"payout.{action}",
        subject=f"payout:{payout.payout_id}",
        before=before,
        after=payout_state(payout),
        detail={"deal_no": deal.deal_no if deal is not None else None, **(detail or {})},
    )


def uncovered_payouts(session: Session) -> list[str]:
    """Payouts the audit log does not explain (for the simulations' invariants): each must have its opening, one
    the bank holds its acceptance, and a settled one the bank's result."""
    actions: dict[str, set[str]] = {}
    entries = session.execute(select(AuditEntry.subject, AuditEntry.action).where(AuditEntry.subject.like("payout:%")))
    for subject, action in entries:
        actions.setdefault(subject.removeprefix("payout:"), set()).add(action)
    found: list[str] = []
    for payout in session.scalars(select(Payout)):
        needed = {"payout.open"}
        if payout.status == PayoutStatus.SUBMITTED:
            needed.add("payout.submitted")
        if is_final(payout.status):
            needed.add("payout.result")
        missing = needed - actions.get(payout.payout_id, set())
        if missing:
            found.append(f"{payout.payout_id} ({payout.status}): no {', '.join(sorted(missing))} in the audit log")
    return found
