"""A guarantee's freeze and unfreeze: bank operations, booked only on the bank's signed receipt.

The workflow's `request_freeze` / `request_unfreeze` actions queue a job (`case_blocks.carry_out`). The job
asks the deal's bank (`POST /v1/freezes`, `POST /v1/unfreezes`); the bank answers with a receipt signed with
its own key. The receipt must verify with the bank's public key and name this request and amount; only then
is the workflow's `freeze_confirmed` / `unfreeze_confirmed` fired (its actions book the ledger:
`record_freeze`, `release_freeze`) and, for a freeze, the account the receipt names kept as the deal's account
(a claim is paid from it). Nobody types an account.

- bank unreachable or answer unclear: asked again later with the same request id (the bank answers a repeat
  with the same receipt), nothing booked meanwhile;
- a receipt that does not verify: nothing booked, asked again later (then the job dies for a person);
- the bank refuses: a freeze fires `freeze_failed` with the bank's reason; an unfreeze is kept on the deal's
  timeline and the job ends dead (ops retry it from the jobs page once the bank's problem is solved).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.banks.gateway import BankOutcomeUnknown, BankRateLimited, BankReceipt, BankRejected, BankUnavailable
from app.banks.protocol import BANK_PREFIX, verify_request
from app.db.models import Deal, VirtualAccount
from app.deals.workflow import DealContext, fire, note
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime
from app.queue.jobs import Retry

FREEZE_JOB = "bank_freeze"
UNFREEZE_JOB = "bank_unfreeze"


class BankRefused(CunguanError):
    """The bank refused to lift a freeze: for a person (the job ends dead, retried by ops)."""

    code = "BANK_REFUSED"


def freeze_request(deal_id: int, amount_fen: int) -> tuple[str, dict[str, Any]]:
    """The job (kind, payload) asking the deal's bank to freeze `amount_fen` for it."""
    return FREEZE_JOB, {"deal_id": deal_id, "amount_fen": amount_fen}


def unfreeze_request(deal_id: int, amount_fen: int) -> tuple[str, dict[str, Any]]:
    """The job (kind, payload) asking the deal's bank to lift the freeze of `amount_fen`."""
    return UNFREEZE_JOB, {"deal_id": deal_id, "amount_fen": amount_fen}


def _waits_for(rt: Runtime, deal: Deal, event: str) -> bool:
    return event in rt.workflow(deal.workflow_id, deal.workflow_version).events_from(deal.state)


def _verified(rt: Runtime, bank_code: str, receipt: BankReceipt, expected: dict[str, Any]) -> dict[str, Any]:
    """The receipt's fields, once its signature verifies with the bank's public key and it says what was asked."""
    details = {"bank": bank_code, **expected}
    try:
        verify_request(BANK_PREFIX, rt.keys.bank_public_key_pem(bank_code), receipt.signature, receipt.body)
        fields = json.loads(receipt.body)
    except (CunguanError, ValueError) as error:
        raise Retry(f"银行 {bank_code} 的回执无法用其公钥验证，未入账", details=details) from error
    if not isinstance(fields, dict) or any(fields.get(name) != value for name, value in expected.items()):
        raise Retry(f"银行 {bank_code} 的回执与申请不符，未入账", details={**details, "receipt": fields})
    return fields


def _load(rt: Runtime, deal_id: int, event: str) -> tuple[str, str, str | None] | None:
    """(bank, deal number, deal account) of a deal still waiting for `event`; None once it is not."""
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        assert deal is not None, "job refers to a missing deal"
        if not _waits_for(rt, deal, event):
            return None
        account = deal.virtual_account.account_no if deal.virtual_account is not None else None
        return deal.bank_code, deal.deal_no, account


def _ask(bank_code: str, call: Callable[..., BankReceipt], *args: Any) -> BankReceipt | BankRejected:
    """The bank's receipt, or its refusal; asked again later (Retry) when it could not answer."""
    try:
        return call(*args)
    except BankRateLimited as error:
        raise Retry(f"银行 {bank_code} 限流，稍后再办理：{error.message}", details=error.details) from error
    except BankRejected as refused:
        return refused
    except (BankUnavailable, BankOutcomeUnknown) as error:
        raise Retry(f"银行 {bank_code} 暂时无法办理冻结/解冻：{error.message}", details=error.details) from error


