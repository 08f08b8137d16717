"""A batch of ledger operations planned in memory, free of storage (after TigerBeetle's state machine).

The storage layer loads the accounts and the transfers a batch refers to, hands them to `plan_batch`,
and writes what the plan says in one transaction. Each operation gets its own result: one failing
operation fails only itself, or its linked chain, never the batch.

Hot accounts are not row-locked for postings that can only make them safer (an asset that must not go
below zero receiving debits, an income account receiving credits): such postings become deltas that are
appended to a buffer and folded into the account later. Everything else on a hot account takes the
row lock, folds the buffer first and is checked against the exact balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.domain.ledger import AccountSpec, TransferSpec, balance_of, flag_violation

TOTALS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
RESOLUTIONS = ("post_pending", "void_pending")
POSTED_KINDS = ("single", "post_pending")
MESSAGES = {  # what a refused operation says (a broken flag says more: `flag_violation`)
    "UNKNOWN_ACCOUNT": "账户不存在",
    "PENDING_NOT_FOUND": "冻结分录不存在",
    "PENDING_ALREADY_RESOLVED": "该冻结已处理，不能重复入账或解冻",
    "BAD_AMOUNT": "入账金额必须大于零且不超过冻结金额",
    "TRANSFER_ID_CONFLICT": "同一记账编号的内容不一致",
}


@dataclass(frozen=True)
class LedgerOp:
    """One request: post a transfer, place a hold, or post / void a hold. `linked` joins it to the next."""

    kind: str  # single | pending | post_pending | void_pending
    id: str
    at: datetime
    spec: TransferSpec | None = None
    pending_id: str | None = None
    amount_fen: int | None = None
    timeout_at: datetime | None = None
    linked: bool = False

    @classmethod
    def post(cls, spec: TransferSpec, at: datetime, *, linked: bool = False) -> LedgerOp:
        return cls("single", spec.id, at, spec=spec, linked=linked)

    @classmethod
    def hold(cls, spec: TransferSpec, at: datetime, timeout_at: datetime | None = None) -> LedgerOp:
        return cls("pending", spec.id, at, spec=spec, timeout_at=timeout_at)

    @classmethod
    def resolve(
        cls, kind: str, transfer_id: str, pending_id: str, at: datetime, amount_fen: int | None = None
    ) -> LedgerOp:
        return cls(kind, transfer_id, at, pending_id=pending_id, amount_fen=amount_fen)


@dataclass(frozen=True)
class StoredTransfer:
    id: str
    kind: str
    debit_account_id: int
    credit_account_id: int
    amount_fen: int
    code: str
    pending_id: str | None
    deal_id: int | None


@dataclass(frozen=True)
class TransferRecord:
    """A transfer as an operation wrote or found it: what the repository hands its caller (no ORM object,
    no statement to build it)."""

    id: str
    debit_account_id: int
    credit_account_id: int
    amount_fen: int
    code: str
    kind: str
    pending_id: str | None
    timeout_at: datetime | None
    deal_id: int | None
    created_at: datetime


@dataclass
class AccountState:
    """An account as the batch sees it. When `buffered`, the totals are deltas for the hot buffer."""

    id: int
    code: str
    type: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    hot: bool
    alert_below_fen: int | None
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0
    buffered: bool = False

    @property
    def spec(self) -> AccountSpec:
        return AccountSpec(
            self.code, self.type, self.code, self.debits_must_not_exceed_credits, self.credits_must_not_exceed_debits
        )

    def totals(self) -> tuple[int, int, int, int]:
        return (self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending)

    def set_totals(self, values: tuple[int, int, int, int]) -> None:
        self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending = values

    def projected_fen(self) -> int:
        """The balance left if every hold in flight is posted (what a low-balance alert watches)."""
        if self.credits_must_not_exceed_debits:
            return self.debits_posted - self.credits_posted - self.credits_pending
        if self.debits_must_not_exceed_credits:
            return self.credits_posted - self.debits_posted - self.debits_pending
        return balance_of(self.type, self.debits_posted, self.credits_posted)


def guards_side(account: AccountState, side: str) -> bool:
    """True when growth on `side` ("debit" or "credit") is what the account's flag limits."""
    if side == "debit":
        return account.debits_must_not_exceed_credits
    return account.credits_must_not_exceed_debits


