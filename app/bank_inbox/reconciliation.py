"""Reconciliation (对账): a bank's daily statement against our inbox and ledger, with repairs (补单).

Each statement line ends as one item:
- credit: the ledger has `arrival:<bank>:<reference>` with the same amount in the account's custody →
  matched; in suspense → suspense (the review queue owns it); no such transfer → the notification never
  came: it is processed now through the callback code (`repair_funds_arrived`), with a `recon:<reference>`
  row in the inbox, so the deal's workflow moves exactly as if the bank had notified → repaired (or
  suspense, for an account we do not know); other amount or account → amount_mismatch / mismatch;
- debit: our payout with that id, same amount, succeeded → matched; still in flight → its result never
  came: settled now through `repair_payout_succeeded` → repaired; unknown payout id → unknown_debit;
  failed on our side, other amount or reference → amount_mismatch / mismatch;
- a row that cannot be read → invalid.
Then the other direction and the balance (`reconciliation_ledger`): a posting on the bank's clearing account
that no statement line explains → ledger_only (or payout_missing for a payout we posted as paid), and the
statement's closing balance against the ledger at the cut-off → balance_gap. Every item needing a person
opens (or points at) an exception that stays open until someone resolves it with a reason
(`reconciliation_exceptions`).

Re-running is idempotent: repairs are keyed by the same ledger transfer ids and inbox rows, so a second
run posts nothing and reports the earlier repairs as repaired. Every run is stored with its items.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.bank_inbox import reconciliation_exceptions
from app.bank_inbox.custody import credit_transfer_id
from app.bank_inbox.handlers import repair_funds_arrived, repair_payout_succeeded
from app.bank_inbox.reconciliation_item import Item, chunks
from app.bank_inbox.reconciliation_ledger import ledger_side
from app.bank_inbox.store import inbox_row
from app.bank_inbox.suspense import STATUS_LABELS as SUSPENSE_LABELS
from app.banks.protocol import BANK_PREFIX, TIMESTAMP_TOLERANCE_S, SignatureHeaders, signing_payload
from app.crypto import sm2_verify, sm3
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.models import BankNotification, Payout, SuspenseItem, VirtualAccount
from app.db.reconciliation_models import ReconciliationItem, ReconciliationRun
from app.domain import ledger
from app.domain.statements import (
    RESOLVED_STATUSES,
    Statement,
    StatementLine,
    parse_statement,
)
from app.payouts.status import PayoutStatus
from app.platform.errors import CunguanError, NotFound, SignatureError, ValidationError
from app.platform.runtime import Runtime

REPAIR_PREFIX = "recon:"  # inbox ids of repairs; ':' is outside the banks' id alphabet, so never a bank's id


def reconcile(
    rt: Runtime,
    bank_code: str,
    day: date,
    *,
    statement: Statement | None = None,
    allow_incomplete: bool = False,
    actor: str = "system:reconcile",
) -> int:
    """Fetch (or take) the day's statement, match, repair, store the run; returns the run id."""
    rt.bank(bank_code)
    bank = rt.known_banks.get(bank_code)  # its statement layout, as published now
    if bank is None:
        raise NotFound("该银行的对账单格式未配置", code="UNKNOWN_STATEMENT_LAYOUT", details={"bank": bank_code})
    layout = bank.statement
    started_at = rt.clock()
    if statement is None:
        statement = rt.gateway(bank_code).fetch_statement(day)  # type: ignore[attr-defined]
        verify_statement(statement, rt.keys.bank_public_key_pem(bank_code))
    if statement.bank_code != bank_code or statement.day != day:
        raise ValidationError("对账单与所选银行或日期不符", code="STATEMENT_MISMATCH")
    if not statement.complete and not allow_incomplete:
        raise ValidationError(
            f"{day.isoformat()} 的对账单尚不完整（银行日终未结束），仅在确认后使用 --allow-incomplete 对账",
            code="STATEMENT_INCOMPLETE",
        )
    parsed = parse_statement(layout, statement.content, day)
    items = [Item("invalid", problem.reason, row_no=problem.row) for problem in parsed.problems]
    if statement.line_count is not None and statement.line_count != parsed.data_rows:
        items.append(Item("invalid", f"银行声明 {statement.line_count} 行，文件实有 {parsed.data_rows} 行"))
    items += _credits(rt, bank_code, [line for line in parsed.lines if line.direction == "credit"])
    items += _debits(rt, bank_code, [line for line in parsed.lines if line.direction == "debit"])
    ledger_items, ledger_fen = ledger_side(rt, bank_code, day, list(parsed.lines), parsed.closing_balance_fen)
    balances = (parsed.closing_balance_fen, ledger_fen)
    return _store(rt, bank_code, day, statement, parsed.data_rows, items + ledger_items, balances, actor, started_at)


