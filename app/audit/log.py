"""The audit log: append an entry chained to the previous one; verify the whole chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db.audit_models import AuditEntry
from app.domain.audit import GENESIS, ChainBreak, EntryContent, StoredEntry, chain_hash, verify_chain
from app.platform.runtime import Runtime

_PG_LOCK_KEY = 0x41554449  # "AUDI": one appender at a time, released at commit


def append(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add the next entry in the caller's transaction (it commits with the change it records).

    Appenders are serialised (SQLite: the write lock every transaction takes; PostgreSQL: an advisory
    transaction lock), and the unique `prev_hash` refuses a fork should that ever fail."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    last = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
    content = EntryContent(
        id=1 if last is None else last.id + 1,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        before=before,
        after=after,
        detail=detail or {},
    )
    prev_hash = GENESIS if last is None else last.hash
    entry = AuditEntry(
        id=content.id,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        before=before,
        after=after,
        detail=content.detail,
        prev_hash=prev_hash,
        hash=chain_hash(prev_hash, content),
    )
    session.add(entry)
    session.flush()
    return entry


def _stored(entry: AuditEntry) -> StoredEntry:
    content = EntryContent(
        entry.id, entry.at, entry.actor, entry.action, entry.subject, entry.before, entry.after, entry.detail
    )
    return StoredEntry(content, entry.prev_hash, entry.hash)


def verify(rt: Runtime) -> tuple[int, list[ChainBreak]]:
    """(entries checked, breaks): an empty list means the chain is whole."""
    with rt.db.uow() as uow:
        rows = uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000))
        return verify_chain(_stored(row) for row in rows)