def can_buffer(account: AccountState, side: str, kind: str) -> bool:
    """A posting to a hot account that cannot break its flag needs no row lock."""
    return account.hot and kind == "single" and not guards_side(account, side)


@dataclass(frozen=True)
class OpResult:
    id: str
    status: str  # created | exists | an error code
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] | None = field(default=None, compare=False)  # the transfer as written, when created

    @property
    def ok(self) -> bool:
        return self.status in ("created", "exists")


class OpFailed(Exception):
    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


@dataclass
class Plan:
    results: list[OpResult]
    rows: list[dict[str, Any]]  # new transfers, in order
    changed: set[int]  # ids of accounts whose totals moved
    refused_on: set[int]  # accounts whose flag refused an operation (for alerts)


class _Batch:
    def __init__(
        self,
        by_code: dict[str, AccountState],
        existing: dict[str, StoredTransfer],
        resolved: dict[str, str],
    ) -> None:
        self.by_code = by_code
        self.by_id = {account.id: account for account in by_code.values()}
        self.known = dict(existing)
        self.resolved = dict(resolved)
        self.rows: list[dict[str, Any]] = []
        self.changed: set[int] = set()
        self.refused_on: set[int] = set()
        self._undo: list[tuple[AccountState, tuple[int, int, int, int]]] = []
        self._added: list[str] = []
        self._resolved_added: list[str] = []

    # --- chains -------------------------------------------------------------------------------
    def begin_chain(self) -> int:
        self._undo, self._added, self._resolved_added = [], [], []
        return len(self.rows)

    def rollback_chain(self, mark: int) -> None:
        for account, totals in reversed(self._undo):
            account.set_totals(totals)
        for transfer_id in self._added:
            del self.known[transfer_id]
        for pending_id in self._resolved_added:
            del self.resolved[pending_id]
        del self.rows[mark:]

    # --- one operation ------------------------------------------------------------------------
    def run(self, op: LedgerOp) -> str:
        stored = self.known.get(op.id)
        if stored is not None:
            self._assert_same(stored, op)
            return "exists"
        if op.kind in RESOLUTIONS:
            self._resolve(op)
        else:
            self._record(op)
        return "created"

    def _account(self, code: str) -> AccountState:
        account = self.by_code.get(code)
        if account is None:
            raise OpFailed("UNKNOWN_ACCOUNT", MESSAGES["UNKNOWN_ACCOUNT"], account=code)
        return account

    def _record(self, op: LedgerOp) -> None:
        assert op.spec is not None
        debit, credit = self._account(op.spec.debit_code), self._account(op.spec.credit_code)
        column = "pending" if op.kind == "pending" else "posted"
        self._move(debit, credit, {column: op.spec.amount_fen})
        self._add(
            id=op.id,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount_fen=op.spec.amount_fen,
            code=op.spec.code,
            kind=op.kind,
            pending_id=None,
            timeout_at=op.timeout_at,
            deal_id=op.spec.deal_id,
            created_at=op.at,
        )

    def _resolve(self, op: LedgerOp) -> None:
        assert op.pending_id is not None
        pending = self.known.get(op.pending_id)
        if pending is None or pending.kind != "pending":
            raise OpFailed("PENDING_NOT_FOUND", MESSAGES["PENDING_NOT_FOUND"], pending_id=op.pending_id)
        if op.pending_id in self.resolved:
            raise OpFailed(
                "PENDING_ALREADY_RESOLVED",
                MESSAGES["PENDING_ALREADY_RESOLVED"],
                pending_id=op.pending_id,
                by=self.resolved[op.pending_id],
            )
        amount = pending.amount_fen if op.amount_fen is None else op.amount_fen
        if op.kind == "post_pending" and not 0 < amount <= pending.amount_fen:
            raise OpFailed("BAD_AMOUNT", MESSAGES["BAD_AMOUNT"], pending_fen=pending.amount_fen, amount_fen=amount)
        debit, credit = self.by_id[pending.debit_account_id], self.by_id[pending.credit_account_id]
        posted = amount if op.kind == "post_pending" else 0
        self._move(debit, credit, {"pending": -pending.amount_fen, "posted": posted})
        self.resolved[op.pending_id] = op.id
        self._resolved_added.append(op.pending_id)
        self._add(
            id=op.id,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount_fen=amount,
            code=pending.code,
            kind=op.kind,
            pending_id=op.pending_id,
            timeout_at=None,
            deal_id=pending.deal_id,
            created_at=op.at,
        )

    def _move(self, debit: AccountState, credit: AccountState, deltas: dict[str, int]) -> None:
        after = {}
        for account, side in ((debit, "debits"), (credit, "credits")):
            values = dict(zip(TOTALS, account.totals(), strict=True))
            for column, delta in deltas.items():
                values[f"{side}_{column}"] += delta
            if not account.buffered:
                problem = flag_violation(account.spec, *values.values())
                if problem is not None:
                    self.refused_on.add(account.id)
                    raise OpFailed("BALANCE_CONSTRAINT", problem, account=account.code)
            after[account.id] = (account, tuple(values.values()))
        for account, values in after.values():
            self._undo.append((account, account.totals()))
            account.set_totals(values)  # type: ignore[arg-type]
            self.changed.add(account.id)

    def _add(self, **row: Any) -> None:
        self.rows.append(row)
        self.known[row["id"]] = StoredTransfer(
            row["id"],
            row["kind"],
            row["debit_account_id"],
            row["credit_account_id"],
            row["amount_fen"],
            row["code"],
            row["pending_id"],
            row["deal_id"],
        )
        self._added.append(row["id"])

    def _assert_same(self, stored: StoredTransfer, op: LedgerOp) -> None:
        if op.kind in RESOLUTIONS:
            same = stored.kind == op.kind and stored.pending_id == op.pending_id
            same = same and (op.amount_fen is None or stored.amount_fen == op.amount_fen)
        else:
            assert op.spec is not None
            debit, credit = self.by_code.get(op.spec.debit_code), self.by_code.get(op.spec.credit_code)
            same = (
                stored.kind == op.kind
                and debit is not None
                and credit is not None
                and (stored.debit_account_id, stored.credit_account_id) == (debit.id, credit.id)
                and stored.amount_fen == op.spec.amount_fen
                and stored.code == op.spec.code
            )
        if not same:
            raise OpFailed("TRANSFER_ID_CONFLICT", MESSAGES["TRANSFER_ID_CONFLICT"], id=op.id)


