"""A small deterministic in-process bank for the seeded fault simulation (`app/tools/vopr/vopr.py`).

It implements the `BankGateway` methods the platform's jobs call (`open_virtual_account`, `submit_payout`,
`query_payout`) and keeps its own books: opened accounts, arrivals, payouts and how many times each payout
id was *booked* (more than once is a double payout). It misbehaves on purpose, decided by the seed's
random generator: unreachable (nothing done), timeouts after booking (`BankOutcomeUnknown` although the
money moved), requests lost in flight (`BankOutcomeUnknown`, nothing booked), rate limits and rejections.
Notifications are queued in `outbox`; the simulator delivers them (or drops, duplicates, reorders, delays).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.banks.gateway import (
    AccountOpening,
    BankOutcomeUnknown,
    BankRateLimited,
    BankRejected,
    BankUnavailable,
    DesignatedPayer,
    PayoutRequest,
    PayoutStatus,
)
from app.banks.registry import configured_banks
from app.pdf.sign import sign_digest


class ProcessDied(BaseException):
    """Raised into the platform's code right after the bank booked something: the calling process is gone."""


@dataclass
class Faults:
    """Probabilities of each misbehaviour (0 everywhere: a healthy bank, as in the final reconciliation)."""

    unavailable: float = 0.08
    timeout_after_booking: float = 0.12
    lost_in_flight: float = 0.05
    rate_limited: float = 0.03
    rejected: float = 0.02
    payout_fails: float = 0.25

    @classmethod
    def none(cls) -> Faults:
        return cls(0, 0, 0, 0, 0, 0)


@dataclass
class BankAccount:
    request_id: str
    account_no: str
    account_name: str
    designated_payer: DesignatedPayer | None
    balance_fen: int = 0


@dataclass
class BankPayout:
    payout_id: str
    account_no: str
    amount_fen: int
    payee_account: str
    bank_reference: str
    status: str = "processing"  # processing | succeeded | failed
    failure_reason: str | None = None


@dataclass
class Arrival:
    bank_reference: str
    account_no: str
    amount_fen: int
    payer_name: str
    payer_account: str
    matched: bool | None


@dataclass
class Delivery:
    """A notification the bank owes the platform, due at `due` (bank time)."""

    body: dict[str, Any]
    due: datetime


