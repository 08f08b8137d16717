"""SQLAlchemy 2.x models. Money columns are integer fen (BigInteger); times are aware UTC."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

# The tables kept in sibling modules by subject: imported so that Base.metadata holds every table.
from app.db import (  # noqa: F401
    audit_models,
    callback_models,
    config_models,
    definition_models,
    figure_models,
    grant_models,
    ledger_models,
    payee_models,
    reconciliation_models,
    signing_models,
)
from app.db.base import Base, UTCDateTime, utcnow
from app.db.pii import EncryptedBytes, EncryptedString, EncryptedText, blind_index_column_info, install_blind_indexes

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
    # False until a second administrator approved the role grant of the user's creation (app/users/grants.py)
    role_approved: Mapped[bool] = mapped_column(default=True, server_default="1")
    # a password an administrator set is one-time: the user changes it before anything else
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default="0")
    # part of every session's id: raising it (password, deactivation, role) ends every session of the user
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

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
    # "kind:name" -> content sha256 of each published definition the deal started with (workflow, template
    # files, clauses): app.definitions.pins; empty for deals made before migration 0034
    definitions: Mapped[dict[str, str] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    buyer_name: Mapped[str] = mapped_column(EncryptedString)
    buyer_id_number: Mapped[str] = mapped_column(EncryptedString)
    # the paying party (buyer, tenant, owner, applicant) in buyer_*, the receiving one (seller, landlord,
    # contractor) in seller_*; a payer who is refunded by original route needs no bank account of record
    buyer_bank_name: Mapped[str | None] = mapped_column(String(64))
    buyer_bank_account: Mapped[str | None] = mapped_column(EncryptedString)
    seller_name: Mapped[str | None] = mapped_column(EncryptedString)
    seller_id_number: Mapped[str | None] = mapped_column(EncryptedString)
    seller_bank_name: Mapped[str | None] = mapped_column(String(64))
    seller_bank_account: Mapped[str | None] = mapped_column(EncryptedString)
    buyer_phone: Mapped[str | None] = mapped_column(EncryptedString)
    seller_phone: Mapped[str | None] = mapped_column(EncryptedString)
    # keyed SM3 blind indexes for exact search (app/db/pii.py), written on every insert and update
    buyer_id_bidx: Mapped[str | None] = mapped_column(
        String(64), index=True, info=blind_index_column_info("buyer_id_number", "id")
    )
    seller_id_bidx: Mapped[str | None] = mapped_column(
        String(64), index=True, info=blind_index_column_info("seller_id_number", "id")
    )
    buyer_phone_bidx: Mapped[str | None] = mapped_column(
        String(64), index=True, info=blind_index_column_info("buyer_phone", "phone")
    )
    seller_phone_bidx: Mapped[str | None] = mapped_column(
        String(64), index=True, info=blind_index_column_info("seller_phone", "phone")
    )
    property_address: Mapped[str | None] = mapped_column(EncryptedText)
    certificate_no: Mapped[str | None] = mapped_column(EncryptedString)
    # certificate or contract number: is it in custody already? (exact, through its blind index)
    certificate_bidx: Mapped[str | None] = mapped_column(
        String(64), index=True, info=blind_index_column_info("certificate_no", "cert")
    )
    price_fen: Mapped[int] = mapped_column(BigInteger)
    custody_amount_fen: Mapped[int] = mapped_column(BigInteger)
    # the product's case facts the workflow's building blocks read and keep (rent plan, counters, origins)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    # the city's extra form fields as typed (JSON, `app.domain.extra_fields`), personal data among them: read only
    # by the deal page and the agreement, so loaded only when asked for
    extra_fields: Mapped[str | None] = mapped_column(EncryptedText, deferred=True)
    # a frozen deal (judicial or risk freeze) sends no money out until unfrozen
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    frozen_by: Mapped[str | None] = mapped_column(String(64))
    frozen_reason: Mapped[str | None] = mapped_column(String(256))
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


install_blind_indexes(Deal)


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
    # registered with the bank: only the buyer's own account may pay in (city config `payer`)
    designated_payer: Mapped[bool] = mapped_column(default=False, server_default="0")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deal: Mapped[Deal] = relationship(back_populates="virtual_account")

    __table_args__ = (UniqueConstraint("bank_code", "account_no"),)


class Agreement(Base):
    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    html: Mapped[str] = mapped_column(EncryptedText)
    pdf: Mapped[bytes] = mapped_column(EncryptedBytes)  # decrypted on read: only the routes allowed serve it
    pdf_sm3: Mapped[str] = mapped_column(String(64))  # of the plain PDF
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    deal: Mapped[Deal] = relationship(back_populates="agreement")


class Payout(Base):
    __tablename__ = "payouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    payout_id: Mapped[str] = mapped_column(String(64), unique=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True)  # none: an unknown credit's return
    bank_code: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # what the payee gets (a release's fee taken off)
    # a release's fees, by the index of the rule in the pinned config's `fees`: held with the payout, moved to fee
    # income when it is paid (`app/fees/`); the release's gross is amount_fen plus these
    fees: Mapped[dict[str, int]] = mapped_column(JSON, default=dict, server_default="{}")
    payee_name: Mapped[str] = mapped_column(EncryptedString)
    payee_account: Mapped[str] = mapped_column(EncryptedString)
    status: Mapped[str] = mapped_column(String(24), default="pending")
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(256))
    # release: the deal's money to a payee; refund: the deal's money back to where it came from (both drive
    # the workflow); return: a suspense credit back to its payer
    purpose: Mapped[str] = mapped_column(String(16), default="release", server_default="release")
    # the payouts one transition asked for together: the workflow hears once all of them are final
    release_group: Mapped[str | None] = mapped_column(String(64), index=True)
    suspense_item_id: Mapped[int | None] = mapped_column(ForeignKey("suspense_items.id"))
    # large payouts wait for other people's approval (city config `approvals`): who asked, who approved
    requested_by: Mapped[str | None] = mapped_column(String(64))
    approvals_required: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    approved_by: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # first sent to the bank: set and committed by `submit_payout` before it calls the bank, so a worker that
    # dies after the bank accepted still leaves it; a payout never sent can have no result at the bank
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    deal: Mapped[Deal | None] = relationship(back_populates="payouts")
    suspense_item: Mapped[SuspenseItem | None] = relationship()

    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('awaiting_approval','pending','submitted','succeeded','failed')", name="status_known"
        ),
        CheckConstraint("purpose IN ('release','return','refund')", name="purpose_known"),
        CheckConstraint("deal_id IS NOT NULL OR purpose = 'return'", name="deal_or_return"),
    )

    @property
    def fee_fen(self) -> int:
        return sum((self.fees or {}).values())

    @property
    def approvals_needed(self) -> int:
        """How many approvals people other than the requester must give: the city's count of different people,
        less the requester when a person asked for it; a payout the system opened (on a timer, on the bank's
        answer) needs every one of them from people."""
        by_person = (self.requested_by or "").startswith("user:")
        return self.approvals_required - (1 if by_person else 0)


class SuspenseItem(Base):
    """Money held in suspense: the review queue. An arrival for an account we do not know (yet), or
    from someone other than the deal's designated payer."""

    __tablename__ = "suspense_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    bank_reference: Mapped[str] = mapped_column(String(64))
    transfer_id: Mapped[str] = mapped_column(String(96))
    account_no: Mapped[str] = mapped_column(String(40), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    payer_name: Mapped[str | None] = mapped_column(EncryptedString)
    payer_account: Mapped[str | None] = mapped_column(EncryptedString)
    payer_matched: Mapped[bool | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id"), index=True)
    resolution: Mapped[str | None] = mapped_column(String(256))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # a match into a deal is proposed by one finance user and carried out when a second one approves it
    proposed_deal_no: Mapped[str | None] = mapped_column(String(32))
    proposed_reason: Mapped[str | None] = mapped_column(String(256))
    proposed_by: Mapped[str | None] = mapped_column(String(64))
    proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deal: Mapped[Deal | None] = relationship()

    __table_args__ = (
        UniqueConstraint("bank_code", "bank_reference"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("reason IN ('unknown_account','wrong_payer','deal_closed')", name="reason_known"),
        CheckConstraint("status IN ('open','matched','returning','returned')", name="status_known"),
    )


class BankNotification(Base):
    """Inbox: every verified callback, stored raw before it is processed."""

    __tablename__ = "bank_notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(16))
    notification_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    raw_body: Mapped[str] = mapped_column(EncryptedText)  # it names payers and their accounts
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(64))
    partition_no: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")  # see inbox_partition
    body_sm3: Mapped[str | None] = mapped_column(String(64))  # of the canonical body (None before 0020)
    # the (virtual) account it concerns, if any: the admin lists a deal's callbacks by it (the body is encrypted)
    account_no: Mapped[str | None] = mapped_column(String(40))
    # the X-Bank-* headers of the first delivery (timestamp, nonce, base64 SM2 signature over them and the body):
    # the evidence pack (app/evidence) lets anyone re-check the bank's signature; None before 0047 and for 补单
    signature: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # the payout a payout_result concerns (from the body, kept beside it like account_no); None before 0047
    payout_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("bank_code", "notification_id"),
        Index("ix_bank_notifications_account", "bank_code", "account_no"),
        Index("ix_bank_notifications_payout", "bank_code", "payout_id"),
        # the processors' queues: only the rows still due, however long the processed history grows
        Index(
            "ix_bank_notifications_due",
            "partition_no",
            "id",
            postgresql_where=text("processed_at IS NULL AND outcome IS NULL"),
            sqlite_where=text("processed_at IS NULL AND outcome IS NULL"),
        ),
    )


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
    # the bank a job calls, if any: a worker runs only so many of one bank's jobs at once (app/queue/slots.py)
    bank_code: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=12)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("status IN ('pending','running','done','dead')", name="status_known"),
        # the claim reads "due, oldest first" straight off these, for pending jobs and for expired leases
        # (constant time however many jobs are queued); the status prefix also serves counts by status
        Index("ix_jobs_status_run_after", "status", "run_after", "id"),
        Index("ix_jobs_status_locked_until", "status", "locked_until", "id"),
        # the home page's capped counts of retrying jobs and of queued account openings (app/ops/dashboard.py)
        Index(
            "ix_jobs_retrying",
            "id",
            postgresql_where=text("status = 'pending' AND attempts > 0"),
            sqlite_where=text("status = 'pending' AND attempts > 0"),
        ),
        Index(
            "ix_jobs_queued_kind",
            "kind",
            "id",
            postgresql_where=text("status IN ('pending', 'running')"),
            sqlite_where=text("status IN ('pending', 'running')"),
        ),
    )


