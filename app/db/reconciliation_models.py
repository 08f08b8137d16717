"""Reconciliation tables: one run per statement, one item per line, per ledger posting the statement lacks
or per balance gap, and the exceptions (差错) that stay open until a person resolves them with a reason."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, UTCDateTime
from app.db.pii import EncryptedString

RECONCILIATION_STATUSES = (
    "matched",
    "repaired",
    "suspense",
    "amount_mismatch",
    "mismatch",
    "unknown_debit",
    "payout_missing",
    "invalid",
    "error",
    "ledger_only",
    "balance_gap",
)


class ReconciliationRun(Base):
    """One reconciliation of a bank's daily statement with our inbox and ledger; every run is kept."""

    __tablename__ = "reconciliation_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    statement_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(160))  # "bank", or "file:<name>" for a file someone gave us
    statement_sm3: Mapped[str] = mapped_column(String(64))
    complete: Mapped[bool] = mapped_column()
    line_count: Mapped[int] = mapped_column(Integer)  # rows after the header
    counts: Mapped[dict[str, int]] = mapped_column(JSON)  # status -> items
    unresolved: Mapped[int] = mapped_column(Integer)  # items needing a person when the run ended
    closing_balance_fen: Mapped[int | None] = mapped_column(BigInteger)  # as the statement says
    ledger_balance_fen: Mapped[int | None] = mapped_column(BigInteger)  # bank clearing at the cut-off, in transit added
    actor: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)

    items: Mapped[list[ReconciliationItem]] = relationship(
        order_by="ReconciliationItem.id", back_populates="run", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_reconciliation_runs_bank_day", "bank_code", "statement_date"),)


class ReconciliationItem(Base):
    """A statement line (row_no set), or (row_no empty) a ledger posting the statement lacks or the balance gap,
    with its outcome; an item needing a person points at its exception."""

    __tablename__ = "reconciliation_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"), index=True)
    row_no: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(24))
    resolved: Mapped[bool] = mapped_column()
    direction: Mapped[str | None] = mapped_column(String(8))
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    account_no: Mapped[str | None] = mapped_column(String(40))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)  # as the statement says
    our_amount_fen: Mapped[int | None] = mapped_column(BigInteger)  # as our ledger or payout says
    counterparty_name: Mapped[str | None] = mapped_column(EncryptedString)
    payout_id: Mapped[str | None] = mapped_column(String(64), index=True)
    deal_no: Mapped[str | None] = mapped_column(String(32))
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text)  # Chinese, for finance
    exception_id: Mapped[int | None] = mapped_column(ForeignKey("reconciliation_exceptions.id"))

    run: Mapped[ReconciliationRun] = relationship(back_populates="items")
    exception: Mapped[ReconciliationException | None] = relationship()

    __table_args__ = (CheckConstraint(f"status IN {RECONCILIATION_STATUSES!r}", name="status_known"),)


class ReconciliationException(Base):
    """Something a run found that needs a person (差错): one per bank and `key` (the line's reference, the
    payout, the ledger posting, the gap's figures), seen again by later runs, open until someone resolves it
    with a reason (audited)."""

    __tablename__ = "reconciliation_exceptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    statement_date: Mapped[date] = mapped_column(Date)
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(24))  # the item's status when first found
    detail: Mapped[str] = mapped_column(Text)
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    payout_id: Mapped[str | None] = mapped_column(String(64))
    deal_no: Mapped[str | None] = mapped_column(String(32))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)  # as the statement says
    our_amount_fen: Mapped[int | None] = mapped_column(BigInteger)  # as our ledger or payout says
    first_run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"))
    last_run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("bank_code", "key"),
        Index("ix_reconciliation_exceptions_bank_day", "bank_code", "statement_date"),
        CheckConstraint(f"kind IN {RECONCILIATION_STATUSES!r}", name="kind_known"),
        CheckConstraint(
            "(resolved_at IS NULL AND resolved_by IS NULL AND resolution IS NULL)"
            " OR (resolved_at IS NOT NULL AND resolved_by IS NOT NULL AND resolution IS NOT NULL)",
            name="resolved_with_reason",
        ),
    )
