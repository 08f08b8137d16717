"""The audit log written unchained (issue 21): entries carry their writer, its counter and a tail MAC, committed
without any lock shared between writers; the worker chains them. Against a database owner (no MAC key): an altered
or forged unchained entry is reported and never chained; one deleted before it was chained shows as a gap in its
writer's counters once the writer writes again (the newest entries of a writer that writes nothing more are the
documented residual risk); a failed commit never leaves a false gap."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from app.audit import log as audit
from app.audit.chain import BATCH, CHAIN_LOCK_KEY, chain
from app.db.audit_models import AuditEntry
from app.db.figure_models import FigureTotal
from app.platform.runtime import Runtime


def _append(rt: Runtime, subject: str) -> None:
    with rt.db.uow() as uow:
        audit.append(uow.session, at=rt.clock(), actor="user:ops", action="job.retry", subject=subject)
        uow.commit()


def _rows(rt: Runtime) -> list[AuditEntry]:
    with rt.db.uow() as uow:
        rows = list(uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        uow.session.expunge_all()
        return rows


def _breaks(rt: Runtime) -> list[str]:
    return [str(item) for item in audit.verify(rt)[1]]


def _as_owner(rt: Runtime, *statements: str) -> None:
    """What a database owner can do: take the append-only triggers away and write."""
    with rt.db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            names = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
            ).scalars()
            for name in list(names):
                connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
        for statement in statements:
            connection.exec_driver_sql(statement)


def test_entries_are_written_unchained_and_the_worker_chains_them(rt: Runtime) -> None:
    for subject in ("job:1", "job:2", "job:3"):
        _append(rt, subject)
    rows = _rows(rt)
    assert [(r.seq, r.hash, r.mac) for r in rows] == [(None, None, None)] * 3, "written without the chain"
    assert len({r.writer for r in rows}) == 1 and [r.writer_seq for r in rows] == [1, 2, 3]
    assert all(r.tail_mac for r in rows)
    assert audit.verify(rt) == (3, []), "the tail verifies on its own"

    assert chain(rt) == 3 and chain(rt) == 0
    rows = _rows(rt)
    assert [r.seq for r in rows] == [1, 2, 3] and all(r.hash and r.mac for r in rows)
    assert audit.verify(rt) == (3, [])
    with pytest.raises(SQLAlchemyError, match="append-only"), rt.db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET seq = NULL, prev_hash = NULL, hash = NULL, mac = NULL"))
    with pytest.raises(SQLAlchemyError, match="append-only"), rt.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq = 3"))


def test_an_unchained_entry_cannot_be_altered_outside_chaining(rt: Runtime) -> None:
    _append(rt, "job:1")
    with pytest.raises(SQLAlchemyError, match="append-only"), rt.db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET subject = 'job:2'"))
    with pytest.raises(SQLAlchemyError, match="append-only"), rt.db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET seq = 1, hash = 'x', subject = 'job:2'"))  # chaining + a change


def test_an_altered_or_forged_unchained_entry_is_reported_and_never_chained(rt: Runtime) -> None:
    _append(rt, "job:1")
    _append(rt, "job:2")
    first = _rows(rt)[0]
    _as_owner(
        rt,
        f"UPDATE audit_log SET subject = 'job:9' WHERE id = {first.id}",
        "INSERT INTO audit_log (at, actor, action, subject, detail, writer, writer_seq, tail_mac) VALUES"
        f" (CURRENT_TIMESTAMP, 'user:mallory', 'job.retry', 'job:3', '{{}}', '{first.writer}', 3, '{'0' * 64}')",
    )
    breaks = _breaks(rt)
    assert sum("未入链记录" in item and "MAC 不符" in item for item in breaks) == 2, breaks

    assert chain(rt) == 1, "only the untouched entry is chained"
    rows = _rows(rt)
    assert [r.subject for r in rows if r.seq is not None] == ["job:2"]
    breaks = _breaks(rt)
    assert sum("MAC 不符" in item for item in breaks) == 2 and any("第 1 条缺失" in item for item in breaks), breaks


def test_an_entry_deleted_before_it_was_chained_shows_once_its_writer_writes_again(rt: Runtime) -> None:
    for subject in ("job:1", "job:2", "job:3"):
        _append(rt, subject)
    rows = _rows(rt)
    _as_owner(rt, f"DELETE FROM audit_log WHERE id IN ({rows[1].id}, {rows[2].id})")
    assert _breaks(rt) == [], "the newest entries of a writer, deleted before chaining: not seen yet (residual risk)"

    _append(rt, "job:4")  # the same thread writes again: counter 4 after 1
    breaks = _breaks(rt)
    assert len(breaks) == 1 and "第 2 条缺失（记录在入链前被删除）" in breaks[0], breaks
    chain(rt)
    breaks = _breaks(rt)
    assert len(breaks) == 1 and "第 2 条缺失" in breaks[0], "still seen once chained"


def test_a_failed_commit_retires_its_writer_and_leaves_no_gap(rt: Runtime) -> None:
    _append(rt, "job:1")
    with pytest.raises(SQLAlchemyError), rt.db.uow() as uow:
        audit.append(uow.session, at=rt.clock(), actor="user:ops", action="job.retry", subject="job:lost")
        uow.session.add(FigureTotal(figure="deals", key="x", value=1))
        uow.session.add(FigureTotal(figure="deals", key="x", value=2))  # the commit's flush fails
        uow.commit()
    _append(rt, "job:2")
    rows = _rows(rt)
    assert [r.subject for r in rows] == ["job:1", "job:2"]
    assert rows[0].writer != rows[1].writer and rows[1].writer_seq == 1, "a new writer: counter 2 is never used"
    assert _breaks(rt) == []


def test_writing_an_entry_waits_for_no_chain_lock(rt: Runtime) -> None:
    """A chainer holding the chain's lock (PostgreSQL) does not hold up an audited commit: nothing writers do takes
    it. (Before issue 21 every audited commit took it.)"""
    with rt.db.engine.connect() as chainer:
        if chainer.dialect.name == "postgresql":
            chainer.execute(text("SELECT pg_advisory_lock(:key)"), {"key": CHAIN_LOCK_KEY})
        with rt.db.uow() as uow:
            if chainer.dialect.name == "postgresql":
                uow.session.execute(text("SET LOCAL lock_timeout = '2s'"))  # a regression fails, not hangs
            audit.append(uow.session, at=rt.clock(), actor="user:ops", action="job.retry", subject="job:1")
            uow.commit()
        if chainer.dialect.name == "postgresql":
            assert chain(rt) == 0, "a second chainer skips its turn"
            chainer.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CHAIN_LOCK_KEY})
        chainer.rollback()
    assert chain(rt) == 1 and audit.verify(rt) == (1, [])


def test_forged_entries_as_many_as_a_batch_do_not_hold_back_the_ones_after_them(rt: Runtime) -> None:
    _append(rt, "job:1")
    writer = _rows(rt)[0].writer
    assert chain(rt) == 1
    values = [
        f"(CURRENT_TIMESTAMP, 'user:mallory', 'job.retry', 'job:x', '{{}}', '{writer}', {n}, '{'0' * 64}')"
        for n in range(100, 100 + BATCH + 1)
    ]
    insert = "INSERT INTO audit_log (at, actor, action, subject, detail, writer, writer_seq, tail_mac) VALUES "
    _as_owner(rt, *(insert + ", ".join(values[at : at + 400]) for at in range(0, len(values), 400)))
    _append(rt, "job:2")  # behind a whole batch of forged rows at the head of what is unchained
    assert chain(rt) == 1, "chained in the same round"
    assert [r.subject for r in _rows(rt) if r.seq is not None] == ["job:1", "job:2"]
