"""Chaining the audit log (issue 21): the entries written unchained (the tail, `app.audit.log`) get their place in
the chain, in batches, by the workers' maintenance (and before each checkpoint): `seq` continuing the chain
without gaps, `prev_hash`, `hash` = SM3(previous hash + canonical content) and `mac` = HMAC-SM3 of the hash.

One chainer at a time (PostgreSQL: a *tried* advisory lock - a second worker skips its turn; SQLite: the write
lock). Writers never wait for it: they only insert, it only fills the chain columns of committed rows. An entry
whose tail MAC does not verify (forged or altered in the database) is never chained, so the chain never vouches
for it; it stays in the tail, where `flask audit verify` reports it. Entries are chained in the order they were
written (row id), which keeps each writer's counters in order along the chain."""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from typing import NamedTuple

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from app.audit.mac_key import mac_key
from app.db.audit_models import AuditEntry
from app.domain.audit import GENESIS, EntryContent, chain_hash, entry_mac, tail_mac
from app.platform.runtime import Runtime

log = logging.getLogger("cunguan.audit")

CHAIN_LOCK_KEY = 0x41554449  # "AUDI": one chainer at a time
BATCH = 2_000
_TABLE = AuditEntry.__table__
_FILL = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in ("seq", "prev_hash", "hash", "mac")})
)


def content_of(entry: AuditEntry) -> EntryContent:
    """The entry's content; `id` is its place in the chain (0 while unchained)."""
    return EntryContent(
        entry.seq or 0,
        entry.at,
        entry.actor,
        entry.action,
        entry.subject,
        entry.before,
        entry.after,
        entry.detail,
        entry.writer,
        entry.writer_seq,
    )


class ChainPass(NamedTuple):
    chained: int  # entries given their place in the chain
    read: int  # unchained entries read (one with a wrong tail MAC is read and left unchained)
    last_id: int  # the last row read: the next pass starts after it


def chain_pending(session: Session, limit: int = BATCH, after_id: int = 0) -> ChainPass:
    """Chain up to `limit` committed unchained entries after row `after_id` in the session's transaction. Nothing
    when another chainer holds the lock (PostgreSQL)."""
    key = mac_key.key()
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql and not session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY}):
        return ChainPass(0, 0, after_id)
    pending = select(AuditEntry).where(AuditEntry.seq.is_(None), AuditEntry.id > after_id)
    rows = list(session.scalars(pending.order_by(AuditEntry.id).limit(limit)))
    if not rows:
        return ChainPass(0, 0, after_id)
    head = select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.is_not(None))
    last = session.execute(head.order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev_hash = (0, GENESIS) if last is None else (int(last.seq), str(last.hash))
    fills = []
    for row in rows:
        content = content_of(row)
        if not hmac.compare_digest(row.tail_mac or "", tail_mac(key, content)):
            log.error("audit entry with a wrong tail MAC left unchained", extra={"row_id": row.id})
            continue
        seq += 1
        entry_hash = chain_hash(prev_hash, replace(content, id=seq))
        fills.append(
            {"row_id": row.id, "new_seq": seq, "new_prev_hash": prev_hash, "new_hash": entry_hash}
            | {"new_mac": entry_mac(key, entry_hash)}
        )
        prev_hash = entry_hash
    if fills:
        session.execute(_FILL, fills)
    return ChainPass(len(fills), len(rows), rows[-1].id)


def chain(rt: Runtime) -> int:
    """The workers' round (and before each checkpoint): chain everything committed so far, batch after batch;
    entries with a wrong tail MAC are passed over (logged), never block the ones after them."""
    total, after_id = 0, 0
    while True:
        with rt.db.uow() as uow:
            done = chain_pending(uow.session, BATCH, after_id)
            uow.commit()
        total += done.chained
        after_id = done.last_id
        if done.read < BATCH:
            break
    if total:
        log.info("audit entries chained", extra={"chained": total})
    return total
