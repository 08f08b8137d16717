"""The simulator's own SQLite database: accounts, payouts, arrivals, the callback outbox, seen nonces,
and the per-bank controls (fault settings with their draw counters, opening-limit overrides).

Every unit of work runs in `Store.transaction()` (BEGIN IMMEDIATE, so concurrent writers queue up);
rows come back as frozen dataclasses whose fields are the column names. Times are Unix seconds.
`PRAGMA user_version` tells the schema version; an older file is upgraded when opened.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from app.platform.errors import ConfigError
from app.tools.banksim.faults import FaultSettings

SCHEMA_VERSION = 2
# status 'dropped': a fault control decided never to send it; copy 1 is the duplicate of copy 0;
# ordered 0: may overtake (and be overtaken by) other notifications to the same URL.
_DELIVERIES = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_code TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    copy INTEGER NOT NULL DEFAULT 0 CHECK (copy IN (0, 1)),
    type TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dropped')),
    ordered INTEGER NOT NULL DEFAULT 1 CHECK (ordered IN (0, 1)),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    UNIQUE (notification_id, copy)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (status, notify_url, id);
"""
# version 1 (no user_version) -> 2: designated payers, submission counts, delivery faults
_UPGRADE_FROM_1 = (
    """
ALTER TABLE accounts ADD COLUMN designated_payer_name TEXT;
ALTER TABLE accounts ADD COLUMN designated_payer_account TEXT;
ALTER TABLE payouts ADD COLUMN submissions INTEGER NOT NULL DEFAULT 1;
ALTER TABLE arrivals ADD COLUMN designated_payer_matched INTEGER;
ALTER TABLE deliveries RENAME TO deliveries_v1;
DROP INDEX deliveries_pending;
"""
    + _DELIVERIES
    + """
INSERT INTO deliveries (id, bank_code, notification_id, type, notify_url, body, status, attempts, last_error,
                        created_at, next_attempt_at, delivered_at)
SELECT id, bank_code, notification_id, type, notify_url, body, status, attempts, last_error,
       created_at, next_attempt_at, delivered_at FROM deliveries_v1;
DROP TABLE deliveries_v1;
"""
)
_SCHEMA = (
    """
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
    designated_payer_name TEXT,
    designated_payer_account TEXT,
    PRIMARY KEY (bank_code, request_id),
    CHECK ((status = 'open') = (account_no IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS accounts_requested ON accounts (bank_code, requested_at);
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
    submissions INTEGER NOT NULL DEFAULT 1,
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
    designated_payer_matched INTEGER,
    PRIMARY KEY (bank_code, bank_reference)
);
CREATE INDEX IF NOT EXISTS arrivals_booked ON arrivals (bank_code, arrived_at);
CREATE INDEX IF NOT EXISTS payouts_finished ON payouts (bank_code, finished_at);
"""
    + _DELIVERIES
    + """
CREATE TABLE IF NOT EXISTS faults (
    bank_code TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fault_draws (
    bank_code TEXT NOT NULL,
    stream TEXT NOT NULL,
    drawn INTEGER NOT NULL,
    PRIMARY KEY (bank_code, stream)
);
CREATE TABLE IF NOT EXISTS limits (
    bank_code TEXT PRIMARY KEY,
    per_second INTEGER NOT NULL CHECK (per_second >= 0),
    per_day INTEGER NOT NULL CHECK (per_day >= 0)
);
"""
)


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
    designated_payer_name: str | None = None
    designated_payer_account: str | None = None


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
    submissions: int = 1  # submit requests received for this payout_id (more than one: resubmitted)


@dataclass(frozen=True)
class Arrival:
    bank_code: str
    bank_reference: str
    account_no: str
    amount_fen: int
    payer_name: str
    payer_account: str
    arrived_at: float
    designated_payer_matched: bool | None = None  # None: the account has no designated payer

    def __post_init__(self) -> None:
        if self.designated_payer_matched is not None:  # SQLite gives back 0 / 1
            object.__setattr__(self, "designated_payer_matched", bool(self.designated_payer_matched))


@dataclass(frozen=True)
class Delivery:
    id: int
    bank_code: str
    notification_id: str
    copy: int
    type: str
    notify_url: str
    body: bytes
    status: str
    ordered: int
    attempts: int
    last_error: str | None
    created_at: float
    next_attempt_at: float
    delivered_at: float | None


@dataclass(frozen=True)
class NewDelivery:
    bank_code: str
    notification_id: str
    copy: int
    type: str
    notify_url: str
    body: bytes
    status: str
    ordered: int
    created_at: float
    next_attempt_at: float


Row = TypeVar("Row", Account, Payout, Arrival, Delivery)
_HEAD_OF_URL = "(SELECT MIN(id) FROM deliveries WHERE status = 'pending' AND ordered = 1 AND notify_url = d.notify_url)"


def _insert_sql(table: str, row_type: type[Any]) -> str:
    names = [field.name for field in fields(row_type)]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + name for name in names)})"


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            _create_or_upgrade(connection)

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