class BankRateLimit(Base):
    """A bank's account-opening window (app.domain.rate_limit): its last sends as JSON
    `[[ticket, started_ms, answered_ms|null, bank_ms|null], …]` (bank_ms: the bank's stamp of the request)
    and today's count, and a lower bound of the bank's clock offset, shared by every worker process
    (row-locked when a send starts or is answered)."""

    __tablename__ = "bank_rate_limits"
    bank_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    sends: Mapped[str] = mapped_column(Text, default="[]")
    day: Mapped[date] = mapped_column(Date)
    day_count: Mapped[int] = mapped_column(Integer)
    offset_ms: Mapped[int | None] = mapped_column(BigInteger)  # lower bound of (bank's clock - ours), ms
    offset_at_ms: Mapped[int | None] = mapped_column(BigInteger)  # when it was measured (our clock, epoch ms)


class FormDraft(Base):
    """An agent's unfinished intake form for a (city, product): what was typed, SM4-encrypted as one JSON."""

    __tablename__ = "form_drafts"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    city_code: Mapped[str] = mapped_column(String(6))
    product: Mapped[str] = mapped_column(String(32))
    values_json: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginFailure(Base):
    """A failed login for a username from an address; enough recent ones lock that pair (every process sees it)."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_login_failures_who", "username", "ip", "failed_at"),)


class BankOpeningLimit(Base):
    """An admin's override of a bank's account-opening limits (the configured ones apply where none is set)."""

    __tablename__ = "bank_opening_limits"
    bank_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    per_second: Mapped[int] = mapped_column(Integer)
    per_day: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (CheckConstraint("per_second > 0 AND per_day >= per_second", name="limits_positive"),)


class ImportedContract(Base):
    """A stock rental contract brought in by `flask contracts import`: one per city and contract number,
    so that importing the same file again creates nothing twice."""

    __tablename__ = "imported_contracts"
    id: Mapped[int] = mapped_column(primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6))
    contract_no: Mapped[str] = mapped_column(EncryptedString)
    # its blind index: one import per city and contract number (the number itself is encrypted)
    contract_bidx: Mapped[str | None] = mapped_column(String(64), info=blind_index_column_info("contract_no", "cert"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"), unique=True)
    source_name: Mapped[str] = mapped_column(String(256))  # the file it came from
    row_no: Mapped[int] = mapped_column(Integer)  # its row in that file (header = 1)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("city_code", "contract_bidx"),)


install_blind_indexes(ImportedContract)
