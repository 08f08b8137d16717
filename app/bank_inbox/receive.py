"""Receiving a verified bank notification at the endpoint: the body checked against the protocol's schema,
then either processed at once in the transaction that stores it (inline, the default) or only stored and
acknowledged for the workers (`CUNGUAN_CALLBACK_PROCESSING=inbox`, processed by `inbox`)."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError as JsonSchemaError
from jsonschema.exceptions import best_match
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.bank_inbox.alerts import CallbackRefused, add_alert, record_alert
from app.bank_inbox.handlers import HANDLERS
from app.bank_inbox.store import (
    FAILED_PREFIX,
    INBOX,
    MAKE_DUE_AGAIN_PG,
    STORE_PG,
    Signature,
    StoredNotification,
    check_same_body,
    mark_processed,
    store_raw,
    store_values,
)
from app.banks.protocol import ReplayedNonce
from app.db.contention import DATABASE_ERRORS, is_contention
from app.db.write_batch import batching
from app.platform.errors import Busy, ValidationError
from app.platform.runtime import Runtime

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "bank-notification.schema.json"

log = logging.getLogger("cunguan.bank_callbacks")
CONTENTION_ATTEMPTS = 5
CONTENTION_BACKOFF_S = 0.05


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


class DuplicateKey(ValueError):
    """A JSON object naming the same key twice (the standard parser would keep the last silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def _no_floats(raw_body: bytes) -> dict[str, Any] | None:
    """The body parsed, or None when it holds a JSON number with a fraction or exponent. The protocol has
    no such field, and JSON Schema counts 5.0 as an integer: a body with one takes the strict path."""
    floats: list[str] = []
    body = json.loads(
        raw_body,
        parse_float=lambda text: floats.append(text) or float(text),
        object_pairs_hook=_refuse_duplicates,
    )
    return None if floats else body


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _leaf_errors(error: JsonSchemaError) -> list[JsonSchemaError]:
    """A oneOf failure replaced by the errors of the branch meant: the one whose `type` constant is the
    body's type, else the best match (jsonschema's own pick); any other error as it is."""
    if error.validator != "oneOf" or not error.context:
        return [error]
    instance_type = error.instance.get("type") if isinstance(error.instance, dict) else None
    branches: dict[int, list[JsonSchemaError]] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    for index, branch in branches.items():
        target = error.validator_value[index]
        if target.get("$ref", "").startswith("#/$defs/"):
            target = _schema()["$defs"][target["$ref"].removeprefix("#/$defs/")]
        if target.get("properties", {}).get("type", {}).get("const") == instance_type is not None:
            return [leaf for sub in branch for leaf in _leaf_errors(sub)]
    return _leaf_errors(best_match(error.context))


def _error_entry(error: JsonSchemaError) -> dict[str, str]:
    """The field as a JSON pointer (for a missing field: the field itself), the rule broken, a message."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        named = [name for name in missing if error.message == f"{name!r} is a required property"]
        path += named[:1]
    return {"pointer": _pointer(path) or "/", "rule": str(error.validator), "message": error.message}


def schema_errors(body: Any) -> list[dict[str, str]]:
    """The body's breaches of the notification schema, each naming its field and rule (empty: valid)."""
    entries = [_error_entry(leaf) for error in _validator().iter_errors(body) for leaf in _leaf_errors(error)]
    return [entry for index, entry in enumerate(entries) if entry not in entries[:index]]


def parse_notification(raw_body: bytes) -> dict[str, Any]:
    """The JSON body checked against the notification schema; ValidationError (MALFORMED) otherwise. A key
    given twice in one object is refused (the standard parser keeps the last silently)."""
    try:
        body = _no_floats(raw_body)
        if body is not None and _fast_validator().is_valid(body):
            return body
        body = json.loads(raw_body, object_pairs_hook=_refuse_duplicates)
    except DuplicateKey as duplicate:
        detail = {
            "pointer": _pointer([duplicate.key]),
            "rule": "duplicate_key",
            "message": f"字段 {duplicate.key} 重复出现",
        }
        raise ValidationError("通知内容中有重复的字段", code="MALFORMED", details=[detail]) from duplicate
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValidationError("通知内容不是合法的 JSON", code="MALFORMED", details=[str(error)]) from error
    errors = schema_errors(body)
    if errors:
        raise ValidationError("通知内容不符合协议", code="MALFORMED", details=errors)
    return body


def receive(
    rt: Runtime, bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str, signature: Signature = None
) -> str:
    """`_receive_once`, retried when it meets contention (concurrent arrivals at one account); Busy (409) when
    the retries do not settle it: nothing is kept then, and the bank resends."""
    for attempt in range(CONTENTION_ATTEMPTS):
        try:
            return _receive_once(rt, bank_code, raw_body, body, nonce, signature)
        except DATABASE_ERRORS as error:
            if not is_contention(error):
                raise
            log.info("callback contention, attempt %d of %d", attempt + 1, CONTENTION_ATTEMPTS)
            time.sleep(CONTENTION_BACKOFF_S * (attempt + 1) * random.random())
    raise Busy("系统繁忙，请稍后重发该通知", details={"attempts": CONTENTION_ATTEMPTS})


def _receive_once(
    rt: Runtime, bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str, signature: Signature
) -> str:
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
        stored = _store_or_alert(rt, session, bank_code, raw_body, body, nonce, now, signature)
        if stored.processed:
            uow.commit()
            return "DUPLICATE"
        try:
            with batching(session):  # PostgreSQL: timeline, origin, mark and audit entry in one statement
                outcome = HANDLERS[body["type"]](rt, session, bank_code, body)
                mark_processed(session, stored.inbox_id, outcome, rt.clock())
                uow.commit()
        except Exception as error:
            session.rollback()
            if is_contention(error):  # nothing kept: `receive` tries again with the same nonce
                raise
            _keep_raw_after_failure(session, bank_code, raw_body, body, nonce, now, error, signature)
            if isinstance(error, CallbackRefused):
                add_alert(rt, session, bank_code, raw_body, body, error)
            uow.commit()
            raise
    # the same money under a new notification id: the bank must stop resending it all the same
    return "DUPLICATE" if outcome == "duplicate_bank_reference" else "OK"


def _store_or_alert(
    rt: Runtime,
    session: Session,
    bank_code: str,
    raw_body: bytes,
    body: dict[str, Any],
    nonce: str,
    now: datetime,
    signature: Signature = None,
) -> StoredNotification:
    """`store_raw`; a notification id reused with another body is refused, kept as an alert and re-raised."""
    try:
        return store_raw(session, bank_code, raw_body, body, nonce, now, signature)
    except CallbackRefused as refused:
        session.rollback()
        add_alert(rt, session, bank_code, raw_body, body, refused)
        session.commit()
        raise


def _keep_raw_after_failure(
    session: Session,
    bank_code: str,
    raw_body: bytes,
    body: dict[str, Any],
    nonce: str,
    now: datetime,
    error: Exception,
    signature: Signature = None,
) -> None:
    """After a failed processing was rolled back: store the nonce and the raw body on their own."""
    try:
        store_raw(session, bank_code, raw_body, body, nonce, now, signature)
    except Exception:  # the database is gone too: the bank got no 200 and resends; report the first error
        session.rollback()
        log.warning("callback not kept after a failure", extra={"bank": bank_code, "error": str(error)[:200]})


# --- acknowledged inbox (CUNGUAN_CALLBACK_PROCESSING=inbox) ----------------------------------------------
# The endpoint stores the nonce and the raw notification in one short transaction and answers 200: the
# bank's obligation to resend ends once we hold the notification durably. Workers (`flask worker`) then
# process unprocessed inbox rows in batches, oldest first, through the same handlers as inline processing.
# A row is marked processed in the transaction that applies it, so a worker that dies mid-batch leaves the
# whole batch unprocessed for the next worker, and processing twice is impossible.


def acknowledge(
    rt: Runtime, bank_code: str, raw_body: bytes, body: dict[str, Any], nonce: str, signature: Signature = None
) -> str:
    """Inbox mode: remember the nonce and store the notification raw; nothing is processed here. Returns
    "OK", or "DUPLICATE" when this notification was processed before; raises ReplayedNonce. A resend of a
    notification whose processing failed makes it due again (as a resend retries it inline).

    On PostgreSQL a new notification costs one autocommitted statement (nonce and inbox row together,
    atomic and durable when it returns); a resend costs one more."""
    now = rt.clock()
    if rt.db.engine.dialect.name != "postgresql":
        with rt.db.uow() as uow:
            stored = _store_or_alert(rt, uow.session, bank_code, raw_body, body, nonce, now, signature)
            if stored.outcome is not None and stored.outcome.startswith(FAILED_PREFIX):
                uow.session.execute(update(INBOX).where(INBOX.c.id == stored.inbox_id).values(outcome=None))
            uow.commit()
        return "DUPLICATE" if stored.processed else "OK"
    with rt.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        fresh_nonce, inbox_id = connection.execute(
            STORE_PG, store_values(bank_code, raw_body, body, nonce, now, signature)
        ).one()
        if not fresh_nonce:
            raise ReplayedNonce("该随机数已使用过（疑似重放）", details={"nonce": nonce})
        if inbox_id is not None:
            return "OK"
        stored_sm3, stored_raw = connection.execute(
            select(INBOX.c.body_sm3, INBOX.c.raw_body).where(
                INBOX.c.bank_code == bank_code, INBOX.c.notification_id == body["notification_id"]
            )
        ).one()
        try:
            check_same_body(bank_code, body, stored_sm3, stored_raw)
        except CallbackRefused as refused:
            record_alert(rt, bank_code, raw_body, body, refused)
            raise
        processed_at = connection.scalar(
            MAKE_DUE_AGAIN_PG, {"bank_code": bank_code, "notification_id": body["notification_id"]}
        )
    return "OK" if processed_at is None else "DUPLICATE"
