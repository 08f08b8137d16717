"""The simulator's own SQLite database: accounts, payouts, arrivals, the callback outbox and seen nonces.

Every unit of work runs in `Store.transaction()` (BEGIN IMMEDIATE, so concurrent writers queue up);
rows come back as frozen dataclasses whose fields are the column names. Times are Unix seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    bank_code TEXT NOT NULL,
    request_id TEXT NOT NULL,
    account_name TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('opening', 'open')),
    account_no TEXT UNIQUE,
    balance_fen INTEGER NOT NULL DEFAULT 0 CHECK (balance_fen >= 0),
    requested_at REAL NOT NULL,
    due_at REAL NOT NULL,
    opened_at REAL,
    PRIMARY KEY (bank_code, request_id),
    CHECK ((status = 'open') = (account_no IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS payouts (
    bank_code TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    account_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    payee_name TEXT NOT NULL,
    payee_account TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    failure_reason TEXT,
    created_at REAL NOT NULL,
    due_at REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (bank_code, payout_id),
    UNIQUE (bank_code, bank_reference)
);
CREATE TABLE IF NOT EXISTS arrivals (
    bank_code TEXT NOT NULL,
    bank_reference TEXT NOT NULL,
    account_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    payer_name TEXT NOT NULL,
    payer_account TEXT NOT NULL,
    arrived_at REAL NOT NULL,
    PRIMARY KEY (bank_code, bank_reference)
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_code TEXT NOT NULL,
    notification_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (status, notify_url, id);
"""


@dataclass(frozen=True)
class Account:
    bank_code: str
    request_id: str
    account_name: str
    notify_url: str
    status: str
    account_no: str | None
    balance_fen: int
    requested_at: float
    due_at: float
    opened_at: float | None


@dataclass(frozen=True)
class Payout:
    bank_code: str
    payout_id: str
    account_no: str
    amount_fen: int
    payee_name: str
    payee_account: str
    notify_url: str
    bank_reference: str
    status: str
    failure_reason: str | None
    created_at: float
    due_at: float
    finished_at: float | None


@dataclass(frozen=True)
class Arrival:
    bank_code: str
    bank_reference: str
    account_no: str
    amount_fen: int
    payer_name: str
    payer_account: str
    arrived_at: float


@dataclass(frozen=True)
class Delivery:
    id: int
    bank_code: str
    notification_id: str
    type: str
    notify_url: str
    body: bytes
    status: str
    attempts: int
    last_error: str | None
    created_at: float
    next_attempt_at: float
    delivered_at: float | None


Row = TypeVar("Row", Account, Payout, Arrival, Delivery)


def _insert_sql(table: str, row_type: type[Any]) -> str:
    names = [field.name for field in fields(row_type)]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + name for name in names)})"


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield Transaction(connection)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()


