"""Party signing requests (issue 20): one per deal and party role; the link's token and the one-time code are
stored as hashes only (`app/signing/`). And what each client (address) did to any link within the hour, for the
per-address limits every web process shares (`app/signing/clients.py`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class SigningRequest(Base):
    __tablename__ = "signing_requests"
    __table_args__ = (UniqueConstraint("deal_id", "role", name="uq_signing_requests_deal_role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # payer | payee
    position: Mapped[int] = mapped_column(Integer)  # signing order: 1 the payer, 2 the payee
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SM3 of the link's token
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # real-name check passed
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # the link is used up
    certificate_serial: Mapped[str | None] = mapped_column(String(40), nullable=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # HMAC-SM3 of the current code
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong entries of the current code
    codes_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_code_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_checks: Mapped[int] = mapped_column(Integer, default=0)  # wrong name / ID number entries


class SigningClientEvent(Base):
    """A code sent, or a failed real-name check, by a client: the SM3 of its address, never the address."""

    __tablename__ = "signing_client_events"
    __table_args__ = (Index("ix_signing_client_events_client", "client", "kind", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(64))  # SM3 of the address (hex)
    kind: Mapped[str] = mapped_column(String(16))  # code | check_failed
    at: Mapped[datetime] = mapped_column(UTCDateTime)
