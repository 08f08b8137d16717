"""SQLAlchemy 2.x models. Money columns are integer fen (BigInteger); times are aware UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import immutability
from app.db.base import Base, UTCDateTime, utcnow
from app.db.pii import EncryptedString

ROLES = ("agent", "ops", "reviewer", "finance", "auditor", "admin")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role_known"),)


class Deal(Base):
    __tablename__ = "deals"
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_no: Mapped[str] = mapped_column(String(32), unique=True)
    city_code: Mapped[str] = mapped_column(String(6))
    product: Mapped[str] = mapped_column(String(32))
    bank_code: Mapped[str] = mapped_column(String(16))
    workflow_id: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[int] = mapped_column(Integer)
    city_config_sha256: Mapped[str] = mapped_column(String(64))
    agreement_template: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    buyer_name: Mapped[str] = mapped_column(String(64))
    buyer_id_number: Mapped[str] = mapped_column(EncryptedString)
    buyer_bank_name: Mapped[str] = mapped_column(String(64))
    buyer_bank_account: Mapped[str] = mapped_column(EncryptedString)
    seller_name: Mapped[str] = mapped_column(String(64))
    seller_id_number: Mapped[str] = mapped_column(EncryptedString)
    seller_bank_name: Mapped[str] = mapped_column(String(64))
    seller_bank_account: Mapped[str] = mapped_column(EncryptedString)
    property_address: Mapped[str] = mapped_column(String(256))
    certificate_no: Mapped[str] = mapped_column(String(64))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    custody_amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    created_by: Mapped[User] = relationship()
    events: Mapped[list[DealEvent]] = relationship(order_by="DealEvent.id", back_populates="deal")
    virtual_account: Mapped[VirtualAccount | None] = relationship(back_populates="deal")
    agreement: Mapped[Agreement | None] = relationship(back_populates="deal")
    payouts: Mapped[list[Payout]] = relationship(order_by="Payout.created_at", back_populates="deal")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads a dict here
    __table_args__ = (
        CheckConstraint("price_fen > 0", name="price_positive"),
        CheckConstraint("custody_amount_fen > 0 AND custody_amount_fen <= price_fen", name="custody_within_price"),
    )


class DealEvent(Base):
    """The deal's timeline: one row per transition (or recorded fact), never updated."""

    __tablename__ = "deal_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deal: Mapped[Deal] = relationship(back_populates="events")


class VirtualAccount(Base):
    __tablename__ = "virtual_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), unique=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_name: Mapped[str] = mapped_column(String(128))
    account_no: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deal: Mapped[Deal] = relationship(back_populates="virtual_account")

    __table_args__ = (UniqueConstraint("bank_code", "account_no"),)


class Agreement(Base):
    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sm3: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    deal: Mapped[Deal] = relationship(back_populates="agreement")


class Payout(Base):
    __tablename__ = "payouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[str] = mapped_column(String(64), unique=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), index=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    payee_name: Mapped[str] = mapped_column(String(64))
    payee_account: Mapped[str] = mapped_column(EncryptedString)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    deal: Mapped[Deal] = relationship(back_populates="payouts")

    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending','submitted','succeeded','failed')", name="status_known"),
    )


class BankNotification(Base):
    """Inbox: every verified callback, stored raw before it is processed."""

    __tablename__ = "bank_notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    notification_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    raw_body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("bank_code", "notification_id"),)


class SeenNonce(Base):
    """Nonces of signed requests already accepted, per sender; a repeat is a replay."""

    __tablename__ = "seen_nonces"
    sender: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Job(Base):
    """Outbox of side effects: written in the same transaction as the state change, run by workers."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=12)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("status IN ('pending','running','done','dead')", name="status_known"),)


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(default=False)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Hot: touched by most deals; safe postings are buffered (LedgerHotEntry) instead of row-locked.
    hot: Mapped[bool] = mapped_column(default=False, server_default="0")
    alert_below_fen: Mapped[int | None] = mapped_column(BigInteger)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("type IN ('asset','liability','income','expense','equity')", name="type_known"),
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0",
            name="totals_non_negative",
        ),
        CheckConstraint(
            "NOT debits_must_not_exceed_credits OR debits_posted + debits_pending <= credits_posted",
            name="debits_within_credits",
        ),
        CheckConstraint(
            "NOT credits_must_not_exceed_debits OR credits_posted + credits_pending <= debits_posted",
            name="credits_within_debits",
        ),
    )


class LedgerTransfer(Base):
    """Immutable: one debit, one credit, a positive amount, a caller-chosen unique id."""

    __tablename__ = "ledger_transfers"
    id: Mapped[str] = mapped_column(String(96), primary_key=True)
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="single", server_default="single")
    pending_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transfers.id"), unique=True)
    timeout_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    debit_account: Mapped[LedgerAccount] = relationship(foreign_keys=[debit_account_id])
    credit_account: Mapped[LedgerAccount] = relationship(foreign_keys=[credit_account_id])

    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        CheckConstraint("kind IN ('single','pending','post_pending','void_pending')", name="kind_known"),
        CheckConstraint(
            "(kind IN ('post_pending','void_pending')) = (pending_id IS NOT NULL)", name="resolution_names_pending"
        ),
        CheckConstraint("kind = 'pending' OR timeout_at IS NULL", name="timeout_only_on_pending"),
    )


class LedgerHotEntry(Base):
    """Posted totals not yet folded into a hot account: its exact balance is the row plus these."""

    __tablename__ = "ledger_hot_entries"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    debits_posted: Mapped[int] = mapped_column(BigInteger)
    credits_posted: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("debits_posted >= 0 AND credits_posted >= 0", name="deltas_non_negative"),)


class LedgerAlert(Base):
    """A guarded hot account whose projected balance fell below its threshold; cleared when it recovers."""

    __tablename__ = "ledger_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    projected_fen: Mapped[int] = mapped_column(BigInteger)
    threshold_fen: Mapped[int] = mapped_column(BigInteger)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[LedgerAccount] = relationship()


@event.listens_for(LedgerTransfer.__table__, "after_create")
def _make_transfers_immutable(table: Any, connection: Any, **_: Any) -> None:
    """Tables made by create_all (tests) get the same triggers as migration 0002 installs."""
    for statement in immutability.statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


@event.listens_for(LedgerTransfer.__table__, "after_drop")
def _drop_immutability_function(table: Any, connection: Any, **_: Any) -> None:
    """Dropping the table drops its triggers; on PostgreSQL the trigger function outlives it."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS ledger_transfers_immutable()")
