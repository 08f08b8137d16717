"""Ledger tables: accounts, immutable transfers, hot-account buffers and their alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import immutability, ledger_function
from app.db.base import Base, UTCDateTime, utcnow


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
    # indexed for the dashboard's daily flows (the last 14 days, whatever the ledger holds before them)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

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


@event.listens_for(Base.metadata, "after_create")
def _create_ledger_function(_metadata: Any, connection: Any, **_: Any) -> None:
    """Tables made by create_all (tests) get the one-call posting function migration 0035 installs
    (PostgreSQL; made once every table it names exists)."""
    for statement in ledger_function.statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


@event.listens_for(Base.metadata, "after_drop")
def _drop_ledger_function(_metadata: Any, connection: Any, **_: Any) -> None:
    for statement in ledger_function.statements(connection.dialect.name, drop=True):
        connection.exec_driver_sql(statement)
