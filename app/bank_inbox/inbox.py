"""The acknowledged inbox's processors: due rows processed in partitioned batches by the workers, through
the same handlers as inline processing."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, literal, select, union_all, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.bank_inbox.alerts import CallbackRefused, add_alert
from app.bank_inbox.handlers import HANDLERS
from app.bank_inbox.store import DUE, FAILED_PREFIX, INBOX, INBOX_PARTITIONS, MARK_PROCESSED, mark_processed
from app.db.write_batch import batching
from app.ledger.engine import ConcurrentPosting
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime

INBOX_BATCH_SIZE = 100
INBOX_LOCK = "bank_inbox"  # with the partition: one processor per partition at a time

log = logging.getLogger("cunguan.bank_callbacks")


@dataclass(frozen=True)
class InboxBatch:
    """What one `process_inbox` call did: rows processed, rows whose processing failed (kept for review),
    and whether it stopped early on a transient error (a lost connection, a concurrent change)."""

    processed: int
    failed: int
    interrupted: bool


def process_inbox(rt: Runtime, batch_size: int = INBOX_BATCH_SIZE) -> InboxBatch:
    """Process up to `batch_size` due inbox rows of one partition, oldest first, in one transaction.

    One processor works on a partition at a time (see `_claim`), so processors on several machines share
    the inbox and each account's (or payout's) notifications are still processed in order of receipt; a
    processor that finds every partition with due rows taken returns an empty batch and its worker goes on
    with jobs. The batch first runs without savepoints (two round trips fewer per row); if any row fails,
    that attempt is rolled back whole and the batch runs again with a savepoint per row: a failing row
    then rolls back alone and is marked `failed:<code>`, and a transient error (a lost connection, a
    concurrent change) stops the batch there - what was processed before it commits, the rest is taken by
    the next call, in order."""
    assert batch_size > 0
    with rt.db.uow() as uow:
        partition, rows = _claim(uow.session, batch_size, _partitions_in_turn())
        try:
            with batching(uow.session):  # PostgreSQL: each row's timeline and origin in one statement
                outcomes = [_apply_row(rt, uow.session, row) for row in rows]
                if outcomes:  # every row marked in one statement
                    uow.session.execute(MARK_PROCESSED, outcomes)
                uow.commit()
            return InboxBatch(len(rows), 0, interrupted=False)
        except Exception:  # the careful pass below finds, marks and logs the failing row
            uow.session.rollback()
    return _process_isolated(rt, batch_size, [partition])


def _partitions_in_turn() -> list[int]:
    """Every partition, from a random one on: processors starting together spread over the partitions."""
    start = random.randrange(INBOX_PARTITIONS)
    return [(start + n) % INBOX_PARTITIONS for n in range(INBOX_PARTITIONS)]


def _claim(session: Session, batch_size: int, partitions: list[int]) -> tuple[int, list[Any]]:
    """The oldest due rows of the first of `partitions` that has some and that no other processor holds,
    locked, and that partition (PostgreSQL: a transaction advisory lock per partition, tried, not waited
    for; SQLite has one writer anyway). Which partitions have due rows is asked first, in one statement
    (an idle inbox costs one index probe per partition)."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    busy = set(session.scalars(union_all(*(_has_due(partition) for partition in partitions))))
    for partition in (p for p in partitions if p in busy):
        try_lock = select(func.pg_try_advisory_xact_lock(func.hashtext(INBOX_LOCK), partition))
        if postgresql and not session.scalar(try_lock):
            continue
        rows = list(
            session.execute(
                select(INBOX.c.id, INBOX.c.bank_code, INBOX.c.raw_body)
                .where(DUE, INBOX.c.partition_no == partition)
                .order_by(INBOX.c.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        if rows:
            return partition, rows
    return partitions[0], []


def _has_due(partition: int) -> Select[tuple[int]]:
    return select(literal(partition)).where(exists().where(DUE, INBOX.c.partition_no == partition))


def _apply_row(rt: Runtime, session: Session, row: Any) -> dict[str, Any]:
    """Process one inbox row; returns the parameters that mark it processed."""
    body = json.loads(row.raw_body)
    outcome = HANDLERS[body["type"]](rt, session, row.bank_code, body)
    return {"inbox_id": row.id, "outcome": outcome, "processed_at": rt.clock()}


def _process_row(rt: Runtime, session: Session, row: Any) -> None:
    marked = _apply_row(rt, session, row)
    mark_processed(session, marked["inbox_id"], marked["outcome"], marked["processed_at"])


def _process_isolated(rt: Runtime, batch_size: int, partitions: list[int]) -> InboxBatch:
    processed = failed = 0
    interrupted = False
    with rt.db.uow() as uow:
        session = uow.session
        for row in _claim(session, batch_size, partitions)[1]:
            try:
                with session.begin_nested():
                    _process_row(rt, session, row)
                processed += 1
            except (OperationalError, StaleDataError, ConcurrentPosting) as error:
                log.warning("inbox batch interrupted", extra={"inbox_id": row.id, "error": str(error)[:200]})
                interrupted = True
                break
            except Exception as error:  # a contradiction or a bug: this row waits for review or a resend
                code = error.code if isinstance(error, CunguanError) else type(error).__name__
                session.execute(update(INBOX).where(INBOX.c.id == row.id).values(outcome=(FAILED_PREFIX + code)[:64]))
                if isinstance(error, CallbackRefused):
                    add_alert(rt, session, row.bank_code, row.raw_body, json.loads(row.raw_body), error)
                log.warning("inbox row failed", extra={"inbox_id": row.id, "error": str(error)[:200]})
                failed += 1
        uow.commit()
    return InboxBatch(processed, failed, interrupted)


def drain_inbox(rt: Runtime, batch_size: int = INBOX_BATCH_SIZE, max_batches: int | None = None) -> int:
    """Process batches until the inbox has nothing due (or `max_batches` ran); returns rows processed."""
    total = batches = 0
    while max_batches is None or batches < max_batches:
        batch = process_inbox(rt, batch_size)
        batches += 1
        total += batch.processed
        if batch.interrupted or batch.processed + batch.failed == 0:
            break
    return total
