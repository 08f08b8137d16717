"""The bank inbox table: a verified notification's nonce remembered and its raw body stored (unique per bank
and notification id) before anything else, the mark that it was processed, its partition, the processing
mode, and the backlog. Nothing here processes a notification (`receive`, `inbox`, `handlers` do)."""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from app.bank_inbox.alerts import NOTIFICATION_CONFLICT, CallbackRefused, body_sm3
from app.banks.protocol import ReplayedNonce
from app.db.base import UTCDateTime
from app.db.models import BankNotification, SeenNonce
from app.db.pii import EncryptedText
from app.db.upsert import insert_if_absent
from app.db.write_batch import updating, write
from app.platform.errors import ConfigError
from app.platform.runtime import Runtime

NONCE_RETENTION_S = 3600  # far beyond the ±300 s timestamp window: an older nonce can never be fresh again
INBOX = BankNotification.__table__
DUE = INBOX.c.processed_at.is_(None) & INBOX.c.outcome.is_(None)  # stored, waiting for a processor
MARK_PROCESSED = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("inbox_id"))
    .values(processed_at=bindparam("processed_at"), outcome=bindparam("outcome"))
)
MARK_ONE = updating(INBOX, "id", ["processed_at", "outcome"])
INLINE, INBOX_MODE = "inline", "inbox"
PROCESSING_MODES = (INLINE, INBOX_MODE)
FAILED_PREFIX = "failed:"  # outcome of a row whose processing failed: kept for review, not retried blindly
INBOX_PARTITIONS = 8
# the signature headers a notification came with (`SignedRequest.evidence()`): timestamp, nonce, signature (base64)
Signature = dict[str, str] | None


def bank_actor(bank_code: str) -> str:
    return f"bank:{bank_code}"


def prune_nonces(rt: Runtime) -> int:
    """Forget nonces older than the retention (run by the workers' maintenance); returns how many."""
    with rt.db.uow() as uow:
        cutoff = rt.clock() - timedelta(seconds=NONCE_RETENTION_S)
        pruned = uow.session.execute(delete(SeenNonce).where(SeenNonce.seen_at < cutoff)).rowcount
        uow.commit()
    return int(pruned or 0)


def processing_mode() -> str:
    """`inline` (default: the 200 means stored and processed) or `inbox` (the 200 means stored; workers
    process), from CUNGUAN_CALLBACK_PROCESSING. Read on each call, so web and worker see the same setting."""
    mode = os.environ.get("CUNGUAN_CALLBACK_PROCESSING", INLINE).strip().lower() or INLINE
    if mode not in PROCESSING_MODES:
        raise ConfigError(
            "CUNGUAN_CALLBACK_PROCESSING 只能是 inline 或 inbox", code="BAD_SETTING", details={"value": mode}
        )
    return mode


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
STORE_PG = text(
    "WITH nonce AS ("
    " INSERT INTO seen_nonces (sender, nonce, seen_at) VALUES (:sender, :nonce, :now)"
    " ON CONFLICT DO NOTHING RETURNING 1 AS fresh"
    "), inbox AS ("
    " INSERT INTO bank_notifications"
    " (bank_code, notification_id, type, raw_body, received_at, partition_no, body_sm3, account_no, signature,"
    " payout_id)"
    " SELECT :bank_code, :notification_id, :type, :raw_body, :now, :partition_no, :body_sm3, :account_no, :signature,"
    " :payout_id"
    " FROM nonce"
    " ON CONFLICT DO NOTHING RETURNING id"
    ") SELECT EXISTS (SELECT 1 FROM nonce) AS fresh_nonce, (SELECT id FROM inbox) AS inbox_id"
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("raw_body", type_=EncryptedText()),
    bindparam("signature", type_=JSON()),
)