def verify_statement(statement: Statement, bank_public_key_pem: bytes) -> None:
    """The bank's SM2 signature over the exact file bytes, its freshness, and the declared SM3.
    (Not `verify_request`: a statement may be larger than a request body may be.)"""
    names = SignatureHeaders.for_prefix(BANK_PREFIX)
    headers = {name.lower(): value.strip() for name, value in statement.signature.items()}
    timestamp, nonce, signature = (
        headers.get(name.lower(), "") for name in (names.timestamp, names.nonce, names.signature)
    )
    try:
        signature_der = base64.b64decode(signature, validate=True)
    except binascii.Error:
        signature_der = b""
    if not (timestamp.isdigit() and nonce and signature_der) or not sm2_verify(
        bank_public_key_pem, signing_payload(timestamp, nonce, statement.content), signature_der
    ):
        raise SignatureError("对账单的银行签名无效", details={"bank": statement.bank_code})
    if abs(time.time() - int(timestamp)) > TIMESTAMP_TOLERANCE_S:
        raise SignatureError("对账单签名时间超出允许范围（±300 秒）", code="STALE_TIMESTAMP")
    if statement.sm3_hex != sm3(statement.content).hex():
        raise SignatureError("对账单 SM3 摘要与文件内容不符", code="STATEMENT_SM3_MISMATCH")


def statement_from_file(bank_code: str, day: date, name: str, content: bytes) -> Statement:
    """A statement file someone saved: taken as the bank's final file for the day."""
    return Statement(bank_code, day, content, complete=True, source=f"file:{name}"[:160])


# --- credits --------------------------------------------------------------------------------------


def _arrival_id(bank_code: str, reference: str) -> str:
    return credit_transfer_id("arrival", bank_code, reference)


def _transfers(session: Session, ids: list[str]) -> dict[str, tuple[int, str]]:
    """Transfer id -> (amount, credited account code)."""
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunks(ids):
        rows = session.execute(
            select(LedgerTransfer.id, LedgerTransfer.amount_fen, LedgerAccount.code)
            .join(LedgerAccount, LedgerAccount.id == LedgerTransfer.credit_account_id)
            .where(LedgerTransfer.id.in_(chunk))
        )
        found.update({transfer_id: (amount, code) for transfer_id, amount, code in rows})
    return found


def _repaired(session: Session, bank_code: str, references: list[str]) -> set[str]:
    """References already repaired (a `recon:` row in the inbox)."""
    repaired: set[str] = set()
    for chunk in chunks([REPAIR_PREFIX + reference for reference in references]):
        rows = session.scalars(
            select(BankNotification.notification_id).where(
                BankNotification.bank_code == bank_code, BankNotification.notification_id.in_(chunk)
            )
        )
        repaired.update(notification_id.removeprefix(REPAIR_PREFIX) for notification_id in rows)
    return repaired


def _accounts(session: Session, bank_code: str, numbers: list[str]) -> dict[str, VirtualAccount]:
    accounts: dict[str, VirtualAccount] = {}
    for chunk in chunks(numbers):
        rows = session.scalars(
            select(VirtualAccount)
            .options(selectinload(VirtualAccount.deal))
            .where(VirtualAccount.bank_code == bank_code, VirtualAccount.account_no.in_(chunk))
        )
        accounts.update({account.account_no: account for account in rows if account.account_no})
    return accounts


def _credits(rt: Runtime, bank_code: str, lines: list[StatementLine]) -> list[Item]:
    references = [line.bank_reference for line in lines]
    with rt.db.uow() as uow:
        transfers = _transfers(uow.session, [_arrival_id(bank_code, reference) for reference in references])
        repaired = _repaired(uow.session, bank_code, references)
        accounts = _accounts(uow.session, bank_code, sorted({line.account_no for line in lines}))
        suspense = {
            item.bank_reference: item.status
            for item in uow.session.scalars(
                select(SuspenseItem).where(
                    SuspenseItem.bank_code == bank_code, SuspenseItem.bank_reference.in_(references)
                )
            )
        }
    items = []
    for line in lines:
        account = accounts.get(line.account_no)
        deal_no = account.deal.deal_no if account is not None else None
        transfer = transfers.get(_arrival_id(bank_code, line.bank_reference))
        was_repaired = line.bank_reference in repaired
        if transfer is None:
            try:
                outcome = _repair_arrival(rt, bank_code, line, account)
            except CunguanError as error:
                items.append(Item("error", f"补单失败：{error.message}", line.row, line, deal_no=deal_no))
                continue
            was_repaired = outcome != "duplicate_bank_reference"  # else the notification just came
            with rt.db.uow() as uow:
                transfer = _transfers(uow.session, [_arrival_id(bank_code, line.bank_reference)])[
                    _arrival_id(bank_code, line.bank_reference)
                ]
                suspense_item = uow.session.scalar(
                    select(SuspenseItem.status).where(
                        SuspenseItem.bank_code == bank_code, SuspenseItem.bank_reference == line.bank_reference
                    )
                )
            if suspense_item is not None:
                suspense[line.bank_reference] = suspense_item
        items.append(_judge_credit(bank_code, line, transfer, was_repaired, deal_no, suspense.get(line.bank_reference)))
    return items


