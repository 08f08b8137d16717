"""Callback alerts: a notification signed by the bank that contradicts our records is refused with 409, kept
with its body for finance and ops to review (`callback_alerts`), and alerted (a warning in the logs).

Three contradictions: the same notification id with another body (`CONFLICT`: a bank never changes what it
said), a payout result for a payout the platform never sent to the bank (`PAYOUT_NOT_SUBMITTED`: no
result can exist for it, whoever sent it), and an opened account whose number is not in the bank's configured
format (`ACCOUNT_NUMBER_INVALID`, `bank_configs/<code>.json`: money paid to it could not be matched)."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.crypto import sm3
from app.db.callback_models import CallbackAlert
from app.db.upsert import insert_if_absent
from app.platform.errors import CunguanError, NotFound, ValidationError
from app.platform.runtime import Runtime

NOTIFICATION_CONFLICT, PAYOUT_NOT_SUBMITTED = "notification_conflict", "payout_not_submitted"
ACCOUNT_NUMBER_INVALID = "account_number_invalid"
REVIEW_ROLES = ("finance", "ops")
RESOLUTION_MAX = 256

log = logging.getLogger("cunguan.bank_callbacks")


class CallbackRefused(CunguanError):
    """A verified notification refused because it contradicts our records (HTTP 409, the error's code)."""

    http_status = 409

    def __init__(self, message: str, *, code: str, kind: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, details=details)
        self.kind = kind


def body_sm3(body: dict[str, Any]) -> str:
    """SM3 of the notification's canonical JSON: the same content however the bank spaced or ordered it."""
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return sm3(canonical.encode("utf-8")).hex()


def add_alert(
    rt: Runtime, session: Session, bank_code: str, raw_body: bytes | str, body: dict[str, Any], refused: CallbackRefused
) -> None:
    """Keep the refused notification for review in the caller's transaction (once per body) and alert."""
    text = raw_body.decode("utf-8", "replace") if isinstance(raw_body, bytes) else raw_body
    row = {
        "bank_code": bank_code,
        "kind": refused.kind,
        "notification_id": body["notification_id"],
        "body_sm3": body_sm3(body),
        "raw_body": text,
        "detail": {"code": refused.code, "message": refused.message, **(refused.details or {})},
        "raised_at": rt.clock(),
    }
    if insert_if_absent(session, CallbackAlert.__table__, row):
        log.warning(
            "callback refused and kept for review",
            extra={"bank": bank_code, "kind": refused.kind, "notification_id": body["notification_id"]},
        )


def record_alert(rt: Runtime, bank_code: str, raw_body: bytes, body: dict[str, Any], refused: CallbackRefused) -> None:
    """`add_alert` in a transaction of its own (the refused notification's own was rolled back)."""
    with rt.db.uow() as uow:
        add_alert(rt, uow.session, bank_code, raw_body, body, refused)
        uow.commit()


def open_alerts(rt: Runtime) -> list[CallbackAlert]:
    with rt.db.uow() as uow:
        alerts = list(
            uow.session.scalars(
                select(CallbackAlert).where(CallbackAlert.resolved_at.is_(None)).order_by(CallbackAlert.id)
            )
        )
        uow.session.expunge_all()
        return alerts


def resolve(rt: Runtime, actor: str, role: str, alert_id: int, resolution: str) -> None:
    """A reviewer closes an alert with what was found (finance or ops; a reason is required)."""
    if role not in REVIEW_ROLES:
        raise ValidationError("只有财务或运营可以处理回调告警", code="ROLE_NOT_ALLOWED")
    resolution = resolution.strip()
    if not resolution or len(resolution) > RESOLUTION_MAX:
        raise ValidationError(f"请填写处理说明（不超过 {RESOLUTION_MAX} 字）", code="REASON_REQUIRED")
    with rt.db.uow() as uow:
        done = uow.session.execute(
            update(CallbackAlert)
            .where(CallbackAlert.id == alert_id, CallbackAlert.resolved_at.is_(None))
            .values(resolved_at=rt.clock(), resolved_by=actor, resolution=resolution)
        )
        if done.rowcount != 1:
            raise NotFound("告警不存在或已处理", details={"alert_id": alert_id})
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor,
            action="callback_alert.resolve",
            subject=f"callback_alert:{alert_id}",
            after={"resolution": resolution},
        )
        uow.commit()
