"""The audit log table: append-only (database triggers) and hash-chained."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import append_only
from app.db.base import Base, UTCDateTime


class AuditEntry(Base):
    """Append-only (database triggers) and chained: `hash` = SM3(previous hash + this entry's canonical content);
    `mac` = HMAC-SM3 of the hash under a key kept out of the database (app.audit.mac_key)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 1, 2, 3… without gaps
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)  # HMAC-SM3(audit-mac.key, hash)


@event.listens_for(AuditEntry.__table__, "after_create")
def _make_audit_log_append_only(table: Any, connection: Any, **_: Any) -> None:
    """Tables made by create_all (tests) get the same triggers as migration 0005 installs."""
    for statement in append_only.statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


@event.listens_for(AuditEntry.__table__, "after_drop")
def _drop_append_only_function(table: Any, connection: Any, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS audit_log_append_only()")