def _judge_credit(
    bank_code: str,
    line: StatementLine,
    transfer: tuple[int, str],
    was_repaired: bool,
    deal_no: str | None,
    suspense_status: str | None,
) -> Item:
    amount_fen, credited = transfer
    how = "补单" if was_repaired else "通知"
    if amount_fen != line.amount_fen:
        return Item(
            "amount_mismatch", f"平台入账金额与对账单不符（{how}入账）", line.row, line, amount_fen, deal_no=deal_no
        )
    if credited == ledger.suspense(bank_code).code:
        state = SUSPENSE_LABELS.get(suspense_status or "", "")
        reason = "未知账户" if deal_no is None else "非指定付款人或到账早于开户"
        detail = f"{how}入挂账（{reason}）" + (f"，挂账处理：{state}" if state else "")
        return Item("suspense", detail, line.row, line, amount_fen, deal_no=deal_no)
    if deal_no is not None and credited == ledger.deal_custody(deal_no).code:
        status, detail = ("repaired", "通知缺失，已按对账单补单入账") if was_repaired else ("matched", "")
        return Item(status, detail, line.row, line, amount_fen, deal_no=deal_no)
    return Item("mismatch", f"入账账户 {credited} 与对账单账号不符", line.row, line, amount_fen, deal_no=deal_no)


def _repair_arrival(rt: Runtime, bank_code: str, line: StatementLine, account: VirtualAccount | None) -> str:
    """Process the notification the bank would have sent, once; keep it in the inbox as `recon:<ref>`."""
    body: dict[str, object] = {
        "notification_id": REPAIR_PREFIX + line.bank_reference,
        "type": "funds_arrived",
        "bank_reference": line.bank_reference,
        "account_no": line.account_no,
        "amount_fen": line.amount_fen,
        "payer_name": line.counterparty_name,
        "payer_account": line.counterparty_account,
        "arrived_at": line.booked_at.isoformat().replace("+00:00", "Z"),
    }
    if account is not None and account.designated_payer:  # what the bank would have flagged
        deal = account.deal
        body["designated_payer_matched"] = (line.counterparty_name, line.counterparty_account) == (
            deal.buyer_name,
            deal.buyer_bank_account,
        )
    with rt.db.uow() as uow:
        outcome = repair_funds_arrived(rt, uow.session, bank_code, body)
        if outcome == "duplicate_bank_reference":
            return outcome
        _remember_repair(rt, uow.session, bank_code, body, outcome)
        uow.commit()
    return outcome


def _remember_repair(rt: Runtime, session: Session, bank_code: str, body: dict[str, object], outcome: str) -> None:
    now = rt.clock()
    raw_body = json.dumps(body, ensure_ascii=False, sort_keys=True)
    session.add(BankNotification(**inbox_row(bank_code, raw_body, body, now), processed_at=now, outcome=outcome))


# --- debits ---------------------------------------------------------------------------------------


def _debits(rt: Runtime, bank_code: str, lines: list[StatementLine]) -> list[Item]:
    ids = [line.payout_id for line in lines if line.payout_id]
    with rt.db.uow() as uow:
        payouts: dict[str, Payout] = {}
        for chunk in chunks(ids):
            rows = uow.session.scalars(
                select(Payout)
                .options(selectinload(Payout.deal))
                .where(Payout.bank_code == bank_code, Payout.payout_id.in_(chunk))
            )
            payouts.update({payout.payout_id: payout for payout in rows})
        repaired = _repaired(uow.session, bank_code, [line.bank_reference for line in lines])
    return [_judge_debit(rt, bank_code, line, payouts.get(line.payout_id or ""), repaired) for line in lines]


