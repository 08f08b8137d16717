"""Bank callbacks: replay protection, the raw inbox, and idempotent processing by notification type."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.banks.protocol import ReplayedNonce
from app.db.ledger_repo import LedgerRepository
from app.db.models import BankNotification, Deal, Payout, SeenNonce, VirtualAccount
from app.db.upsert import insert_if_absent
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.errors import ValidationError
from app.services import case_blocks, suspense
from app.services.runtime import Runtime
from app.services.workflow_runner import DealContext, fire_or_note

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "bank-notification.schema.json"
NONCE_RETENTION_S = 3600  # far beyond the ±300 s timestamp window: an older nonce can never be fresh again


@cache
def _validator() -> Draft202012Validator:
    # JSON Schema counts 5.0 as an integer; money and counts here must be true integers.
    strict_types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=strict_types)
    return strict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def parse_notification(raw_body: bytes) -> dict[str, Any]:
    """The JSON body checked against the notification schema; ValidationError (MALFORMED) otherwise."""
    try:
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

    Processing runs in a savepoint: if it fails, the nonce and the raw body are still committed (the
    notification is kept for review and processed when the bank resends it), then the error is raised.
    If the process dies instead, nothing is committed and the bank, which got no 200, resends."""
    now = rt.clock()
    with rt.db.uow() as uow:
        session = uow.session
        if not insert_if_absent(
            session, SeenNonce.__table__, {"sender": f"bank:{bank_code}", "nonce": nonce, "seen_at": now}
        ):
            raise ReplayedNonce("该随机数已使用过（疑似重放）", details={"nonce": nonce})
        inbox = _inbox_row(session, bank_code, raw_body, body, now)
        if inbox.processed_at is not None:
            uow.commit()
            return "DUPLICATE"
        try:
            with session.begin_nested():
                inbox.outcome = _HANDLERS[body["type"]](rt, session, bank_code, body)
                inbox.processed_at = rt.clock()
        except Exception:
            uow.commit()
            raise
        uow.commit()
    # the same money under a new notification id: the bank must stop resending it all the same
    return "DUPLICATE" if inbox.outcome == "duplicate_bank_reference" else "OK"


def _inbox_row(
    session: Session, bank_code: str, raw_body: bytes, body: dict[str, Any], now: datetime
) -> BankNotification:
    """The inbox row of this notification, stored raw if new, locked for processing."""
    insert_if_absent(
        session,
        BankNotification.__table__,
        {
            "bank_code": bank_code,
            "notification_id": body["notification_id"],
            "type": body["type"],
            "raw_body": raw_body.decode("utf-8"),
            "received_at": now,
        },
    )
    inbox = session.scalar(
        select(BankNotification)
        .where(BankNotification.bank_code == bank_code, BankNotification.notification_id == body["notification_id"])
        .with_for_update()
    )
    assert inbox is not None, "inbox row stored above"
    return inbox


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
        select(VirtualAccount).where(
            VirtualAccount.bank_code == bank_code, VirtualAccount.account_no == body["account_no"]
        )
    )
    if account is None:
        return suspense.receive(rt, session, bank_code, body, None, _actor(bank_code))
    if account.designated_payer and body.get("designated_payer_matched") is False:
        return suspense.receive(rt, session, bank_code, body, account, _actor(bank_code))
    deal: Deal = account.deal
    repo = LedgerRepository(session)
    clearing = repo.ensure_account(ledger.bank_clearing(bank_code))
    custody = repo.ensure_account(ledger.deal_custody(deal.deal_no), deal_id=deal.id)
    _, created = repo.post(
        TransferSpec(
            id=f"arrival:{bank_code}:{body['bank_reference']}",
            debit_code=clearing.code,
            credit_code=custody.code,
            amount_fen=body["amount_fen"],
            code="arrival",
            deal_id=deal.id,
        ),
        at=rt.clock(),
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


def apply_payout_result(
    rt: Runtime,
    session: Session,
    payout: Payout,
    status: str,
    bank_reference: str,
    reason: str | None,
    actor: str,
    marker: str | None = None,
) -> str:
    """The one place a payout becomes final, whether a callback or a query told us."""
    if payout.status in ("succeeded", "failed"):
        return "already_final"
    payout.status = status
    payout.bank_reference = bank_reference
    payout.failure_reason = reason
    payout.updated_at = rt.clock()
    if payout.purpose == "return":
        return suspense.finish_return(rt, session, payout)
    detail = {"payout_id": payout.payout_id, "amount_fen": payout.amount_fen}
    if status == "failed":
        detail["failure_reason"] = reason or ""
    if marker:
        detail["marker"] = marker
    if payout.release_group is not None:
        return case_blocks.payout_final(rt, session, payout, actor, detail)
    ctx = DealContext(rt, session, payout.deal, actor, {"payout": payout})
    return fire_or_note(ctx, "payout_succeeded" if status == "succeeded" else "payout_failed", detail)


def _payout_result(rt: Runtime, session: Session, bank_code: str, body: dict[str, Any]) -> str:
    payout = session.scalar(
        select(Payout).where(Payout.bank_code == bank_code, Payout.payout_id == body["payout_id"]).with_for_update()
    )
    if payout is None:
        return "unknown_payout"
    return apply_payout_result(
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
    return apply_payout_result(rt, session, payout, "succeeded", bank_reference, None, actor, marker=REPAIR_MARKER)
