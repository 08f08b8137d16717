"""Bank callbacks: replay protection, the raw inbox, and idempotent processing by notification type."""

from __future__ import annotations

import json
import logging
import os
import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from sqlalchemy import Select, bindparam, delete, exists, func, literal, select, text, union_all, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, defer, joinedload
from sqlalchemy.orm.exc import StaleDataError

from app.bank_inbox import suspense
from app.banks.protocol import ReplayedNonce
from app.db.base import UTCDateTime
from app.db.models import BankNotification, Deal, Payout, SeenNonce, VirtualAccount
from app.db.pii import encrypted_columns
from app.db.upsert import insert_if_absent
from app.deals import case_blocks
from app.deals.workflow import DealContext, fire_or_note, has_ended
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.ledger.engine import ConcurrentPosting
from app.ledger.repo import LedgerRepository
from app.payouts import results as payout_results
from app.payouts.status import PayoutStatus
from app.platform.errors import ConfigError, CunguanError, ValidationError
from app.platform.runtime import Runtime

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "bank-notification.schema.json"
NONCE_RETENTION_S = 3600  # far beyond the ±300 s timestamp window: an older nonce can never be fresh again
INBOX = BankNotification.__table__
_DUE = INBOX.c.processed_at.is_(None) & INBOX.c.outcome.is_(None)  # stored, waiting for a processor
_MARK_PROCESSED = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("inbox_id"))
    .values(processed_at=bindparam("processed_at"), outcome=bindparam("outcome"))
)

log = logging.getLogger("cunguan.bank_callbacks")


def _strict_validator_class() -> type[Draft202012Validator]:
    # JSON Schema counts 5.0 as an integer; money and counts here must be true integers.
    strict_types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=strict_types)


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    return _strict_validator_class()(_schema())


@cache
def _fast_validator() -> jsonschema_rs.Draft202012Validator:
    """The same schema compiled by jsonschema-rs (Rust): about 200 times faster than the pure-Python check,
    which costs a callback more than its database write. It accepts; reporting errors stays with
    `jsonschema`, whose messages we send back."""
    return jsonschema_rs.Draft202012Validator(_schema())


def _no_floats(raw_body: bytes) -> dict[str, Any] | None:
    """The body parsed, or None when it holds a JSON number with a fraction or exponent. The protocol has
    no such field, and JSON Schema counts 5.0 as an integer: a body with one takes the strict path."""
    floats: list[str] = []
    body = json.loads(raw_body, parse_float=lambda text: floats.append(text) or float(text))
    return None if floats else body