def _judge_debit(rt: Runtime, bank_code: str, line: StatementLine, payout: Payout | None, repaired: set[str]) -> Item:
    if payout is None:
        return Item("unknown_debit", "平台无此付款编号的出金记录", line.row, line, payout_id=line.payout_id)
    deal_no = payout.deal.deal_no if payout.deal is not None else None  # an unknown credit's return has none
    found = {"our_amount_fen": payout.amount_fen, "payout_id": payout.payout_id, "deal_no": deal_no}
    if payout.amount_fen != line.amount_fen:
        return Item("amount_mismatch", "付款金额与对账单不符", line.row, line, **found)
    if payout.bank_reference not in (None, line.bank_reference):
        return Item("mismatch", f"银行流水号不符（平台记录 {payout.bank_reference}）", line.row, line, **found)
    if payout.status == PayoutStatus.FAILED:
        return Item("mismatch", "平台记为付款失败，但银行已出金", line.row, line, **found)
    if payout.status == PayoutStatus.SUCCEEDED:
        if line.bank_reference in repaired:
            return Item("repaired", "付款结果通知缺失，已按对账单补单", line.row, line, **found)
        return Item("matched", "", line.row, line, **found)
    try:
        outcome = _repair_payout(rt, bank_code, line)
    except CunguanError as error:
        return Item("error", f"补单失败：{error.message}", line.row, line, **found)
    if outcome == "already_final":  # the result notification came meanwhile
        return Item("matched", "", line.row, line, **found)
    return Item("repaired", "付款结果通知缺失，已按对账单补单", line.row, line, **found)


def _repair_payout(rt: Runtime, bank_code: str, line: StatementLine) -> str:
    body: dict[str, object] = {
        "notification_id": REPAIR_PREFIX + line.bank_reference,
        "type": "payout_result",
        "payout_id": line.payout_id,
        "bank_reference": line.bank_reference,
        "status": PayoutStatus.SUCCEEDED.value,
        "failure_reason": None,
    }
    with rt.db.uow() as uow:
        payout = uow.session.scalar(
            select(Payout).where(Payout.bank_code == bank_code, Payout.payout_id == line.payout_id).with_for_update()
        )
        assert payout is not None, "payout seen a moment ago"
        outcome = repair_payout_succeeded(rt, uow.session, payout, line.bank_reference)
        if outcome == "already_final":
            return outcome
        _remember_repair(rt, uow.session, bank_code, body, outcome)
        uow.commit()
    return outcome


# --- the stored report ----------------------------------------------------------------------------


def _store(
    rt: Runtime,
    bank_code: str,
    day: date,
    statement: Statement,
    data_rows: int,
    items: list[Item],
    balances: tuple[int | None, int],
    actor: str,
    started_at: datetime,
) -> int:
    items.sort(key=lambda item: (item.row_no is None, item.row_no or 0))
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    run = ReconciliationRun(
        bank_code=bank_code,
        statement_date=day,
        source=statement.source,
        statement_sm3=sm3(statement.content).hex(),
        complete=statement.complete,
        line_count=data_rows,
        counts=counts,
        unresolved=sum(1 for item in items if item.status not in RESOLVED_STATUSES),
        closing_balance_fen=balances[0],
        ledger_balance_fen=balances[1],
        actor=actor,
        started_at=started_at,
        finished_at=rt.clock(),
        items=[_row(item) for item in items],
    )
    with rt.db.uow() as uow:
        uow.session.add(run)
        uow.session.flush()
        reconciliation_exceptions.record(uow.session, run, [item.key for item in items])
        uow.commit()
        return run.id


def _direction_without_line(item: Item) -> str | None:
    """A payout the statement lacks is a debit, an arrival posting it lacks a credit, the balance neither."""
    return "debit" if item.payout_id else "credit" if item.bank_reference else None


def _row(item: Item) -> ReconciliationItem:
    line = item.line
    return ReconciliationItem(
        row_no=item.row_no,
        status=item.status,
        resolved=item.status in RESOLVED_STATUSES,
        direction=line.direction if line else _direction_without_line(item),
        bank_reference=line.bank_reference if line else item.bank_reference,
        account_no=line.account_no if line else None,
        amount_fen=line.amount_fen if line else item.amount_fen,
        our_amount_fen=item.our_amount_fen,
        counterparty_name=line.counterparty_name[:128] if line else None,
        payout_id=item.payout_id,
        deal_no=item.deal_no,
        booked_at=line.booked_at if line else None,
        detail=item.detail,
    )


# --- reading runs ---------------------------------------------------------------------------------


def list_runs(rt: Runtime, limit: int = 100) -> list[ReconciliationRun]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)))


def load_run(rt: Runtime, run_id: int) -> ReconciliationRun:
    with rt.db.uow() as uow:
        run = uow.session.scalar(
            select(ReconciliationRun)
            .options(selectinload(ReconciliationRun.items).selectinload(ReconciliationItem.exception))
            .where(ReconciliationRun.id == run_id)
        )
        if run is None:
            raise NotFound("对账记录不存在", details={"run": run_id})
        return run