def plan_batch(
    ops: list[LedgerOp],
    accounts: dict[str, AccountState],
    existing: dict[str, StoredTransfer],
    resolved: dict[str, str],
) -> Plan:
    """Apply `ops` in order to `accounts` (mutated in place). `existing` holds the stored transfers the
    ops name (their own ids and the holds they resolve); `resolved` maps pending id -> resolving id."""
    batch = _Batch(accounts, existing, resolved)
    results: list[OpResult] = []
    chain: list[LedgerOp] = []
    for index, op in enumerate(ops):
        chain.append(op)
        if op.linked and index < len(ops) - 1:
            continue
        results.extend(_run_chain(batch, chain))
        chain = []
    return Plan(results, batch.rows, batch.changed, batch.refused_on)


def _run_chain(batch: _Batch, chain: list[LedgerOp]) -> list[OpResult]:
    mark = batch.begin_chain()
    statuses: list[str] = []
    for position, op in enumerate(chain):
        if op.linked and position == len(chain) - 1:
            failure = OpFailed("LINKED_CHAIN_OPEN", "关联记账组没有结束", id=op.id)
        else:
            try:
                statuses.append(batch.run(op))
                continue
            except OpFailed as error:
                failure = error
        batch.rollback_chain(mark)
        return [
            OpResult(other.id, failure.code, failure.message, failure.details)
            if other is op
            else OpResult(other.id, "LINKED_OP_FAILED", "同组记账失败，本笔未记", {"failed": op.id})
            for other in chain
        ]
    return [OpResult(op.id, status) for op, status in zip(chain, statuses, strict=True)]
