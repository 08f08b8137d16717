"""The audit log: record an entry in the caller's transaction, MACed with a key the database does not hold;
verify the whole log: the chain, its MACs, the signed checkpoints of its head, and the entries not chained yet.

An entry is written when its transaction commits (a session hook), *unchained*: no lock is shared by two
writers (issue 21; a chain lock per commit serialised every audited request). It carries its writer (one per
thread, `_Writer`) and that writer's counter 1, 2, 3…, and a MAC of all of it (`domain.audit.tail_mac`). A worker
chains the committed entries in batches (`app.audit.chain`). A rollback, a savepoint's included, drops the
entries recorded inside it; a commit that fails after the counters were given out retires the writer (the next
transaction of the thread starts a new one), so a counter is never reused and a rollback never leaves a gap."""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.orm import Session, SessionTransaction

from app.audit.chain import content_of
from app.audit.checkpoints import read_checkpoints
from app.audit.mac_key import mac_key
from app.db.audit_models import AuditEntry
from app.db.write_batch import inserting, write_many
from app.domain.audit import (
    ChainBreak,
    EntryContent,
    StoredEntry,
    TailEntry,
    check_against_checkpoints,
    tail_mac,
    verify_chain,
    verify_tail,
)
from app.platform.runtime import Runtime

INSERT_ENTRY = inserting(
    AuditEntry.__table__,
    ["at", "actor", "action", "subject", "before", "after", "detail", "writer", "writer_seq", "tail_mac"],
)
PENDING = "cunguan.audit.pending"
WRITTEN = "cunguan.audit.written"  # the writer whose counters this transaction used, until it commits


class _Writer:
    """One thread's writer on one database: a name no other thread or process has, and its next counter."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.pid = os.getpid()
        self.name = f"{socket.gethostname()[:16]}:{self.pid}:{secrets.token_hex(6)}"
        self.next = 1

    def take(self, count: int) -> tuple[str, int]:
        """(name, first counter) for `count` entries; a forked child gets a writer of its own."""
        if self.pid != os.getpid():
            self.renew()
        first, self.next = self.next, self.next + count
        return self.name, first


class _Writers(threading.local):
    """This thread's writer for each database (engine) it writes to."""

    def __init__(self) -> None:
        self.by_engine: weakref.WeakKeyDictionary[Engine, _Writer] = weakref.WeakKeyDictionary()

    def of(self, session: Session) -> _Writer:
        bind = session.get_bind()
        engine = bind.engine if isinstance(bind, Connection) else bind
        writer = self.by_engine.get(engine)
        if writer is None:
            writer = self.by_engine[engine] = _Writer()
        return writer


_writers = _Writers()


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
    writer = _writers.of(session)
    name, first = writer.take(len(pending))
    session.info[WRITTEN] = writer
    rows = []
    for number, item in enumerate(pending):
        detail = item.detail or {}
        content = EntryContent(
            0, item.at, item.actor, item.action, item.subject, item.before, item.after, detail, name, first + number
        )
        rows.append(
            {
                "at": content.at,
                "actor": content.actor,
                "action": content.action,
                "subject": content.subject,
                "before": content.before,
                "after": content.after,
                "detail": content.detail,
                "writer": name,
                "writer_seq": content.writer_seq,
                "tail_mac": tail_mac(key, content),
            }
        )
    write_many(session, INSERT_ENTRY, rows)  # one entry: with the commit's other plain writes (`write_batch`)


@event.listens_for(Session, "after_commit")
def _written(session: Session) -> None:
    session.info.pop(WRITTEN, None)


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
        writer: _Writer | None = session.info.pop(WRITTEN, None)
        if writer is not None:  # counters given out, the commit not done: they are never used again
            writer.renew()


def stored_entry(entry: AuditEntry) -> StoredEntry:
    return StoredEntry(content_of(entry), entry.prev_hash or "", entry.hash or "", entry.mac)


def verify(rt: Runtime) -> tuple[int, list[ChainBreak]]:
    """(entries checked, breaks): the chain's hashes and MACs, the chain against every signed checkpoint (it must
    reach each with the same hash), and every unchained entry's MAC and writer counter. An empty list means the
    log is whole. ConfigError without the MAC key."""
    key = mac_key.key()
    checkpoints, breaks = read_checkpoints(rt)
    wanted = {point.seq for point in checkpoints}
    with rt.db.uow() as uow:
        chained = uow.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.seq.is_not(None))
            .order_by(AuditEntry.seq)
            .execution_options(yield_per=1000)
        )
        head, chain_breaks = verify_chain((stored_entry(row) for row in chained), key, wanted.__contains__)
        tail = [
            TailEntry(row.id, content_of(row), row.tail_mac)
            for row in uow.session.scalars(select(AuditEntry).where(AuditEntry.seq.is_(None)))
        ]
    tail_breaks = verify_tail(tail, key, head.writers)
    return head.count + len(tail), [*breaks, *chain_breaks, *check_against_checkpoints(head, checkpoints), *tail_breaks]
