"""Who money may leave to: where each credit to a deal's custody came from (its origin, for 原路退回) and the
payee amendments a second person approved (an account added to the one the agreement names)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime
from app.db.pii import EncryptedString


class PayoutOrigin(Base):
    """One credit to a deal's custody and the account it came from, recorded with the credit itself (one
    per ledger transfer), in whatever state the deal was. A refund may go back to it, at most what it paid
    less what it already got back."""

    __tablename__ = "payout_origins"
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    transfer_id: Mapped[str] = mapped_column(String(128), unique=True)
    account: Mapped[str] = mapped_column(EncryptedString)
    name: Mapped[str | None] = mapped_column(EncryptedString)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("amount_fen > 0", name="origin_amount_positive"),)


class PayeeAmendment(Base):
    """An account for a deal's receiving role other than the one the agreement names: proposed by one
    person, effective only once another approved it."""

    __tablename__ = "payee_amendments"
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    role: Mapped[str] = mapped_column(String(32))
    payee_name: Mapped[str] = mapped_column(EncryptedString)
    account: Mapped[str] = mapped_column(EncryptedString)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('proposed','approved')", name="amendment_status_known"),
        CheckConstraint("approved_by IS NULL OR approved_by <> proposed_by", name="amendment_four_eyes"),
        Index("ix_payee_amendments_deal_status", "deal_id", "status"),
    )