def bank_freeze(rt: Runtime, payload: dict[str, Any]) -> None:
    """Job: ask the bank to freeze the guarantee's money; book it (and keep the frozen account) on its receipt."""
    deal_id, amount_fen = payload["deal_id"], payload["amount_fen"]
    loaded = _load(rt, deal_id, "freeze_confirmed")
    if loaded is None:
        return
    bank_code, deal_no, _ = loaded
    request_id = f"FZ-{deal_no}"
    answer = _ask(bank_code, rt.gateway(bank_code).freeze, request_id, f"冻结-{deal_no}", amount_fen)
    fields = (
        None
        if isinstance(answer, BankRejected)
        else _verified(rt, bank_code, answer, {"code": "FROZEN", "request_id": request_id, "amount_fen": amount_fen})
    )
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id, with_for_update=True)
        assert deal is not None
        if not _waits_for(rt, deal, "freeze_confirmed"):
            return
        ctx = DealContext(rt, uow.session, deal, f"bank:{bank_code}", {"amount_fen": amount_fen})
        if fields is None:
            assert isinstance(answer, BankRejected)
            fire(ctx, "freeze_failed", {"label": f"银行拒绝冻结：{answer.message}", "bank_code": answer.code})
        else:
            _keep_frozen_account(rt, deal, request_id, str(fields["account_no"]))
            fire(ctx, "freeze_confirmed", {"amount_fen": amount_fen, "account_no": fields["account_no"]})
        uow.commit()


def _keep_frozen_account(rt: Runtime, deal: Deal, request_id: str, account_no: str) -> None:
    """The account the bank's receipt names holds the frozen money: the deal's account from now on."""
    now = rt.clock()
    deal.virtual_account = VirtualAccount(
        deal_id=deal.id,
        bank_code=deal.bank_code,
        request_id=request_id,
        account_name=f"冻结-{deal.deal_no}",
        account_no=account_no,
        status="opened",
        designated_payer=False,
        requested_at=now,
        opened_at=now,
    )


def bank_unfreeze(rt: Runtime, payload: dict[str, Any]) -> None:
    """Job: ask the bank to lift the freeze; book the release on its receipt."""
    deal_id, amount_fen = payload["deal_id"], payload["amount_fen"]
    loaded = _load(rt, deal_id, "unfreeze_confirmed")
    if loaded is None:
        return
    bank_code, deal_no, account_no = loaded
    assert account_no is not None, "a frozen guarantee without its frozen account"
    request_id = f"UF-{deal_no}"
    answer = _ask(bank_code, rt.gateway(bank_code).unfreeze, request_id, account_no, amount_fen)
    expected = {"code": "UNFROZEN", "request_id": request_id, "account_no": account_no, "amount_fen": amount_fen}
    refusal = answer.message if isinstance(answer, BankRejected) else None
    fields = None if isinstance(answer, BankRejected) else _verified(rt, bank_code, answer, expected)
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id, with_for_update=True)
        assert deal is not None
        if not _waits_for(rt, deal, "unfreeze_confirmed"):
            return
        ctx = DealContext(rt, uow.session, deal, f"bank:{bank_code}", {"amount_fen": amount_fen})
        if fields is not None:
            fire(ctx, "unfreeze_confirmed", {"amount_fen": amount_fen})
        else:
            note(ctx, "unfreeze_refused", {"label": f"银行拒绝解冻：{refusal}", "amount_fen": amount_fen})
        uow.commit()
    if fields is None:
        raise BankRefused(f"银行拒绝解冻：{refusal}", details={"deal_no": deal_no, "bank": bank_code})


# the freeze jobs, added to the job table by app.platform.bootstrap
JOBS = {FREEZE_JOB: bank_freeze, UNFREEZE_JOB: bank_unfreeze}
