"""Processing a bank notification, by type - the same whether it is processed inline, by an inbox worker,
or rebuilt from a query or a statement (补单): idempotent, it may run again and changes nothing then.

- `account_opened`: the deal's account is recorded (workflow), then money that arrived before it is matched; a
  number not in the format of the bank config the deal pinned (`app.definitions.banks.pinned_bank`) is refused
  (`ACCOUNT_NUMBER_INVALID`, kept as a callback alert) and the deal stays where it is;
- `funds_arrived`: the deal's custody is credited (`custody.credit_custody`), or the money goes to suspense
  (unknown account, a payer the deal does not accept, a deal that has ended);
- `payout_result`: the payouts package applies the bank's result (`app/payouts/results.py`); a result for a
  payout never sent to the bank (unknown, awaiting approval, or pending and never sent) is refused
  (`PAYOUT_NOT_SUBMITTED`, kept as a callback alert)."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, defer, joinedload

from app.bank_inbox import suspense
from app.bank_inbox.alerts import ACCOUNT_NUMBER_INVALID, PAYOUT_NOT_SUBMITTED, CallbackRefused
from app.bank_inbox.custody import Credit, credit_custody
from app.bank_inbox.store import bank_actor
from app.db.models import Deal, Payout, VirtualAccount
from app.db.pii import encrypted_columns
from app.deals.workflow import DealContext, fire_or_note, has_ended
from app.definitions.banks import pinned_bank
from app.payouts import results as payout_results
from app.payouts.status import PayoutStatus
from app.payouts.submission import sent_to_bank
from app.platform.runtime import Runtime

REPAIR_MARKER = "补单"


def account_opened(
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
    _check_account_number(rt, account.deal, body)
    ctx = DealContext(rt, session, account.deal, bank_actor(bank_code), {"account_no": body["account_no"]})
    detail = {"account_no": body["account_no"]} | ({"marker": marker} if marker else {})
    result = fire_or_note(ctx, "account_opened", detail)
    if account.account_no is not None:  # money that arrived before this notice is the deal's now
        suspense.rematch_after_opening(rt, session, account, bank_actor(bank_code))
    return result


def _check_account_number(rt: Runtime, deal: Deal, body: dict[str, Any]) -> None:
    """An account number the format of the deal's bank refuses (the bank config the deal pinned) is never
    recorded: money paid to it could not be matched to the deal, and the number shows the bank (or whoever
    signed) is not what the config describes."""
    bank = pinned_bank(rt.definitions, rt.known_banks, deal)
    if bank is None or bank.account_format.matches(body["account_no"]):
        return
    raise CallbackRefused(
        f"开户通知的账号不符合{bank.name}的账号格式，已拒收并留待人工核查",
        code="ACCOUNT_NUMBER_INVALID",
        kind=ACCOUNT_NUMBER_INVALID,
        details={"request_id": body["request_id"], "pattern": bank.account_format.pattern},
    )


@cache
def _account_with_deal() -> Select[tuple[VirtualAccount]]:
    """The account a notification names, with its deal in the same round trip (it is used below), without the
    deal's personal data: decrypting that costs more than the rest of the load, and a step that needs it
    loads it. Built once: building the loader options cost more than running the query."""
    return (
        select(VirtualAccount)
        .options(joinedload(VirtualAccount.deal).options(*(defer(c) for c in encrypted_columns(Deal))))
        .where(VirtualAccount.bank_code == bindparam("bank_code"), VirtualAccount.account_no == bindparam("account_no"))
    )


def funds_arrived(
    rt: Runtime, session: Session, bank_code: str, body: dict[str, Any], marker: str | None = None
) -> str:
    account = session.scalar(_account_with_deal(), {"bank_code": bank_code, "account_no": body["account_no"]})
    actor = bank_actor(bank_code)
    if account is None:
        return suspense.receive(rt, session, bank_code, body, None, actor)
    deal: Deal = account.deal
    if has_ended(rt, deal):  # the money is nobody's but its payer's
        return suspense.receive(rt, session, bank_code, body, account, actor, deal_closed=True)
    if account.designated_payer and body.get("designated_payer_matched") is False:
        return suspense.receive(rt, session, bank_code, body, account, actor)
    credit = Credit(
        "arrival", bank_code, body["bank_reference"], body["amount_fen"], body["payer_name"], body["payer_account"]
    )
    return credit_custody(rt, session, deal, credit, actor, {"marker": marker} if marker else {})


def payout_result(rt: Runtime, session: Session, bank_code: str, body: dict[str, Any]) -> str:
    payout = session.scalar(
        select(Payout).where(Payout.bank_code == bank_code, Payout.payout_id == body["payout_id"]).with_for_update()
    )
    if payout is None or not sent_to_bank(payout):
        raise CallbackRefused(
            "付款结果对应的付款从未提交银行，已拒收并留待人工核查",
            code="PAYOUT_NOT_SUBMITTED",
            kind=PAYOUT_NOT_SUBMITTED,
            details={"payout_id": body["payout_id"], "status": None if payout is None else payout.status},
        )
    return payout_results.apply_result(
        rt, session, payout, body["status"], body["bank_reference"], body.get("failure_reason"), bank_actor(bank_code)
    )


HANDLERS = {
    "account_opened": account_opened,
    "funds_arrived": funds_arrived,
    "payout_result": payout_result,
}


def repair_account_opened(rt: Runtime, session: Session, bank_code: str, body: dict[str, Any]) -> str:
    """补单: an account the bank says is open (asked by query) whose `account_opened` never came, processed as
    that notification would have been (`body` is what the bank would have sent)."""
    return account_opened(rt, session, bank_code, body, marker=REPAIR_MARKER)


def repair_funds_arrived(rt: Runtime, session: Session, bank_code: str, body: dict[str, Any]) -> str:
    """补单: an arrival on the bank's statement whose notification never came, processed exactly as that
    notification would have been (`body` is what the bank would have sent); the timeline entry says 补单."""
    return funds_arrived(rt, session, bank_code, body, marker=REPAIR_MARKER)


def repair_payout_succeeded(rt: Runtime, session: Session, payout: Payout, bank_reference: str) -> str:
    """补单: a payout the bank's statement shows as paid whose `payout_result` never came."""
    actor = bank_actor(payout.bank_code)
    return payout_results.apply_result(
        rt, session, payout, PayoutStatus.SUCCEEDED, bank_reference, None, actor, marker=REPAIR_MARKER
    )