def _create_or_upgrade(connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        has_tables = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'accounts'").fetchone()
        if version > SCHEMA_VERSION:
            raise ConfigError("银行模拟器数据库版本比程序新", details={"version": version})
        if version < 2 and has_tables:
            for statement in _statements(_UPGRADE_FROM_1):
                connection.execute(statement)
        for statement in _statements(_SCHEMA):
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """`executescript` would commit; these run one by one inside the caller's transaction."""
    return [statement for statement in script.split(";") if statement.strip()]


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

    def account_requests_since(self, bank_code: str, since: float) -> int:
        sql = "SELECT COUNT(*) FROM accounts WHERE bank_code = ? AND requested_at >= ?"
        return int(self._db.execute(sql, (bank_code, since)).fetchone()[0])

    # payouts
    def add_payout(self, payout: Payout) -> Payout:
        """Insert unless (bank_code, payout_id) exists, else count one more submission; returns the stored row."""
        upsert = " ON CONFLICT (bank_code, payout_id) DO UPDATE SET submissions = submissions + 1"
        self._db.execute(_insert_sql("payouts", Payout) + upsert, asdict(payout))
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

    def payouts_succeeded_between(self, bank_code: str, start: float, end: float) -> list[Payout]:
        sql = (
            "SELECT * FROM payouts WHERE bank_code = ? AND status = 'succeeded'"
            " AND finished_at >= ? AND finished_at < ? ORDER BY finished_at"
        )
        return self._all(Payout, sql, bank_code, start, end)

    # arrivals
    def add_arrival(self, arrival: Arrival) -> None:
        self._db.execute(_insert_sql("arrivals", Arrival), asdict(arrival))

    def arrivals(self, bank_code: str) -> list[Arrival]:
        return self._all(Arrival, "SELECT * FROM arrivals WHERE bank_code = ? ORDER BY arrived_at", bank_code)

    def arrivals_between(self, bank_code: str, start: float, end: float) -> list[Arrival]:
        sql = "SELECT * FROM arrivals WHERE bank_code = ? AND arrived_at >= ? AND arrived_at < ? ORDER BY arrived_at"
        return self._all(Arrival, sql, bank_code, start, end)

    # deliveries (the callback outbox)
    def enqueue_delivery(self, delivery: NewDelivery) -> None:
        self._db.execute(
            "INSERT INTO deliveries (bank_code, notification_id, copy, type, notify_url, body, status, ordered,"
            " created_at, next_attempt_at) VALUES (:bank_code, :notification_id, :copy, :type, :notify_url, :body,"
            " :status, :ordered, :created_at, :next_attempt_at)",
            asdict(delivery),
        )

    def next_delivery(self, now: float) -> Delivery | None:
        """The earliest due pending delivery; an ordered one only when no older ordered one to its URL is pending."""
        return self._one(
            Delivery,
            "SELECT * FROM deliveries AS d WHERE status = 'pending' AND next_attempt_at <= ? AND (ordered = 0"
            f" OR id = {_HEAD_OF_URL}) ORDER BY next_attempt_at, id LIMIT 1",
            now,
        )

    def due_deliveries(self, now: float, limit: int) -> list[Delivery]:
        """Up to `limit` due pending deliveries, earliest first, that may go out at the same time: an ordered one
        only when no older ordered one to its URL is pending (so at most one per URL), and one copy of each
        notification (a duplicate's second copy goes after the first)."""
        rows = self._all(
            Delivery,
            "SELECT * FROM deliveries AS d WHERE status = 'pending' AND next_attempt_at <= ? AND (ordered = 0"
            f" OR id = {_HEAD_OF_URL}) ORDER BY next_attempt_at, id LIMIT ?",
            now,
            limit * 2,
        )
        chosen: dict[str, Delivery] = {}
        for row in rows:
            chosen.setdefault(row.notification_id, row)
        return list(chosen.values())[:limit]

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
            f"  AND (ordered = 0 OR id = {_HEAD_OF_URL}))"
        ).fetchone()
        return None if row["due"] is None else float(row["due"])

    # per-bank controls
    def faults(self, bank_code: str) -> FaultSettings:
        row = self._db.execute("SELECT settings FROM faults WHERE bank_code = ?", (bank_code,)).fetchone()
        return FaultSettings() if row is None else FaultSettings(**json.loads(row["settings"]))

    def set_faults(self, bank_code: str, settings: FaultSettings, now: float) -> None:
        """Replace the bank's fault settings and restart its draw sequences (same seed, same decisions)."""
        self._db.execute(
            "INSERT INTO faults (bank_code, settings, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (bank_code) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
            (bank_code, json.dumps(asdict(settings)), now),
        )
        self._db.execute("DELETE FROM fault_draws WHERE bank_code = ?", (bank_code,))

    def clear_faults(self, bank_code: str) -> None:
        self._db.execute("DELETE FROM faults WHERE bank_code = ?", (bank_code,))
        self._db.execute("DELETE FROM fault_draws WHERE bank_code = ?", (bank_code,))

    def next_draw_index(self, bank_code: str, stream: str) -> int:
        """0 for the first draw of a stream since the faults were set, then 1, 2, ..."""
        row = self._db.execute(
            "INSERT INTO fault_draws (bank_code, stream, drawn) VALUES (?, ?, 1)"
            " ON CONFLICT (bank_code, stream) DO UPDATE SET drawn = drawn + 1 RETURNING drawn",
            (bank_code, stream),
        ).fetchone()
        return int(row["drawn"]) - 1

    def limit_override(self, bank_code: str) -> tuple[int, int] | None:
        row = self._db.execute("SELECT per_second, per_day FROM limits WHERE bank_code = ?", (bank_code,)).fetchone()
        return None if row is None else (int(row["per_second"]), int(row["per_day"]))

    def set_limits(self, bank_code: str, per_second: int, per_day: int) -> None:
        self._db.execute(
            "INSERT INTO limits (bank_code, per_second, per_day) VALUES (?, ?, ?) ON CONFLICT (bank_code)"
            " DO UPDATE SET per_second = excluded.per_second, per_day = excluded.per_day",
            (bank_code, per_second, per_day),
        )

    def clear_limits(self, bank_code: str) -> None:
        self._db.execute("DELETE FROM limits WHERE bank_code = ?", (bank_code,))