class Transaction:
    """Queries and updates inside one SQLite transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def _one(self, row_type: type[Row], sql: str, *args: Any) -> Row | None:
        row = self._db.execute(sql, args).fetchone()
        return None if row is None else row_type(**dict(row))

    def _all(self, row_type: type[Row], sql: str, *args: Any) -> list[Row]:
        return [row_type(**dict(row)) for row in self._db.execute(sql, args).fetchall()]

    # nonces
    def remember_nonce(self, nonce: str, *, expires_at: float, now: float) -> bool:
        """False when the nonce was already seen (and has not expired)."""
        self._db.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
        cursor = self._db.execute(
            "INSERT INTO nonces (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING", (nonce, expires_at)
        )
        return cursor.rowcount == 1

    # accounts
    def add_account_request(self, account: Account) -> Account:
        """Insert unless (bank_code, request_id) exists; returns the stored row either way."""
        self._db.execute(_insert_sql("accounts", Account) + " ON CONFLICT DO NOTHING", asdict(account))
        stored = self.account_by_request(account.bank_code, account.request_id)
        assert stored is not None
        return stored

    def account_by_request(self, bank_code: str, request_id: str) -> Account | None:
        sql = "SELECT * FROM accounts WHERE bank_code = ? AND request_id = ?"
        return self._one(Account, sql, bank_code, request_id)

    def open_account(self, bank_code: str, account_no: str) -> Account | None:
        sql = "SELECT * FROM accounts WHERE bank_code = ? AND account_no = ? AND status = 'open'"
        return self._one(Account, sql, bank_code, account_no)

    def account_no_taken(self, account_no: str) -> bool:
        return self._db.execute("SELECT 1 FROM accounts WHERE account_no = ?", (account_no,)).fetchone() is not None

    def accounts_due(self, now: float) -> list[Account]:
        sql = "SELECT * FROM accounts WHERE status = 'opening' AND due_at <= ? ORDER BY due_at"
        return self._all(Account, sql, now)

    def mark_account_open(self, bank_code: str, request_id: str, account_no: str, now: float) -> None:
        cursor = self._db.execute(
            "UPDATE accounts SET status = 'open', account_no = ?, opened_at = ?"
            " WHERE bank_code = ? AND request_id = ? AND status = 'opening'",
            (account_no, now, bank_code, request_id),
        )
        assert cursor.rowcount == 1, (bank_code, request_id)

    def change_balance(self, bank_code: str, account_no: str, delta_fen: int) -> int:
        """Adds delta_fen (negative to debit; the CHECK keeps balances >= 0); returns the new balance."""
        row = self._db.execute(
            "UPDATE accounts SET balance_fen = balance_fen + ?"
            " WHERE bank_code = ? AND account_no = ? RETURNING balance_fen",
            (delta_fen, bank_code, account_no),
        ).fetchone()
        assert row is not None, (bank_code, account_no)
        return int(row["balance_fen"])

    def accounts(self, bank_code: str) -> list[Account]:
        return self._all(Account, "SELECT * FROM accounts WHERE bank_code = ? ORDER BY requested_at", bank_code)

    # payouts
    def add_payout(self, payout: Payout) -> Payout:
        """Insert unless (bank_code, payout_id) exists; returns the stored row either way."""
        self._db.execute(_insert_sql("payouts", Payout) + " ON CONFLICT DO NOTHING", asdict(payout))
        stored = self.payout(payout.bank_code, payout.payout_id)
        assert stored is not None
        return stored

    def payout(self, bank_code: str, payout_id: str) -> Payout | None:
        return self._one(Payout, "SELECT * FROM payouts WHERE bank_code = ? AND payout_id = ?", bank_code, payout_id)

    def payouts_due(self, now: float) -> list[Payout]:
        sql = "SELECT * FROM payouts WHERE status = 'processing' AND due_at <= ? ORDER BY due_at"
        return self._all(Payout, sql, now)

    def finish_payout(self, payout: Payout, status: str, failure_reason: str | None, now: float) -> None:
        cursor = self._db.execute(
            "UPDATE payouts SET status = ?, failure_reason = ?, finished_at = ?"
            " WHERE bank_code = ? AND payout_id = ? AND status = 'processing'",
            (status, failure_reason, now, payout.bank_code, payout.payout_id),
        )
        assert cursor.rowcount == 1, (payout.bank_code, payout.payout_id)

    def payouts(self, bank_code: str) -> list[Payout]:
        return self._all(Payout, "SELECT * FROM payouts WHERE bank_code = ? ORDER BY created_at", bank_code)

    # arrivals
    def add_arrival(self, arrival: Arrival) -> None:
        self._db.execute(_insert_sql("arrivals", Arrival), asdict(arrival))

    def arrivals(self, bank_code: str) -> list[Arrival]:
        return self._all(Arrival, "SELECT * FROM arrivals WHERE bank_code = ? ORDER BY arrived_at", bank_code)

    # deliveries (the callback outbox)
    def enqueue_delivery(
        self, bank_code: str, notification_id: str, notification_type: str, notify_url: str, body: bytes, now: float
    ) -> None:
        self._db.execute(
            "INSERT INTO deliveries (bank_code, notification_id, type, notify_url, body, status, created_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            (bank_code, notification_id, notification_type, notify_url, body, now, now),
        )

    def next_delivery(self, now: float) -> Delivery | None:
        """The oldest due pending delivery that has no older pending delivery to the same URL (per-URL order)."""
        return self._one(
            Delivery,
            "SELECT * FROM deliveries AS d WHERE status = 'pending' AND next_attempt_at <= ?"
            " AND id = (SELECT MIN(id) FROM deliveries WHERE status = 'pending' AND notify_url = d.notify_url)"
            " ORDER BY id LIMIT 1",
            now,
        )

    def mark_delivered(self, delivery_id: int, now: float) -> None:
        self._db.execute(
            "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, last_error = NULL, delivered_at = ?"
            " WHERE id = ?",
            (now, delivery_id),
        )

    def record_failed_attempt(self, delivery_id: int, error: str, next_attempt_at: float) -> None:
        self._db.execute(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (error, next_attempt_at, delivery_id),
        )

    def deliveries(self, bank_code: str) -> list[Delivery]:
        return self._all(Delivery, "SELECT * FROM deliveries WHERE bank_code = ? ORDER BY id", bank_code)

    # scheduling
    def next_due_at(self) -> float | None:
        """Earliest time at which an account opening, a payout or a delivery becomes due."""
        row = self._db.execute(
            "SELECT MIN(t) AS due FROM ("
            " SELECT MIN(due_at) AS t FROM accounts WHERE status = 'opening'"
            " UNION ALL SELECT MIN(due_at) FROM payouts WHERE status = 'processing'"
            " UNION ALL SELECT MIN(next_attempt_at) FROM deliveries AS d WHERE status = 'pending'"
            "  AND id = (SELECT MIN(id) FROM deliveries WHERE status = 'pending' AND notify_url = d.notify_url))"
        ).fetchone()
        return None if row["due"] is None else float(row["due"])
