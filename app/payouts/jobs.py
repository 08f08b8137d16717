"""Payout jobs that talk to banks: submit, query, watchdog. Each returns normally when done, or raises Retry / a
BankError."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from app.bank_inbox.handlers import REPAIR_MARKER
from app.banks.gateway import (
    BankOutcomeUnknown,
    BankRejected,
    BankUnavailable,
    PayoutRequest,
)
from app.banks.gateway import PayoutStatus as BankAnswer  # the bank's answer, not ours (app.payouts.status)
from app.db.models import Payout
from app.payouts import results, submission
from app.payouts.status import PayoutStatus, is_final
from app.platform.errors import CunguanError
from app.platform.request_context import bind_job_context
from app.platform.runtime import Runtime
from app.queue.jobs import Defer, Retry, enqueue

ACTOR = "system:worker"
QUERY_DELAY_S = 5.0

log = logging.getLogger("cunguan.bank_jobs")


def _load_payout(rt: Runtime, payout_id: str) -> tuple[PayoutRequest, str, str]:
    with rt.db.uow() as uow:
        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id))
        assert payout is not None, "job refers to a missing payout"
        bind_job_context(deal_id=payout.deal_id, bank=payout.bank_code)  # for the logs
        request = PayoutRequest(
            payout_id=payout.payout_id,
            account_no=_paid_from(payout),
            amount_fen=payout.amount_fen,
            payee_name=payout.payee_name,
            payee_account=payout.payee_account,
            notify_url=rt.notify_url(payout.bank_code),
        )
        return request, payout.bank_code, payout.status


def _paid_from(payout: Payout) -> str:
    """The bank account the money leaves from: where a returned credit arrived, else the deal's account."""
    if payout.suspense_item is not None:
        return payout.suspense_item.account_no
    account = payout.deal.virtual_account if payout.deal is not None else None
    assert account is not None and account.account_no, "payout from a deal without an opened account"
    return account.account_no


def submit_payout(rt: Runtime, payload: dict[str, Any]) -> None:
    """Submit once. Unreachable bank: resend later. Unknown outcome: query, never resubmit blindly - and a
    run after an earlier attempt (whose worker may have died after sending) asks the bank before sending."""
    request, bank_code, status = _load_payout(rt, payload["payout_id"])
    if status != PayoutStatus.PENDING:
        return
    if payload.get("attempt", 1) > 1 and _found_at_bank(rt, request.payout_id, bank_code):
        return
    with rt.db.uow() as uow:
        if submission.frozen_payout(uow.session, request.payout_id):  # no money leaves a frozen deal
            raise Defer(  # unfreezing wakes this
                "存管单已冻结，解冻后再提交付款", delay_s=submission.RECHECK_S, details={"payout_id": request.payout_id}
            )
        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == request.payout_id).with_for_update())
        assert payout is not None
        if payout.status != PayoutStatus.PENDING:  # its result came meanwhile
            return
        submission.mark_sent(payout, rt.clock())  # before the call: the bank's result for it is accepted then
        uow.commit()
    try:
        bank_reference = rt.gateway(bank_code).submit_payout(request)
    except BankUnavailable as error:
        raise Retry(error.message, details=error.details) from error
    except BankOutcomeUnknown:
        with rt.db.uow() as uow:
            enqueue(
                uow.session,
                "query_payout",
                {"payout_id": request.payout_id},
                now=rt.clock(),
                delay_s=QUERY_DELAY_S,
                bank_code=bank_code,
            )
            uow.commit()
        return
    except BankRejected as error:
        _finish(rt, request.payout_id, PayoutStatus.FAILED, "", f"银行拒绝付款：{error.message}")
        return
    _mark_submitted(rt, request.payout_id, bank_reference)