def parse_notification(raw_body: bytes) -> dict[str, Any]:
    """The JSON body checked against the notification schema; ValidationError (MALFORMED) otherwise."""
    try:
        body = _no_floats(raw_body)
        if body is not None and _fast_validator().is_valid(body):
            return body
        body = json.loads(raw_body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValidationError("通知内容不是合法的 JSON", code="MALFORMED", details=[str(error)]) from error
    errors = [
        {"pointer": "/" + "/".join(str(p) for p in e.absolute_path), "message": e.message}
        for e in _validator().iter_errors(body)
    ]
    if errors:
        raise ValidationError("通知内容不符合协议", code="MALFORMED", details=errors)
    return body


def prune_nonces(rt: Runtime) -> int:
    """Forget nonces older than the retention (run by the workers' maintenance); returns how many."""
    with rt.db.uow() as uow:
        cutoff = rt.clock() - timedelta(seconds=NONCE_RETENTION_S)
        pruned = uow.session.execute(delete(SeenNonce).where(SeenNonce.seen_at < cutoff)).rowcount
        uow.commit()
    return int(pruned or 0)


def receive(rt: Runtime, bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str) -> str:
    """One transaction: remember the nonce, keep the raw notification, process it once. Returns "OK" or
    "DUPLICATE"; raises ReplayedNonce for a nonce seen before.

    If processing fails, its writes are rolled back but the nonce and the raw body are still committed (the
    notification is kept for review and processed when the bank resends it), then the error is raised.
    If the process dies instead, nothing is committed and the bank, which got no 200, resends.
    (The happy path needs no savepoint: on failure the whole transaction is rolled back and the nonce and
    raw body are stored again in a short one of their own.)"""
    now = rt.clock()
    with rt.db.uow() as uow:
        session = uow.session
        stored = store_raw(session, bank_code, raw_body, body, nonce, now)
        if stored.processed:
            uow.commit()
            return "DUPLICATE"
        try:
            outcome = _HANDLERS[body["type"]](rt, session, bank_code, body)
            _mark_processed(session, stored.inbox_id, outcome, rt.clock())
            uow.commit()
        except Exception as error:
            session.rollback()
            _keep_raw_after_failure(session, bank_code, raw_body, body, nonce, now, error)
            uow.commit()
            raise
    # the same money under a new notification id: the bank must stop resending it all the same
    return "DUPLICATE" if outcome == "duplicate_bank_reference" else "OK"


@dataclass(frozen=True)
class StoredNotification:
    """The inbox row of a verified notification: its id, whether this delivery created it, and whether it
    was processed before (a resend of a notification we already acted on)."""

    inbox_id: int
    created: bool
    processed: bool
    outcome: str | None


# PostgreSQL: the nonce and the raw notification in one round trip. The inbox row is inserted only when
# the nonce is new; an inbox row that already exists (a resend) is left as it was.
_STORE_PG = text(
    "WITH nonce AS ("
    " INSERT INTO seen_nonces (sender, nonce, seen_at) VALUES (:sender, :nonce, :now)"
    " ON CONFLICT DO NOTHING RETURNING 1 AS fresh"
    "), inbox AS ("
    " INSERT INTO bank_notifications (bank_code, notification_id, type, raw_body, received_at, partition_no)"
    " SELECT :bank_code, :notification_id, :type, :raw_body, :now, :partition_no FROM nonce"
    " ON CONFLICT DO NOTHING RETURNING id"
    ") SELECT EXISTS (SELECT 1 FROM nonce) AS fresh_nonce, (SELECT id FROM inbox) AS inbox_id"
).bindparams(bindparam("now", type_=UTCDateTime()))


def store_raw(
    session: Session, bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str, now: datetime
) -> StoredNotification:
    """Remember the nonce (ReplayedNonce if it was seen before) and store the notification raw unless its
    inbox row exists; an existing row is locked (a concurrent resend waits for this transaction)."""
    values = _store_values(bank_code, raw_body, body, nonce, now)
    if session.get_bind().dialect.name == "postgresql":
        fresh_nonce, inbox_id = session.execute(_STORE_PG, values).one()
    else:
        fresh_nonce = insert_if_absent(
            session, SeenNonce.__table__, {"sender": values["sender"], "nonce": nonce, "seen_at": now}
        )
        inbox_id = None
        if fresh_nonce and insert_if_absent(
            session,
            INBOX,
            {k: values[k] for k in ("bank_code", "notification_id", "type", "raw_body", "partition_no")}
            | {"received_at": now},
        ):
            inbox_id = session.scalar(
                select(INBOX.c.id).where(
                    INBOX.c.bank_code == bank_code, INBOX.c.notification_id == body["notification_id"]
                )
            )
    if not fresh_nonce:
        raise ReplayedNonce("该随机数已使用过（疑似重放）", details={"nonce": nonce})
    if inbox_id is not None:
        return StoredNotification(inbox_id, created=True, processed=False, outcome=None)
    row = session.execute(
        select(INBOX.c.id, INBOX.c.processed_at, INBOX.c.outcome)
        .where(INBOX.c.bank_code == bank_code, INBOX.c.notification_id == body["notification_id"])
        .with_for_update()
    ).one()
    return StoredNotification(row.id, created=False, processed=row.processed_at is not None, outcome=row.outcome)


def _store_values(bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str, now: datetime) -> dict[str, Any]:
    return {
        "partition_no": inbox_partition(body),
        "sender": _actor(bank_code),
        "nonce": nonce,
        "now": now,
        "bank_code": bank_code,
        "notification_id": body["notification_id"],
        "type": body["type"],
        "raw_body": raw_body.decode("utf-8"),
    }


def _mark_processed(session: Session, inbox_id: int, outcome: str, at: datetime) -> None:
    session.flush()  # the handler's ORM changes go first, as they did when the row was an ORM object
    session.execute(_MARK_PROCESSED, {"inbox_id": inbox_id, "outcome": outcome, "processed_at": at})


def _keep_raw_after_failure(
    session: Session,
    bank_code: str,
    raw_body: bytes,
    body: dict[str, Any],
    nonce: str,
    now: datetime,
    error: Exception,
) -> None:
    """After a failed processing was rolled back: store the nonce and the raw body on their own."""
    try:
        store_raw(session, bank_code, raw_body, body, nonce, now)
    except Exception:  # the database is gone too: the bank got no 200 and resends; report the first error
        session.rollback()
        log.warning("callback not kept after a failure", extra={"bank": bank_code, "error": str(error)[:200]})


# --- acknowledged inbox (CUNGUAN_CALLBACK_PROCESSING=inbox) ----------------------------------------------
# The endpoint stores the nonce and the raw notification in one short transaction and answers 200: the
# bank's obligation to resend ends once we hold the notification durably. Workers (`flask worker`) then
# process unprocessed inbox rows in batches, oldest first, through the same handlers as inline processing.
# A row is marked processed in the transaction that applies it, so a worker that dies mid-batch leaves the
# whole batch unprocessed for the next worker, and processing twice is impossible.

INLINE, INBOX_MODE = "inline", "inbox"
PROCESSING_MODES = (INLINE, INBOX_MODE)
FAILED_PREFIX = "failed:"  # outcome of a row whose processing failed: kept for review, not retried blindly
INBOX_BATCH_SIZE = 100
INBOX_LOCK = "bank_inbox"  # with the partition: one processor per partition at a time
INBOX_PARTITIONS = 8


def processing_mode() -> str:
    """`inline` (default: the 200 means stored and processed) or `inbox` (the 200 means stored; workers
    process), from CUNGUAN_CALLBACK_PROCESSING. Read on each call, so web and worker see the same setting."""
    mode = os.environ.get("CUNGUAN_CALLBACK_PROCESSING", INLINE).strip().lower() or INLINE
    if mode not in PROCESSING_MODES:
        raise ConfigError(
            "CUNGUAN_CALLBACK_PROCESSING 只能是 inline 或 inbox", code="BAD_SETTING", details={"value": mode}
        )
    return mode


def acknowledge(rt: Runtime, bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str) -> str:
    """Inbox mode: remember the nonce and store the notification raw; nothing is processed here. Returns
    "OK", or "DUPLICATE" when this notification was processed before; raises ReplayedNonce. A resend of a
    notification whose processing failed makes it due again (as a resend retries it inline).

    On PostgreSQL a new notification costs one autocommitted statement (nonce and inbox row together,
    atomic and durable when it returns); a resend costs one more."""
    now = rt.clock()
    if rt.db.engine.dialect.name != "postgresql":
        with rt.db.uow() as uow:
            stored = store_raw(uow.session, bank_code, raw_body, body, nonce, now)
            if stored.outcome is not None and stored.outcome.startswith(FAILED_PREFIX):
                uow.session.execute(update(INBOX).where(INBOX.c.id == stored.inbox_id).values(outcome=None))
            uow.commit()
        return "DUPLICATE" if stored.processed else "OK"
    with rt.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        fresh_nonce, inbox_id = connection.execute(
            _STORE_PG, _store_values(bank_code, raw_body, body, nonce, now)
        ).one()
        if not fresh_nonce:
            raise ReplayedNonce("该随机数已使用过（疑似重放）", details={"nonce": nonce})
        if inbox_id is not None:
            return "OK"
        processed_at = connection.scalar(
            _MAKE_DUE_AGAIN_PG, {"bank_code": bank_code, "notification_id": body["notification_id"]}
        )
    return "OK" if processed_at is None else "DUPLICATE"


# A resend: a row whose processing failed is due again; returns processed_at (waits for a processor that
# holds the row, so a notification being processed right now is answered after it commits).
_MAKE_DUE_AGAIN_PG = text(
    "UPDATE bank_notifications SET outcome = CASE WHEN outcome LIKE 'failed:%' THEN NULL ELSE outcome END"
    " WHERE bank_code = :bank_code AND notification_id = :notification_id RETURNING processed_at"
)


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
            outcomes = [_apply_row(rt, uow.session, row) for row in rows]
            uow.session.flush()  # the handlers' ORM changes first, then every row marked in one statement
            if outcomes:
                uow.session.execute(_MARK_PROCESSED, outcomes)
            uow.commit()
            return InboxBatch(len(rows), 0, interrupted=False)
        except Exception:  # the careful pass below finds, marks and logs the failing row
            uow.session.rollback()
    return _process_isolated(rt, batch_size, [partition])


def inbox_partition(body: dict[str, Any]) -> int:
    """The inbox partition of a notification: by its account (an opening, an arrival) or its payout, so
    that what concerns one account or one payout is processed by one processor, in order."""
    subject = body.get("account_no") or body.get("payout_id") or body["notification_id"]
    return zlib.crc32(subject.encode()) % INBOX_PARTITIONS


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
                .where(_DUE, INBOX.c.partition_no == partition)
                .order_by(INBOX.c.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        if rows:
            return partition, rows
    return partitions[0], []


def _has_due(partition: int) -> Select[tuple[int]]:
    return select(literal(partition)).where(exists().where(_DUE, INBOX.c.partition_no == partition))


def _apply_row(rt: Runtime, session: Session, row: Any) -> dict[str, Any]:
    """Process one inbox row; returns the parameters that mark it processed."""
    body = json.loads(row.raw_body)
    outcome = _HANDLERS[body["type"]](rt, session, row.bank_code, body)
    return {"inbox_id": row.id, "outcome": outcome, "processed_at": rt.clock()}


def _process_row(rt: Runtime, session: Session, row: Any) -> None:
    marked = _apply_row(rt, session, row)
    _mark_processed(session, marked["inbox_id"], marked["outcome"], marked["processed_at"])


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


@dataclass(frozen=True)
class InboxBacklog:
    due: int  # stored, not yet processed
    failed: int  # processing failed: waiting for review or a resend
    oldest_due_at: datetime | None


def inbox_backlog(rt: Runtime) -> InboxBacklog:
    """The inbox's backlog, for the admin and metrics."""
    with rt.db.uow() as uow:
        due, oldest = uow.session.execute(select(func.count(), func.min(INBOX.c.received_at)).where(_DUE)).one()
        failed = uow.session.scalar(
            select(func.count()).where(INBOX.c.processed_at.is_(None), INBOX.c.outcome.startswith(FAILED_PREFIX))
        )
    return InboxBacklog(int(due or 0), int(failed or 0), oldest)


def _actor(bank_code: str) -> str:
    return f"bank:{bank_code}"


def _account_opened(
    rt: Runtime, session: Session, bank_code: str, body: dict[str, Any], marker: str | None = None
) -> str:
    account = session.scalar(
        select(VirtualAccount).where(
            VirtualAccount.bank_code == bank_code, VirtualAccount.request_id == body["request_id"]
        )
    )
    if account is None:
        return "unknown_request"
    if account.status == "opened":
        return "already_opened"
    ctx = DealContext(rt, session, account.deal, _actor(bank_code), {"account_no": body["account_no"]})
    detail = {"account_no": body["account_no"]} | ({"marker": marker} if marker else {})
    result = fire_or_note(ctx, "account_opened", detail)
    if account.account_no is not None:  # money that arrived before this notice is the deal's now
        suspense.rematch_after_opening(rt, session, account, _actor(bank_code))
    return result


def _funds_arrived(
    rt: Runtime, session: Session, bank_code: str, body: dict[str, Any], marker: str | None = None
) -> str:
    account = session.scalar(
        select(VirtualAccount)
        # the deal in the same round trip (it is used below), without its personal data: decrypting that
        # costs more than the rest of the load, and a step that needs it loads it
        .options(joinedload(VirtualAccount.deal).options(*(defer(c) for c in encrypted_columns(Deal))))
        .where(VirtualAccount.bank_code == bank_code, VirtualAccount.account_no == body["account_no"])
    )
    if account is None:
        return suspense.receive(rt, session, bank_code, body, None, _actor(bank_code))
    deal: Deal = account.deal
    if has_ended(rt, deal):  # the money is nobody's but its payer's
        return suspense.receive(rt, session, bank_code, body, account, _actor(bank_code), deal_closed=True)
    if account.designated_payer and body.get("designated_payer_matched") is False:
        return suspense.receive(rt, session, bank_code, body, account, _actor(bank_code))
    clearing, custody = ledger.bank_clearing(bank_code), ledger.deal_custody(deal.deal_no)
    _, created = LedgerRepository(session).post(
        TransferSpec(
            id=f"arrival:{bank_code}:{body['bank_reference']}",
            debit_code=clearing.code,
            credit_code=custody.code,
            amount_fen=body["amount_fen"],
            code="arrival",
            deal_id=deal.id,
        ),
        at=rt.clock(),
        ensure=[(clearing, None), (custody, deal.id)],
    )
    if not created:
        return "duplicate_bank_reference"
    detail = {"amount_fen": body["amount_fen"], "bank_reference": body["bank_reference"]}
    if marker:
        detail["marker"] = marker
    origin = {
        "payer_account": body["payer_account"],
        "payer_name": body["payer_name"],
        "amount_fen": body["amount_fen"],
    }
    ctx = DealContext(rt, session, deal, _actor(bank_code), origin)
    return fire_or_note(ctx, case_blocks.arrival_event(rt, deal), detail)


def _payout_result(rt: Runtime, session: Session, bank_code: str, body: dict[str, Any]) -> str:
    payout = session.scalar(
        select(Payout).where(Payout.bank_code == bank_code, Payout.payout_id == body["payout_id"]).with_for_update()
    )
    if payout is None:
        return "unknown_payout"
    return payout_results.apply_result(
        rt, session, payout, body["status"], body["bank_reference"], body.get("failure_reason"), _actor(bank_code)
    )


_HANDLERS = {
    "account_opened": _account_opened,
    "funds_arrived": _funds_arrived,
    "payout_result": _payout_result,
}


REPAIR_MARKER = "补单"


def repair_account_opened(rt: Runtime, session: Session, bank_code: str, body: dict[str, Any]) -> str:
    """补单: an account the bank says is open (asked by query) whose `account_opened` never came, processed as
    that notification would have been (`body` is what the bank would have sent)."""
    return _account_opened(rt, session, bank_code, body, marker=REPAIR_MARKER)


def repair_funds_arrived(rt: Runtime, session: Session, bank_code: str, body: dict[str, Any]) -> str:
    """补单: an arrival on the bank's statement whose notification never came, processed exactly as that
    notification would have been (`body` is what the bank would have sent); the timeline entry says 补单."""
    return _funds_arrived(rt, session, bank_code, body, marker=REPAIR_MARKER)


def repair_payout_succeeded(rt: Runtime, session: Session, payout: Payout, bank_reference: str) -> str:
    """补单: a payout the bank's statement shows as paid whose `payout_result` never came."""
    actor = _actor(payout.bank_code)
    return payout_results.apply_result(
        rt, session, payout, PayoutStatus.SUCCEEDED, bank_reference, None, actor, marker=REPAIR_MARKER
    )