def store_raw(
    session: Session,
    bank_code: str,
    raw_body: bytes,
    body: dict[str, Any],
    nonce: str,
    now: datetime,
    signature: Signature = None,
) -> StoredNotification:
    """Remember the nonce (ReplayedNonce if it was seen before) and store the notification raw, with the signature
    headers it came with, unless its inbox row exists; an existing row is locked (a concurrent resend waits for
    this transaction)."""
    values = store_values(bank_code, raw_body, body, nonce, now, signature)
    if session.get_bind().dialect.name == "postgresql":
        fresh_nonce, inbox_id = session.execute(STORE_PG, values).one()
    else:
        fresh_nonce = insert_if_absent(
            session, SeenNonce.__table__, {"sender": values["sender"], "nonce": nonce, "seen_at": now}
        )
        inbox_id = None
        if fresh_nonce and insert_if_absent(
            session, INBOX, inbox_row(bank_code, values["raw_body"], body, now, signature)
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
        select(INBOX.c.id, INBOX.c.processed_at, INBOX.c.outcome, INBOX.c.body_sm3, INBOX.c.raw_body)
        .where(INBOX.c.bank_code == bank_code, INBOX.c.notification_id == body["notification_id"])
        .with_for_update()
    ).one()
    check_same_body(bank_code, body, row.body_sm3, row.raw_body)
    return StoredNotification(row.id, created=False, processed=row.processed_at is not None, outcome=row.outcome)


def check_same_body(bank_code: str, body: dict[str, Any], stored_sm3: str | None, stored_raw: str) -> None:
    """A notification id the bank used before must come with the same body; otherwise CallbackRefused
    (CONFLICT). Rows stored before the hash existed are hashed from their raw body."""
    stored = stored_sm3 or body_sm3(json.loads(stored_raw))
    if stored != body_sm3(body):
        raise CallbackRefused(
            "同一通知编号的内容与此前不同，已拒收并留待人工核查",
            code="CONFLICT",
            kind=NOTIFICATION_CONFLICT,
            details={"bank": bank_code, "notification_id": body["notification_id"], "stored_sm3": stored},
        )


def inbox_row(
    bank_code: str, raw_body: str, body: dict[str, Any], now: datetime, signature: Signature = None
) -> dict[str, Any]:
    """A notification's inbox row (bank_notifications), as received, with its signature headers (`signature`; a
    repair has none); reconciliation's 补单 stores its repairs with the same builder, so they land in the same
    partition as the notification they stand for."""
    return {
        "bank_code": bank_code,
        "notification_id": body["notification_id"],
        "type": body["type"],
        "raw_body": raw_body,
        "received_at": now,
        "partition_no": inbox_partition(body),
        "body_sm3": body_sm3(body),
        "account_no": body.get("account_no"),
        "signature": signature,
        "payout_id": body.get("payout_id"),
    }


def store_values(
    bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str, now: datetime, signature: Signature = None
) -> dict[str, Any]:
    """STORE_PG's parameters: the nonce's and the inbox row's (`now` is both `seen_at` and `received_at`)."""
    row = inbox_row(bank_code, raw_body.decode("utf-8"), body, now, signature)
    return {**row, "sender": bank_actor(bank_code), "nonce": nonce, "now": now}


def mark_processed(session: Session, inbox_id: int, outcome: str, at: datetime) -> None:
    """The row marked processed in the transaction that processed it (with its other plain writes inline:
    `write_batch`)."""
    write(session, MARK_ONE, {"id": inbox_id, "processed_at": at, "outcome": outcome})


# A resend: a row whose processing failed is due again; returns processed_at (waits for a processor that
# holds the row, so a notification being processed right now is answered after it commits).
MAKE_DUE_AGAIN_PG = text(
    "UPDATE bank_notifications SET outcome = CASE WHEN outcome LIKE 'failed:%' THEN NULL ELSE outcome END"
    " WHERE bank_code = :bank_code AND notification_id = :notification_id RETURNING processed_at"
)


def inbox_partition(body: dict[str, Any]) -> int:
    """The inbox partition of a notification: by its account (an opening, an arrival) or its payout, so
    that what concerns one account or one payout is processed by one processor, in order."""
    subject = body.get("account_no") or body.get("payout_id") or body["notification_id"]
    return zlib.crc32(subject.encode()) % INBOX_PARTITIONS


@dataclass(frozen=True)
class InboxBacklog:
    due: int  # stored, not yet processed
    failed: int  # processing failed: waiting for review or a resend
    oldest_due_at: datetime | None


def inbox_backlog(rt: Runtime) -> InboxBacklog:
    """The inbox's backlog, for the admin and metrics."""
    with rt.db.uow() as uow:
        due, oldest = uow.session.execute(select(func.count(), func.min(INBOX.c.received_at)).where(DUE)).one()
        failed = uow.session.scalar(
            select(func.count()).where(INBOX.c.processed_at.is_(None), INBOX.c.outcome.startswith(FAILED_PREFIX))
        )
    return InboxBacklog(int(due or 0), int(failed or 0), oldest)
