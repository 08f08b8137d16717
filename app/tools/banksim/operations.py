"""What the simulated bank does: accept requests, open accounts and settle payouts once due, take payments in,
write daily statements.

Every change and the callback it causes are written in the same transaction (the outbox), so a
crash can lose neither; the delivery thread sends the callbacks later. Fault controls decide, in
that same transaction, whether a callback is dropped, duplicated, held back or delayed.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from app.banks.gateway import PayoutRequest
from app.banks.protocol import encode_json
from app.tools.banksim.banks import SIMULATED_BANKS, SimulatedBank
from app.tools.banksim.errors import account_not_found, conflict, not_found, operation_refused
from app.tools.banksim.fault_plan import fault_happens, plan_notification
from app.tools.banksim.faults import FaultSettings
from app.tools.banksim.limits import check_opening_limits
from app.tools.banksim.statements import StatementFile, StatementLine, day_bounds, render_statement
from app.tools.banksim.store import Account, Arrival, NewDelivery, Payout, Store, Transaction

INSUFFICIENT_BALANCE = "余额不足"
PAYEE_REFUSED = "收款账户状态异常，收款行退回"  # the payout_failure fault
_ACCOUNT_NO_ATTEMPTS = 20


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _new_bank_reference(bank: SimulatedBank, kind: str, now: float) -> str:
    """E.g. CEBI20250101083000A1B2C3D4: bank, kind (I inbound, P payout), UTC time, 32 random bits."""
    return f"{bank.code.upper()}{kind}{datetime.fromtimestamp(now, UTC):%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}"


@dataclass(frozen=True)
class DesignatedPayer:
    """The only payer an account expects (指定付款人); others' money still arrives, flagged as not matching."""

    payer_name: str
    payer_account: str

    def matches(self, payer_name: str, payer_account: str) -> bool:
        return payer_account == self.payer_account and payer_name.strip() == self.payer_name.strip()


def _enqueue_notification(
    tx: Transaction, bank_code: str, notify_url: str, notification_type: str, fields: dict[str, Any], now: float
) -> None:
    notification_id = uuid.uuid4().hex
    body = encode_json({"notification_id": notification_id, "type": notification_type, **fields})
    plan = plan_notification(tx, bank_code, now)
    delivery = NewDelivery(
        bank_code=bank_code,
        notification_id=notification_id,
        copy=0,
        type=notification_type,
        notify_url=notify_url,
        body=body,
        status="dropped" if plan.dropped else "pending",
        ordered=int(plan.ordered),
        created_at=now,
        next_attempt_at=plan.first_attempt_at,
    )
    tx.enqueue_delivery(delivery)
    if plan.duplicated:
        tx.enqueue_delivery(replace(delivery, copy=1))


def _free_account_no(tx: Transaction, bank: SimulatedBank) -> str:
    for _ in range(_ACCOUNT_NO_ATTEMPTS):
        number = bank.new_account_no()
        if not tx.account_no_taken(number):
            return number
    raise RuntimeError(f"no free account number for bank {bank.code} after {_ACCOUNT_NO_ATTEMPTS} attempts")


