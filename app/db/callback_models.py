"""Bank callbacks the platform refused although their signature was the bank's: kept for a person to review."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime
from app.db.pii import EncryptedText


class CallbackAlert(Base):
    """A verified notification that contradicts our records: the same notification id with another body
    (`notification_conflict`), or a result for a payout never sent to the bank (`payout_not_submitted`).
    Answered 409, kept with its body, shown to finance and ops until someone resolves it."""

    __tablename__ = "callback_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    notification_id: Mapped[str] = mapped_column(String(64))
    body_sm3: Mapped[str] = mapped_column(String(64))
    raw_body: Mapped[str] = mapped_column(EncryptedText)  # it may name payers and their accounts
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(Text)

    # a bank resending the same refused body raises no second alert
    __table_args__ = (UniqueConstraint("bank_code", "notification_id", "body_sm3"),)
