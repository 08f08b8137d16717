"""The audit log: record an entry in the caller's transaction, chained to the previous one and MACed with a key
the database does not hold; verify the whole chain, its MACs and the signed checkpoints of its head.

An entry is written when its transaction commits (a session hook), not when it is recorded: the chain's lock
(PostgreSQL: an advisory transaction lock; SQLite: the write lock every transaction takes) is then held only
from that last flush to the commit, never across a long batch such as the bank inbox's. A rollback, a
savepoint's included, drops the entries recorded inside it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, SessionTransaction

from app.audit.checkpoints import read_checkpoints
from app.audit.mac_key import mac_key
from app.db.audit_models import AuditEntry
from app.domain.audit import (
    GENESIS,
    ChainBreak,
    EntryContent,
    StoredEntry,
    chain_hash,
    check_against_checkpoints,
    entry_mac,
    verify_chain,
)
from app.platform.runtime import Runtime

CHAIN_LOCK_KEY = 0x41554449  # "AUDI": one appender at a time, released at commit
PENDING = "cunguan.audit.pending"


@dataclass(frozen=True)
class _Pending:
    transaction: SessionTransaction | None  # the innermost transaction it was recorded in
    at: datetime
    actor: str
    action: str
    subject: str
    before: Any
    after: Any
    detail: dict[str, Any]


def _snapshot(value: Any) -> Any:
    """A JSON copy: what the entry will say, fixed now (the caller may change its dicts later), and a value
    that cannot be stored fails here rather than at commit."""
    return None if value is None else json.loads(json.dumps(value, ensure_ascii=False))


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
) -> None:
    """Record the next entry in the caller's transaction: it is written (numbered, chained, MACed) when that
    transaction commits, together with the change it records, and never without it. Refuses at once when the
    MAC key is missing."""
    mac_key.key()
    transaction = session.get_nested_transaction() or session.get_transaction()
    entry = _Pending(transaction, at, actor, action, subject, _snapshot(before), _snapshot(after), _snapshot(detail))
    session.info.setdefault(PENDING, []).append(entry)


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    if session.get_nested_transaction() is not None:  # a savepoint's commit: its entries wait for the root's
        return
    pending: list[_Pending] = session.info.pop(PENDING, [])
    if pending:
        _write(session, pending)


def _write(session: Session, pending: list[_Pending]) -> None:
    key = mac_key.key()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    last = session.execute(select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()
    next_id, prev_hash = (1, GENESIS) if last is None else (last.id + 1, last.hash)
    for item in pending:
        content = EntryContent(
            next_id, item.at, item.actor, item.action, item.subject, item.before, item.after, item.detail or {}
        )
        entry_hash = chain_hash(prev_hash, content)
        session.add(
            AuditEntry(
                id=content.id,
                at=content.at,
                actor=content.actor,
                action=content.action,
                subject=content.subject,
                before=content.before,
                after=content.after,
                detail=content.detail,
                prev_hash=prev_hash,
                hash=entry_hash,
                mac=entry_mac(key, entry_hash),
            )
        )
        next_id, prev_hash = next_id + 1, entry_hash
    session.flush()


def _inside(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: list[_Pending] | None = session.info.get(PENDING)
    if not pending:
        return
    if previous_transaction.parent is None:
        session.info.pop(PENDING, None)
        return
    session.info[PENDING] = [item for item in pending if not _inside(item.transaction, previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _forget_after_transaction(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(PENDING, None)


def stored_entry(entry: AuditEntry) -> StoredEntry:
    content = EntryContent(
        entry.id, entry.at, entry.actor, entry.action, entry.subject, entry.before, entry.after, entry.detail
    )
    return StoredEntry(content, entry.prev_hash, entry.hash, entry.mac)


def verify(rt: Runtime) -> tuple[int, list[ChainBreak]]:
    """(entries checked, breaks): hashes, MACs, and the chain against every signed checkpoint (it must reach
    each with the same hash). An empty list means the log is whole. ConfigError without the MAC key."""
    key = mac_key.key()
    checkpoints, breaks = read_checkpoints(rt)
    wanted = {point.seq for point in checkpoints}
    with rt.db.uow() as uow:
        rows = uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000))
        head, chain_breaks = verify_chain((stored_entry(row) for row in rows), key, wanted.__contains__)
    return head.count, [*breaks, *chain_breaks, *check_against_checkpoints(head, checkpoints)]
