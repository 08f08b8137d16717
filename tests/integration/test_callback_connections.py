"""The callback path's database cost: a pooled connection is pinged only after sitting idle (and replaced
when the ping fails), an acknowledged callback is a single statement on PostgreSQL, and an arrival processed
inline costs a counted number of statements (no origins, payouts or personal data loaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select, text

from app.bank_inbox.store import inbox_backlog
from app.db import session as db_session
from app.db.models import BankNotification, SeenNonce
from app.definitions import store as definition_store
from app.platform.runtime import Runtime
from tests.factories import arrive, confirmed_deal, load_deal, notification, open_account, post_callback


def _count_pings(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    pinged: list[Any] = []
    real = rt.db.engine.dialect.do_ping

    def recording(dbapi_connection: Any) -> bool:
        pinged.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(rt.db.engine.dialect, "do_ping", recording)
    return pinged


def test_a_busy_connection_is_not_pinged(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    pinged = _count_pings(rt, monkeypatch)
    for _ in range(3):
        with rt.db.engine.connect() as connection:
            assert connection.scalar(text("SELECT 1")) == 1
    assert pinged == [], "no round trip per checkout"
    assert rt.db.engine.pool._pre_ping is False  # type: ignore[attr-defined]


def test_an_idle_connection_is_pinged_and_replaced_when_dead(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    with rt.db.engine.connect() as connection:
        dead = connection.connection.dbapi_connection
        assert dead is not None
    dead.close()  # as if the server had dropped it while it sat in the pool
    monkeypatch.setattr(db_session, "PING_WHEN_IDLE_S", 0.0)
    pinged = _count_pings(rt, monkeypatch)
    with rt.db.engine.connect() as connection:
        assert connection.scalar(text("SELECT 1")) == 1
        assert connection.connection.dbapi_connection is not dead, "replaced"
    assert pinged[0] is dead
    with rt.db.engine.begin() as connection:  # a healthy idle connection passes its ping and is reused
        live = connection.connection.dbapi_connection
        connection.execute(text("SELECT 1"))
    with rt.db.engine.connect() as connection:
        assert connection.connection.dbapi_connection is live
    assert pinged[-1] is live


def test_an_acknowledged_callback_is_one_statement_on_postgresql(
    client: FlaskClient, rt: Runtime, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "inbox")
    executed: list[str] = []

    def count(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        executed.append(statement)

    body = notification(
        "funds_arrived",
        bank_reference="REF-ONE",
        account_no="6226000000000099",
        amount_fen=100,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
    )
    # which bank and product versions serve is read once per FRESH_S (test_definition_publishing.py): an
    # earlier callback has read it
    monkeypatch.setattr(definition_store, "FRESH_S", 3600.0)
    earlier = {**body, "notification_id": f"{body['notification_id']}-0", "bank_reference": "REF-EARLIER"}
    assert post_callback(client, keys_dir, earlier) == (200, {"code": "OK"})
    event.listen(rt.db.engine, "before_cursor_execute", count)
    try:
        assert post_callback(client, keys_dir, body) == (200, {"code": "OK"})
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", count)
    if rt.db.engine.dialect.name == "postgresql":
        assert len(executed) == 1 and executed[0].startswith("WITH nonce AS"), executed
    else:  # SQLite: nonce, row, its id - in one write transaction
        assert executed[0] == "BEGIN IMMEDIATE" and len(executed) == 4, executed
    with rt.db.uow() as uow:
        row = uow.session.scalars(select(BankNotification).order_by(BankNotification.id.desc())).first()
        assert row is not None and json.loads(row.raw_body) == body and row.processed_at is None
        assert {nonce.sender for nonce in uow.session.scalars(select(SeenNonce))} == {"bank:ceb"}
    assert inbox_backlog(rt).due == 2


def test_an_arrival_processed_inline_costs_a_counted_number_of_statements(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int]
) -> None:
    """Stored, posted, recorded and audited - and nothing else: the deal's earlier arrivals (origins), its
    payouts and its parties' personal data are not read, so the cost does not grow with the deal's history."""
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, "6226000000000077")
    for n in range(3):  # earlier arrivals: an arrival must not read them
        arrive(client, keys_dir, "6226000000000077", 100, f"REF-EARLY-{n}")
    executed: list[str] = []
    statements: list[str] = []

    def count(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        executed.append(" ".join(statement.split())[:60])
        statements.append(statement)

    event.listen(rt.db.engine, "before_cursor_execute", count)
    try:
        arrive(client, keys_dir, "6226000000000077", 100, "REF-COUNTED")
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", count)
    assert not any("payout_origins." in s or "FROM payouts" in s for s in executed), executed
    # the served bank and product lookups' freshness checks (definition_versions) are counted apart: they are
    # the publishing flow's cost, not the processing's
    executed = [s for s in executed if "FROM definition_versions" not in s and "definition_versions." not in s]
    # PostgreSQL: nonce and inbox row (1), account and deal (1), posting (1), and the writes nothing reads back
    # in one statement at the commit (`write_batch`): origin, timeline row, inbox row marked, audit entry
    if rt.db.engine.dialect.name == "postgresql":
        assert len(executed) == 4, executed
        last = " ".join(statements[-1].split())
        for write in ("payout_origins", "deal_events", "UPDATE bank_notifications", "INSERT INTO audit_log"):
            assert write in last, last
    else:  # SQLite writes each at once
        assert len(executed) == 15, executed
    assert [e.event for e in load_deal(rt, deal_id).events].count("funds_arrived") == 4
