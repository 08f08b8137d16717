"""`write_batch`: on PostgreSQL, writes queued while a session batches go to the database as one statement before
anything else runs on the connection (a statement, a savepoint, the commit), a rollback drops what it covered, a
failing batch leaves nothing behind; on SQLite each write runs at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from app.db.models import SeenNonce
from app.db.write_batch import batching, inserting, updating, write
from app.domain import ledger
from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime

SEEN = SeenNonce.__table__
SENDER = "test:batch"
NONCE = inserting(SEEN, ["sender", "nonce", "seen_at"])
OTHER_NONCE = inserting(SEEN, ["sender", "nonce", "seen_at"])  # another template on the same table
RESENDER = updating(SEEN, "nonce", ["sender"])


def _nonce(nonce: str) -> dict[str, object]:
    return {"sender": SENDER, "nonce": nonce, "seen_at": datetime(2026, 12, 5, tzinfo=UTC)}


@contextmanager
def _recorded(rt: Runtime) -> Iterator[list[str]]:
    """The statements on seen_nonces, in the order the database got them."""
    statements: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        if "seen_nonces" in statement:
            statements.append(" ".join(statement.split()))

    event.listen(rt.db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", record)


def _stored(rt: Runtime) -> dict[str, str]:
    with rt.db.uow() as uow:
        rows = uow.session.execute(select(SEEN.c.nonce, SEEN.c.sender).where(SEEN.c.sender.startswith("test:")))
        return {nonce: sender for nonce, sender in rows}


def test_queued_writes_go_as_one_statement_before_the_next_and_at_the_commit(rt: Runtime) -> None:
    postgresql = rt.db.engine.dialect.name == "postgresql"
    with _recorded(rt) as statements, rt.db.uow() as uow:
        session = uow.session
        with batching(session):
            write(session, NONCE, _nonce("a"))
            write(session, OTHER_NONCE, _nonce("b"))
            assert len(statements) == (0 if postgresql else 2)
            assert session.scalar(select(func.count()).select_from(SEEN).where(SEEN.c.sender == SENDER)) == 2
            write(session, NONCE, _nonce("c"))
            uow.commit()
    assert _stored(rt) == {"a": SENDER, "b": SENDER, "c": SENDER}
    if postgresql:  # a and b together, then the read, then c alone at the commit
        assert len(statements) == 3, statements
        assert statements[0].startswith("WITH batched_0 AS (INSERT INTO seen_nonces")
        assert statements[1].startswith("SELECT count(*)") and statements[2].startswith("INSERT INTO seen_nonces")
    else:
        assert len(statements) == 4, statements


def test_a_template_queued_again_sends_the_queue_first(rt: Runtime) -> None:
    """Its parameters carry the template's names: the same template twice in one statement would mix them."""
    with _recorded(rt) as statements, rt.db.uow() as uow, batching(uow.session):
        write(uow.session, NONCE, _nonce("one"))
        write(uow.session, NONCE, _nonce("two"))
        uow.commit()
    assert _stored(rt) == {"one": SENDER, "two": SENDER}
    assert len(statements) == 2 and all(s.startswith("INSERT INTO seen_nonces") for s in statements), statements


def test_a_write_on_a_queued_table_sends_the_queue_first(rt: Runtime) -> None:
    """The batch's statements share one snapshot: an update must not miss the row an earlier insert adds."""
    with rt.db.uow() as uow:
        session = uow.session
        with batching(session):
            write(session, NONCE, _nonce("x"))
            write(session, RESENDER, {"nonce": "x", "sender": "test:changed"})
            uow.commit()
    assert _stored(rt) == {"x": "test:changed"}


def test_a_rollback_drops_what_it_covered(rt: Runtime) -> None:
    with rt.db.uow() as uow:
        session = uow.session
        with batching(session):
            write(session, NONCE, _nonce("kept-before"))
            with pytest.raises(RuntimeError), session.begin_nested():
                write(session, NONCE, _nonce("in-savepoint"))
                raise RuntimeError("savepoint rolled back")
            write(session, NONCE, _nonce("kept-after"))
            uow.commit()
    assert set(_stored(rt)) == {"kept-before", "kept-after"}
    with rt.db.uow() as uow, batching(uow.session):
        write(uow.session, NONCE, _nonce("rolled-back"))
        uow.session.rollback()
        uow.commit()
    assert "rolled-back" not in _stored(rt)


def test_a_failing_batch_leaves_nothing(rt: Runtime) -> None:
    """PostgreSQL: the statement sent at the commit fails, and the commit with it; SQLite: the write itself."""
    with rt.db.uow() as uow:
        session = uow.session
        with batching(session):
            write(session, NONCE, _nonce("first"))
            write(session, OTHER_NONCE, _nonce("twice"))
            with pytest.raises(IntegrityError):
                write(session, NONCE, _nonce("twice"))  # the same key, queued with the other (PostgreSQL)
                uow.commit()
            session.rollback()
    assert _stored(rt) == {}
    with rt.db.uow() as uow:  # the connection is usable again
        write(uow.session, NONCE, _nonce("after"))
        uow.commit()
    assert _stored(rt) == {"after": SENDER}


def test_a_posting_run_with_exec_driver_sql_goes_after_what_was_queued(rt: Runtime) -> None:
    """`ledger_apply` runs through `exec_driver_sql`, which fires no before_execute: the posting sends the queue."""
    order: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        order.extend(name for name in ("seen_nonces", "ledger_apply") if name in statement)

    spec = ledger.TransferSpec("test:post", ledger.bank_clearing("ceb").code, "test:custody", 100, "arrival")
    event.listen(rt.db.engine, "before_cursor_execute", record)
    try:
        with rt.db.uow() as uow, batching(uow.session):
            repo = LedgerRepository(uow.session)
            repo.ensure_account(ledger.bank_clearing("ceb"))
            repo.ensure_account(ledger.AccountSpec("test:custody", "liability", "测试"))
            order.clear()
            write(uow.session, NONCE, _nonce("before-posting"))
            repo.post(spec)
            uow.commit()
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", record)
    expected = ["seen_nonces", "ledger_apply"] if rt.db.engine.dialect.name == "postgresql" else ["seen_nonces"]
    assert order[: len(expected)] == expected, order