class BankOperations:
    def __init__(
        self,
        store: Store,
        *,
        open_delay_s: float,
        payout_delay_s: float,
        clock: Callable[[], float] = time.time,
        banks: Mapping[str, SimulatedBank] = SIMULATED_BANKS,
    ) -> None:
        self.store = store
        self.banks = banks  # the banks this simulator plays, by code
        self.open_delay_s = open_delay_s
        self.payout_delay_s = payout_delay_s
        self.clock = clock

    def request_account(
        self,
        bank: SimulatedBank,
        request_id: str,
        account_name: str,
        notify_url: str,
        designated_payer: DesignatedPayer | None = None,
    ) -> Account:
        """Idempotent on request_id: a repeat with the same content changes nothing; other content is a conflict.

        A new request beyond the bank's opening limits is refused (429, the bank's own code) and not stored.
        The request is stamped inside the transaction (one writer at a time): stamps follow the order the
        limiter sees them, so "the requests stamped within the last second" are exactly those it counts (a stamp
        taken before waiting for the lock let a request count others stamped after it, and refuse a pace within
        the limit).
        """
        with self.store.transaction() as tx:
            now = self.clock()
            requested = Account(
                bank_code=bank.code,
                request_id=request_id,
                account_name=account_name,
                notify_url=notify_url,
                status="opening",
                account_no=None,
                balance_fen=0,
                requested_at=now,
                due_at=now + self.open_delay_s,
                opened_at=None,
                designated_payer_name=designated_payer.payer_name if designated_payer else None,
                designated_payer_account=designated_payer.payer_account if designated_payer else None,
            )
            if tx.account_by_request(bank.code, request_id) is None:
                check_opening_limits(tx, bank, now)
            stored = tx.add_account_request(requested)
        if _request_content(stored) != _request_content(requested):
            raise conflict(f"开户申请编号 {request_id} 已使用，且内容不同", details={"request_id": request_id})
        return stored

    def submit_payout(self, bank: SimulatedBank, order: PayoutRequest) -> Payout:
        """Idempotent on payout_id: same content answers the stored payout; other content is a conflict."""
        now = self.clock()
        with self.store.transaction() as tx:
            if tx.open_account(bank.code, order.account_no) is None:
                raise account_not_found(bank.code, order.account_no)
            stored = tx.add_payout(
                Payout(
                    bank_code=bank.code,
                    bank_reference=_new_bank_reference(bank, "P", now),
                    status="processing",
                    failure_reason=None,
                    created_at=now,
                    due_at=now + self.payout_delay_s,
                    finished_at=None,
                    **asdict(order),
                )
            )
        if PayoutRequest(**{name: getattr(stored, name) for name in asdict(order)}) != order:
            raise conflict(f"付款编号 {order.payout_id} 已使用，且内容不同", details={"payout_id": order.payout_id})
        return stored

    def faults(self, bank: SimulatedBank) -> FaultSettings:
        with self.store.transaction() as tx:
            return tx.faults(bank.code)

    def fault_strikes(self, bank: SimulatedBank, stream: Literal["payout_timeout", "error_5xx"]) -> bool:
        """One seeded draw of a request-level fault for this bank."""
        with self.store.transaction() as tx:
            return fault_happens(tx, bank.code, stream)

    def statement(self, bank: SimulatedBank, day: date) -> StatementFile:
        """Every credit (arrival) and debit (succeeded payout) booked on `day` (Asia/Shanghai), and the
        closing balance of the bank's accounts at the end of that day."""
        start, end = day_bounds(day)
        with self.store.transaction() as tx:
            credits = [_credit_line(arrival) for arrival in tx.arrivals_between(bank.code, start, end)]
            debits = [_debit_line(payout) for payout in tx.payouts_succeeded_between(bank.code, start, end)]
            closing_fen = _closing_balance(tx, bank.code, end)
        return render_statement(bank.statement, credits + debits, closing_fen)

    def account(self, bank: SimulatedBank, request_id: str) -> Account:
        with self.store.transaction() as tx:
            stored = tx.account_by_request(bank.code, request_id)
        if stored is None:
            raise not_found(f"开户申请 {request_id} 不存在")
        return stored

    def payout(self, bank: SimulatedBank, payout_id: str) -> Payout:
        with self.store.transaction() as tx:
            stored = tx.payout(bank.code, payout_id)
        if stored is None:
            raise not_found(f"付款 {payout_id} 不存在")
        return stored

    def freeze(self, bank: SimulatedBank, request_id: str, account_name: str, amount_fen: int) -> Account:
        """Freeze a customer's money for a guarantee (`POST /v1/freezes`): an open account holding it, named in
        the bank's signed receipt (no notification). The same request again gets the same account; with other
        content, CONFLICT. The `freeze_refusal` fault refuses it (the customer's money is not there)."""
        assert amount_fen > 0, amount_fen
        now = self.clock()
        with self.store.transaction() as tx:
            stored = tx.account_by_request(bank.code, request_id)
            refused = stored is None and fault_happens(tx, bank.code, "freeze_refusal")
            if stored is None and not refused:
                account_no = _free_account_no(tx, bank)
                frozen = Account(bank.code, request_id, account_name, "", "open", account_no, amount_fen, now, now, now)
                stored = tx.add_account_request(frozen)
        if refused or stored is None:
            raise operation_refused("FREEZE_REFUSED", "客户账户可用余额不足，银行拒绝冻结", request_id)
        if (stored.account_name, stored.balance_fen) != (account_name, amount_fen):
            raise conflict(f"冻结申请编号 {request_id} 已使用，且内容不同", details={"request_id": request_id})
        return stored

    def unfreeze(self, bank: SimulatedBank, request_id: str, account_no: str, amount_fen: int) -> Account:
        """Lift a freeze (`POST /v1/unfreezes`): the frozen account must hold the amount; asked again, the same
        answer."""
        with self.store.transaction() as tx:
            account = tx.open_account(bank.code, account_no)
        if account is None:
            raise account_not_found(bank.code, account_no)
        if account.balance_fen < amount_fen:
            raise operation_refused("UNFREEZE_REFUSED", "冻结账户余额不足，银行拒绝解冻", request_id)
        return account

    def pay_in(
        self, bank: SimulatedBank, account_no: str, amount_fen: int, payer_name: str, payer_account: str
    ) -> tuple[Arrival, int]:
        """Credit an open account and queue `funds_arrived`; returns the arrival and the new balance."""
        assert amount_fen > 0, amount_fen
        now = self.clock()
        with self.store.transaction() as tx:
            account = tx.open_account(bank.code, account_no)
            if account is None:
                raise account_not_found(bank.code, account_no)
            designated = _designated_payer(account)
            arrival = Arrival(
                bank_code=bank.code,
                bank_reference=_new_bank_reference(bank, "I", now),
                account_no=account_no,
                amount_fen=amount_fen,
                payer_name=payer_name,
                payer_account=payer_account,
                arrived_at=now,
                designated_payer_matched=None if designated is None else designated.matches(payer_name, payer_account),
            )
            tx.add_arrival(arrival)
            balance_fen = tx.change_balance(bank.code, account_no, amount_fen)
            fields = {
                "bank_reference": arrival.bank_reference,
                "account_no": account_no,
                "amount_fen": amount_fen,
                "payer_name": payer_name,
                "payer_account": payer_account,
                "arrived_at": rfc3339(now),
            }
            if arrival.designated_payer_matched is not None:
                fields["designated_payer_matched"] = arrival.designated_payer_matched
            _enqueue_notification(tx, bank.code, account.notify_url, "funds_arrived", fields, now)
        return arrival, balance_fen

    def run_due(self) -> None:
        """Open the accounts and settle the payouts whose delay has passed."""
        now = self.clock()
        with self.store.transaction() as tx:
            for account in tx.accounts_due(now):
                self._open(tx, account, now)
            for payout in tx.payouts_due(now):
                self._settle(tx, payout, now)

    def _open(self, tx: Transaction, account: Account, now: float) -> None:
        account_no = _free_account_no(tx, self.banks[account.bank_code])
        tx.mark_account_open(account.bank_code, account.request_id, account_no, now)
        fields = {"request_id": account.request_id, "account_no": account_no, "account_name": account.account_name}
        _enqueue_notification(tx, account.bank_code, account.notify_url, "account_opened", fields, now)

    def _settle(self, tx: Transaction, payout: Payout, now: float) -> None:
        account = tx.open_account(payout.bank_code, payout.account_no)
        assert account is not None, "payouts are accepted only for open accounts, which never close"
        if account.balance_fen < payout.amount_fen:
            status, reason = "failed", INSUFFICIENT_BALANCE
        elif fault_happens(tx, payout.bank_code, "payout_failure"):
            status, reason = "failed", PAYEE_REFUSED
        else:
            tx.change_balance(payout.bank_code, payout.account_no, -payout.amount_fen)
            status, reason = "succeeded", None
        tx.finish_payout(payout, status, reason, now)
        fields = {
            "payout_id": payout.payout_id,
            "bank_reference": payout.bank_reference,
            "status": status,
            "failure_reason": reason,
        }
        _enqueue_notification(tx, payout.bank_code, payout.notify_url, "payout_result", fields, now)


