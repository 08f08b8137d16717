"""Account-opening jobs: ask the bank for a deal's virtual account at the bank's pace, and ask again when its
`account_opened` notice does not come. Each returns normally when done, or raises Retry / Defer / a BankError."""

from __future__ import annotations

import time
import uuid
from typing import Any

from app.bank_inbox.handlers import repair_account_opened
from app.banks.gateway import BankOutcomeUnknown, BankRateLimited, BankRejected, BankUnavailable, DesignatedPayer
from app.banks.settings import opening_limits
from app.db.models import VirtualAccount
from app.db.rate_limits import send_answered, send_refused, start_send
from app.deals.account_request import account_opening
from app.platform.request_context import bind_job_context
from app.platform.runtime import Runtime
from app.queue.jobs import Defer, Retry, enqueue

ACCOUNT_CHECK_DELAY_S = 10.0  # no `account_opened` this long after the bank accepted the request: ask the bank
INLINE_WAIT_S = 0.3  # a place in the bank's window this close: wait for it here rather than requeue the job


def open_virtual_account(rt: Runtime, payload: dict[str, Any]) -> None:
    """Ask the bank to open the account, paced by the bank's limits (the window of its last sends, in the
    database, that every worker shares: app.domain.rate_limit). Safe to resend: the bank dedupes on request_id."""
    ticket, waited_s = uuid.uuid4().hex, 0.0
    while True:
        with rt.db.uow() as uow:
            account = uow.session.get(VirtualAccount, payload["virtual_account_id"])
            assert account is not None, "job refers to a missing virtual account"
            bind_job_context(deal_id=account.deal_id, bank=account.bank_code)  # for the logs
            if account.status == "opened":
                return
            endpoint = rt.banks[account.bank_code]
            limits = opening_limits(uow.session, endpoint)  # the admin's override, else the configured limits
            wait_s = start_send(uow.session, account.bank_code, limits, rt.clock(), ticket)
            uow.commit()
            request = (account.bank_code, account.request_id, account.account_name, _designated_payer(account))
        if wait_s == 0.0:
            break
        if waited_s + wait_s > INLINE_WAIT_S:
            raise Defer(f"{endpoint.name}开户限速，稍后再开", delay_s=wait_s, details={"bank": endpoint.code})
        time.sleep(wait_s)
        waited_s += wait_s
    bank_code, request_id, account_name, payer = request
    try:
        gateway, notify_url = rt.gateway(bank_code), rt.notify_url(bank_code)
        bank_stamp = gateway.open_virtual_account(request_id, account_name, notify_url, payer)
    except BankRateLimited as error:  # our pace and the bank's disagree: the bank wins
        with rt.db.uow() as uow:
            send_refused(uow.session, bank_code, limits, rt.clock())
            uow.commit()
        raise Defer(error.message, delay_s=error.retry_after_s, details=error.details) from error
    except BaseException as error:  # answered or not, the bank may have counted it
        _answered(rt, bank_code, ticket)
        if isinstance(error, BankUnavailable | BankOutcomeUnknown):
            raise Retry(error.message, details=error.details) from error
        raise
    with rt.db.uow() as uow:  # if the bank's `account_opened` never comes, ask the bank
        send_answered(uow.session, bank_code, ticket, rt.clock(), bank_stamp)
        check = {"virtual_account_id": payload["virtual_account_id"]}
        enqueue(
            uow.session,
            "check_virtual_account",
            check,
            now=rt.clock(),
            delay_s=ACCOUNT_CHECK_DELAY_S,
            bank_code=bank_code,
        )
        uow.commit()


def check_virtual_account(rt: Runtime, payload: dict[str, Any]) -> None:
    """An opening request the bank accepted a while ago and we still have no number for: the notification
    was lost or is late. Ask the bank; an account it opened is recorded as that notification would have been
    (补单). Still opening: ask again later. Never received: request it again (idempotent on request_id)."""
    with rt.db.uow() as uow:
        account = uow.session.get(VirtualAccount, payload["virtual_account_id"])
        assert account is not None, "job refers to a missing virtual account"
        bind_job_context(deal_id=account.deal_id, bank=account.bank_code)
        if account.status == "opened":
            return
        account_id, bank_code, request_id = account.id, account.bank_code, account.request_id
    try:
        answer = rt.gateway(bank_code).query_virtual_account(request_id)
    except BankRejected as error:
        if error.code != "NOT_FOUND":
            raise
        with rt.db.uow() as uow:
            enqueue(uow.session, *account_opening(account_id), now=rt.clock(), bank_code=bank_code)
            uow.commit()
        return
    except (BankUnavailable, BankOutcomeUnknown) as error:
        raise Retry(error.message, details=error.details) from error
    if answer.status != "open":
        raise Retry("银行开户处理中", details={"request_id": request_id})
    body = {
        "notification_id": f"query:{request_id}",
        "type": "account_opened",
        "request_id": request_id,
        "account_no": answer.account_no,
        "account_name": answer.account_name,
    }
    with rt.db.uow() as uow:
        repair_account_opened(rt, uow.session, bank_code, body)
        uow.commit()


def _answered(rt: Runtime, bank_code: str, ticket: str) -> None:
    """The bank answered our send: its place in the window frees a second from now."""
    with rt.db.uow() as uow:
        send_answered(uow.session, bank_code, ticket, rt.clock())
        uow.commit()


def _designated_payer(account: VirtualAccount) -> DesignatedPayer | None:
    """The buyer's own account, when the deal's city requires money to come from the named payer only."""
    if not account.designated_payer:
        return None
    deal = account.deal
    return DesignatedPayer(deal.buyer_name, deal.buyer_bank_account)


# the account-opening jobs, added to the job table by app.platform.bootstrap
JOBS = {
    "open_virtual_account": open_virtual_account,
    "check_virtual_account": check_virtual_account,
}