@dataclass
class FakeBank:
    code: str
    rng: random.Random
    clock: Any  # a callable returning the bank's datetime
    faults: Faults = field(default_factory=Faults)
    accounts: dict[str, BankAccount] = field(default_factory=dict)  # by request_id
    payouts: dict[str, BankPayout] = field(default_factory=dict)  # by payout_id
    bookings: dict[str, int] = field(default_factory=dict)  # payout_id -> times money was booked for it
    submissions: dict[str, int] = field(default_factory=dict)  # payout_id -> times it was submitted
    die_after_next_call: bool = False  # the caller's process dies right after the bank answers
    arrivals: list[Arrival] = field(default_factory=list)
    outbox: list[Delivery] = field(default_factory=list)
    dropped: list[Delivery] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    _serial: int = 0
    max_delay_s: float = 90.0
    seal: tuple[bytes, bytes, bytes] | None = None  # the bank's own seal key, certificate and GB/T 38540 seal

    # --- helpers ------------------------------------------------------------------------------------

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def _roll(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p

    def _notify(self, kind: str, **fields: Any) -> None:
        body = {"notification_id": f"{self.rng.getrandbits(128):032x}", "type": kind, **fields}
        delay = self.rng.uniform(0, self.max_delay_s) if self.max_delay_s else 0.0
        self.outbox.append(Delivery(body, self.clock() + timedelta(seconds=delay)))

    def account_by_no(self, account_no: str) -> BankAccount | None:
        return next((a for a in self.accounts.values() if a.account_no == account_no), None)

    def _maybe_die(self) -> None:
        if self.die_after_next_call:
            self.die_after_next_call = False
            raise ProcessDied

    # --- the gateway ----------------------------------------------------------------------------------

    def open_virtual_account(
        self, request_id: str, account_name: str, notify_url: str, designated_payer: DesignatedPayer | None = None
    ) -> None:
        if self._roll(self.faults.unavailable):
            self.log.append(f"open {request_id}: unavailable")
            raise BankUnavailable("模拟银行不可达", details={"bank": self.code})
        if self._roll(self.faults.rate_limited):
            self.log.append(f"open {request_id}: 429")
            raise BankRateLimited("模拟限流", code="RATE_LIMITED", retry_after_s=2.0, details={"bank": self.code})
        if self._roll(self.faults.lost_in_flight):
            self.log.append(f"open {request_id}: lost in flight")
            raise BankOutcomeUnknown("模拟请求丢失", details={"bank": self.code})
        if request_id not in self.accounts:  # the bank dedupes on request_id
            account_no = configured_banks()[self.code].account_format.account_no(self._next())
            self.accounts[request_id] = BankAccount(request_id, account_no, account_name, designated_payer)
            self._notify("account_opened", request_id=request_id, account_no=account_no, account_name=account_name)
            self.log.append(f"open {request_id}: booked {account_no}")
        self._maybe_die()
        if self._roll(self.faults.timeout_after_booking):
            self.log.append(f"open {request_id}: timeout after booking")
            raise BankOutcomeUnknown("模拟应答超时", details={"bank": self.code})

    def query_virtual_account(self, request_id: str) -> AccountOpening:
        if self._roll(self.faults.unavailable):
            raise BankUnavailable("模拟银行不可达", details={"bank": self.code})
        account = self.accounts.get(request_id)
        if account is None:
            raise BankRejected("开户申请不存在", code="NOT_FOUND", details={"request_id": request_id})
        return AccountOpening(request_id, "open", account.account_no, account.account_name)

    def submit_payout(self, payout: PayoutRequest) -> str:
        if self._roll(self.faults.unavailable):
            self.log.append(f"submit {payout.payout_id}: unavailable")
            raise BankUnavailable("模拟银行不可达", details={"bank": self.code})
        if self._roll(self.faults.lost_in_flight):
            self.log.append(f"submit {payout.payout_id}: lost in flight")
            raise BankOutcomeUnknown("模拟请求丢失", details={"bank": self.code})
        if self._roll(self.faults.rejected):
            self.log.append(f"submit {payout.payout_id}: rejected")
            raise BankRejected("模拟拒绝：收款账户状态异常", code="PAYEE_INVALID", details={"bank": self.code})
        self.submissions[payout.payout_id] = self.submissions.get(payout.payout_id, 0) + 1
        existing = self.payouts.get(payout.payout_id)
        if existing is not None and (existing.account_no, existing.amount_fen, existing.payee_account) != (
            payout.account_no,
            payout.amount_fen,
            payout.payee_account,
        ):
            self.log.append(f"submit {payout.payout_id}: conflict")
            raise BankRejected("付款编号已使用，且内容不同", code="CONFLICT", details={"payout_id": payout.payout_id})
        if existing is None:  # idempotent on payout_id (protocol v1): a repeat answers the same, never pays twice
            self.bookings[payout.payout_id] = self.bookings.get(payout.payout_id, 0) + 1
            existing = BankPayout(
                payout.payout_id,
                payout.account_no,
                payout.amount_fen,
                payout.payee_account,
                f"{self.code.upper()}P{self._next():010d}",
            )
            self.payouts[payout.payout_id] = existing
        self.log.append(f"submit {payout.payout_id}: accepted ({self.submissions[payout.payout_id]}x)")
        self._maybe_die()
        if self._roll(self.faults.timeout_after_booking):
            self.log.append(f"submit {payout.payout_id}: timeout after booking")
            raise BankOutcomeUnknown("模拟应答超时（银行已受理）", details={"bank": self.code})
        return existing.bank_reference

    def query_payout(self, payout_id: str) -> PayoutStatus:
        if self._roll(self.faults.unavailable):
            raise BankUnavailable("模拟银行不可达", details={"bank": self.code})
        payout = self.payouts.get(payout_id)
        if payout is None:
            raise BankRejected("付款不存在", code="NOT_FOUND", details={"payout_id": payout_id})
        return PayoutStatus(payout_id, payout.status, payout.bank_reference, payout.failure_reason)  # type: ignore[arg-type]

    def request_signature(self, request_id: str, document_sm3: bytes, purpose: str) -> bytes:
        """Sign with the bank's own seal (no faults drawn: the simulation's money paths keep their random draws)."""
        if self.seal is None:
            raise BankRejected("模拟银行没有签章密钥", code="NO_SEAL", details={"request_id": request_id})
        self.log.append(f"sign {request_id}: {purpose}")
        key, certificate, ses_seal = self.seal
        return sign_digest(document_sm3, key, certificate, self.clock(), seal=ses_seal)

    # --- the bank's own doings ----------------------------------------------------------------------

    def pay_in(self, account_no: str, amount_fen: int, payer_name: str, payer_account: str) -> Arrival:
        """Someone pays into a virtual account: booked now, notified later."""
        account = self.account_by_no(account_no)
        assert account is not None, f"no account {account_no} at the fake bank"
        matched = None
        if account.designated_payer is not None:
            matched = payer_account == account.designated_payer.payer_account
        account.balance_fen += amount_fen
        arrival = Arrival(
            f"{self.code.upper()}I{self._next():010d}", account_no, amount_fen, payer_name, payer_account, matched
        )
        self.arrivals.append(arrival)
        fields: dict[str, Any] = {
            "bank_reference": arrival.bank_reference,
            "account_no": account_no,
            "amount_fen": amount_fen,
            "payer_name": payer_name,
            "payer_account": payer_account,
            "arrived_at": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if matched is not None:
            fields["designated_payer_matched"] = matched
        self._notify("funds_arrived", **fields)
        self.log.append(f"pay_in {arrival.bank_reference} {account_no} {amount_fen} matched={matched}")
        return arrival

    def processing(self) -> list[BankPayout]:
        return [p for p in self.payouts.values() if p.status == "processing"]

    def settle(self, payout: BankPayout) -> None:
        """The bank finishes a booked payout: paid, or failed (with a reason), then notifies."""
        account = self.account_by_no(payout.account_no)
        assert account is not None
        if account.balance_fen < payout.amount_fen:
            payout.status, payout.failure_reason = "failed", "余额不足"
        elif self._roll(self.faults.payout_fails):
            payout.status, payout.failure_reason = "failed", "收款户名与账号不符"
        else:
            payout.status = "succeeded"
            account.balance_fen -= payout.amount_fen
        fields: dict[str, Any] = {
            "payout_id": payout.payout_id,
            "bank_reference": payout.bank_reference,
            "status": payout.status,
            "failure_reason": payout.failure_reason,
        }
        self._notify("payout_result", **fields)
        self.log.append(f"settle {payout.payout_id}: {payout.status}")

    # --- totals for the invariants ------------------------------------------------------------------

    @property
    def arrived_fen(self) -> int:
        return sum(a.amount_fen for a in self.arrivals)

    @property
    def paid_out_fen(self) -> int:
        return sum(p.amount_fen for p in self.payouts.values() if p.status == "succeeded")