def _mark_submitted(rt: Runtime, payout_id: str, bank_reference: str) -> None:
    """The bank has the payout (and a watchdog asks the bank if its `payout_result` does not come)."""
    with rt.db.uow() as uow:
        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id).with_for_update())
        assert payout is not None
        submission.mark_submitted(uow.session, payout, bank_reference, rt.clock())
        uow.commit()


def _ask_bank(rt: Runtime, payout_id: str, bank_code: str) -> BankAnswer | None:
    """What the bank says of the payout; None when it never got it. Unreachable: try again later."""
    try:
        return rt.gateway(bank_code).query_payout(payout_id)
    except BankRejected as error:
        if error.code != "NOT_FOUND":
            raise
        return None
    except (BankUnavailable, BankOutcomeUnknown) as error:
        raise Retry(error.message, details=error.details) from error


def _found_at_bank(rt: Runtime, payout_id: str, bank_code: str) -> bool:
    """Whether the bank already has the payout (then its answer is recorded); False if it never got it."""
    answer = _ask_bank(rt, payout_id, bank_code)
    if answer is None:
        return False
    if answer.status == "processing":
        _mark_submitted(rt, payout_id, answer.bank_reference)
    else:
        _finish(rt, payout_id, answer.status, answer.bank_reference, answer.failure_reason)
    return True


def query_payout(rt: Runtime, payload: dict[str, Any]) -> None:
    """Ask the bank what became of a payout whose submission had no clear answer."""
    payout_id = payload["payout_id"]
    _, bank_code, status = _load_payout(rt, payout_id)
    if is_final(status):
        return
    if not _found_at_bank(rt, payout_id, bank_code):
        with rt.db.uow() as uow:  # the bank never got it: submitting now cannot pay twice
            enqueue(uow.session, "submit_payout", {"payout_id": payout_id}, now=rt.clock(), bank_code=bank_code)
            uow.commit()


class PayoutUnknownAtBank(CunguanError):
    """A payout we recorded as accepted by the bank that the bank says it never received: for people."""

    code = "PAYOUT_UNKNOWN_AT_BANK"


def check_payout(rt: Runtime, payload: dict[str, Any]) -> None:
    """Watchdog for a submitted payout whose `payout_result` has not come (lost or late). A failed payout is on
    no statement, so reconciliation cannot repair it: ask the bank, and record a final answer as the callback
    would have (补单 on the deal's timeline; a callback that comes after all finds it final and changes
    nothing). Still processing: ask again later, without spending attempts. Unknown to the bank: that
    contradicts `submitted` - never resubmitted here, the job ends dead for a person to look at."""
    payout_id = payload["payout_id"]
    _, bank_code, status = _load_payout(rt, payout_id)
    if is_final(status):
        return
    answer = _ask_bank(rt, payout_id, bank_code)
    if answer is None:
        log.warning("submitted payout unknown to the bank", extra={"payout_id": payout_id, "bank": bank_code})
        raise PayoutUnknownAtBank(
            f"付款 {payout_id} 已记为银行受理，但银行查无此付款：请人工核实，不会自动重新提交",
            details={"payout_id": payout_id, "bank": bank_code},
        )
    if answer.status == "processing":
        raise Defer(
            "银行付款处理中，稍后再查", delay_s=submission.payout_check_delay_s(), details={"payout_id": payout_id}
        )
    _finish(rt, payout_id, answer.status, answer.bank_reference, answer.failure_reason, marker=REPAIR_MARKER)


def _finish(
    rt: Runtime, payout_id: str, status: str, bank_reference: str, reason: str | None, marker: str | None = None
) -> None:
    with rt.db.uow() as uow:
        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id).with_for_update())
        assert payout is not None
        results.apply_result(rt, uow.session, payout, status, bank_reference, reason, ACTOR, marker=marker)
        uow.commit()


# the payout jobs, added to the job table by app.platform.bootstrap
JOBS = {
    "submit_payout": submit_payout,
    "query_payout": query_payout,
    "check_payout": check_payout,
}
