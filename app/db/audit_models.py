"""The audit log table: append-only (database triggers), written unchained and MACed, hash-chained by a worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Index,
    Integer,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import text

from app.db import append_only
from app.db.base import Base, UTCDateTime


class AuditEntry(Base):
    """Written in the audited change's transaction *unchained* (the tail: `seq`, `prev_hash`, `hash`, `mac` empty),
    with its writer, the writer's counter and `tail_mac` = HMAC-SM3 of that; a worker chains it later
    (`app.audit.chain`): `seq` 1, 2, 3… without gaps, `hash` = SM3(previous hash + canonical content),
    `mac` = HMAC-SM3 of the hash. The key is kept out of the database (app.audit.mac_key). The triggers allow
    exactly that one update, once, of an unchained row, and nothing else. Entries older than migration 0049
    were chained when written: `seq` = `id`, no writer."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the order rows were written in (with gaps)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the chain, filled by the worker: place (1, 2, 3… without gaps), previous hash, hash, MAC of the hash
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    hash: Mapped[str | None] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)  # HMAC-SM3(audit-mac.key, hash)
    # written with the entry: who wrote it (one writer per thread) and its counter, MACed with the content
    writer: Mapped[str | None] = mapped_column(String(48))
    writer_seq: Mapped[int | None] = mapped_column(Integer)
    tail_mac: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("writer", "writer_seq"),
        Index("ix_audit_log_unchained", "id", postgresql_where=text("seq IS NULL"), sqlite_where=text("seq IS NULL")),
    )


@event.listens_for(AuditEntry.__table__, "after_create")
def _make_audit_log_append_only(table: Any, connection: Any, **_: Any) -> None:
    """Tables made by create_all (tests) get the same triggers as migration 0005 installs."""
    for statement in append_only.statements(connection.dialect.name, chaining=True):
        connection.exec_driver_sql(statement)


@event.listens_for(AuditEntry.__table__, "after_drop")
def _drop_append_only_function(table: Any, connection: Any, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS audit_log_append_only()")