def _closing_balance(tx: Transaction, bank_code: str, end: float) -> int:
    """The sum of the balances of the bank's accounts at `end`: today's balances less what moved since (an
    account opened since held nothing then)."""
    balances = {
        account.account_no: account.balance_fen
        for account in tx.accounts(bank_code)
        if account.account_no is not None and account.opened_at is not None and account.opened_at < end
    }
    came_since = sum(a.amount_fen for a in tx.arrivals(bank_code) if a.arrived_at >= end and a.account_no in balances)
    paid_since = sum(
        payout.amount_fen
        for payout in tx.payouts(bank_code)
        if payout.status == "succeeded" and (payout.finished_at or 0) >= end and payout.account_no in balances
    )
    return sum(balances.values()) - came_since + paid_since


def _request_content(account: Account) -> tuple[str | None, ...]:
    fields = ("account_name", "notify_url", "designated_payer_name", "designated_payer_account")
    return tuple(getattr(account, name) for name in fields)


def _designated_payer(account: Account) -> DesignatedPayer | None:
    if account.designated_payer_name is None or account.designated_payer_account is None:
        return None
    return DesignatedPayer(account.designated_payer_name, account.designated_payer_account)


def _credit_line(arrival: Arrival) -> StatementLine:
    return StatementLine(
        bank_reference=arrival.bank_reference,
        booked_at=arrival.arrived_at,
        direction="credit",
        amount_fen=arrival.amount_fen,
        account_no=arrival.account_no,
        counterparty_name=arrival.payer_name,
        counterparty_account=arrival.payer_account,
        payout_id="",
    )


def _debit_line(payout: Payout) -> StatementLine:
    assert payout.finished_at is not None, payout.payout_id
    return StatementLine(
        bank_reference=payout.bank_reference,
        booked_at=payout.finished_at,
        direction="debit",
        amount_fen=payout.amount_fen,
        account_no=payout.account_no,
        counterparty_name=payout.payee_name,
        counterparty_account=payout.payee_account,
        payout_id=payout.payout_id,
    )
