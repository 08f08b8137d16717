"""The audit log against a database owner (issue 15, case 8): entries made through HTTP, then rewritten with
the chain recomputed, or the newest deleted, by raw SQL with the append-only triggers dropped -
`flask audit verify` catches both (the MACs; the signed checkpoint). Without the MAC key it says so clearly."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from app import create_app
from app.audit.chain import chain
from app.audit.checkpoints import CHECKPOINT_EVERY_S
from app.audit.log import stored_entry
from app.audit.mac_key import mac_key
from app.crypto.keys import AUDIT_MAC_KEY_FILE
from app.db.audit_models import AuditEntry
from app.domain.audit import EntryContent, StoredEntry, chain_hash, verify_chain
from app.platform.runtime import Runtime
from app.queue.worker import run_worker
from tests.conftest import PASSWORD, csrf_token, make_config

Login = Callable[[str], FlaskClient]


def _drop_append_only_guard(rt: Runtime) -> None:
    """What a database owner can do: take the triggers away."""
    with rt.db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
            return
        names = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        ).scalars()
        for name in list(names):
            connection.exec_driver_sql(f'DROP TRIGGER "{name}"')


def _entries(rt: Runtime) -> list[StoredEntry]:
    """The chain, after chaining what was written (as a worker's round does)."""
    chain(rt)
    with rt.db.uow() as uow:
        rows = uow.session.scalars(select(AuditEntry).where(AuditEntry.seq.is_not(None)).order_by(AuditEntry.seq))
        return [stored_entry(e) for e in rows]


def _verify(app: Flask) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code, result.output


def test_an_entry_rewritten_with_the_chain_recomputed_fails_on_its_mac(app: Flask, rt: Runtime, login: Login) -> None:
    for role in ("ops", "finance", "admin"):
        login(role)
    assert [e.content.action for e in _entries(rt)] == ["auth.login"] * 3
    assert _verify(app)[0] == 0

    # the owner makes entry 2 say someone else logged in, and recomputes every hash from there on
    _drop_append_only_guard(rt)
    entries = _entries(rt)
    prev_hash = entries[0].hash
    with rt.db.engine.begin() as connection:
        for entry in entries[1:]:
            content = entry.content
            if content.id == 2:
                content = EntryContent(**{**vars(content), "actor": "user:mallory", "subject": "user:mallory"})
                connection.execute(
                    text("UPDATE audit_log SET actor = 'user:mallory', subject = 'user:mallory' WHERE id = 2")
                )
            new_hash = chain_hash(prev_hash, content)
            connection.execute(
                text("UPDATE audit_log SET prev_hash = :prev, hash = :hash WHERE seq = :id"),
                {"prev": prev_hash, "hash": new_hash, "id": content.id},
            )
            prev_hash = new_hash
    forged = _entries(rt)
    assert forged[1].content.actor == "user:mallory"
    assert verify_chain(forged)[1] == [], "the SM3 chain alone (the old check) is fooled"

    code, output = _verify(app)
    assert code == 1
    assert "第 2 条：MAC 不符" in output and "第 3 条：MAC 不符" in output and "第 1 条" not in output
    page = login("auditor").get("/admin/audit/verify").text
    assert "哈希链校验失败" in page and "第 2 条：MAC 不符" in page


def test_deleting_the_newest_entries_fails_against_the_signed_checkpoint(app: Flask, rt: Runtime, login: Login) -> None:
    for role in ("ops", "finance", "admin"):
        login(role)
    made = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert made.exit_code == 0 and "已写入检查点：第 3 条" in made.output, made.output
    assert rt.audit_checkpoints is not None and rt.audit_checkpoints.is_file()
    assert Path(app.instance_path) in rt.audit_checkpoints.parents, "in the instance folder, not the database"
    login("auditor")
    code, output = _verify(app)
    assert code == 0 and "已到达最新检查点（第 3 条）" in output, output

    _drop_append_only_guard(rt)
    with rt.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq >= 3 OR seq IS NULL"))  # the tail too
    remaining = _entries(rt)
    assert [e.content.id for e in remaining] == [1, 2]
    assert verify_chain(remaining, mac_key.key())[1] == [], "what is left is a whole chain with valid MACs"

    code, output = _verify(app)
    assert code == 1 and "日志只到第 2 条" in output and "签名检查点（记录被删除）" in output, output


def test_a_checkpoint_line_not_signed_by_the_platform_is_reported(app: Flask, rt: Runtime, login: Login) -> None:
    login("ops")
    assert app.test_cli_runner().invoke(args=["audit", "checkpoint"]).exit_code == 0
    assert rt.audit_checkpoints is not None
    line = rt.audit_checkpoints.read_text().splitlines()[0]
    forged = line.replace('"seq": 1', '"seq": 2')  # moved forward: the signature no longer matches
    assert forged != line
    with rt.audit_checkpoints.open("a") as file:
        file.write(forged + "\n")
    code, output = _verify(app)
    assert code == 1 and "检查点文件第 2 行签名无效" in output


def test_workers_sign_the_head_when_the_period_is_over_and_the_chain_grew(rt: Runtime, login: Login) -> None:
    def worker_round() -> None:
        run_worker(rt, should_stop=lambda: False, burst=True)

    def lines() -> list[str]:
        assert rt.audit_checkpoints is not None
        return rt.audit_checkpoints.read_text().splitlines() if rt.audit_checkpoints.is_file() else []

    worker_round()
    assert lines() == [], "an empty log has no head to sign"
    login("ops")
    worker_round()
    assert len(lines()) == 1 and '"seq": 1' in lines()[0]
    login("finance")
    worker_round()
    assert len(lines()) == 1, "the next one waits for the period"
    assert rt.audit_checkpoints is not None
    past = time.time() - CHECKPOINT_EVERY_S - 1
    os.utime(rt.audit_checkpoints, (past, past))
    worker_round()
    assert len(lines()) == 2 and '"seq": 2' in lines()[1]


def test_without_the_mac_key_verify_and_audited_actions_refuse_clearly(
    app: Flask, rt: Runtime, login: Login, keys_dir: Path, tmp_path: Path, database_url: str
) -> None:
    login("ops")
    keyless = tmp_path / "keys-without-mac"
    shutil.copytree(keys_dir, keyless)
    (keyless / AUDIT_MAC_KEY_FILE).unlink()
    other = create_app(make_config(tmp_path / "other-instance", database_url, keyless))
    try:
        code, output = _verify(other)
        assert code == 2 and "审计日志 MAC 密钥缺失" in output and AUDIT_MAC_KEY_FILE in output, output
        client = other.test_client()
        token = csrf_token(client.get("/login").text)
        answer = client.post("/login", data={"username": "finance", "password": PASSWORD, "csrf_token": token})
        assert answer.status_code == 500 and "审计日志 MAC 密钥缺失" in answer.text, "no login goes unaudited"
        with rt.db.uow() as uow:
            assert uow.session.scalar(select(AuditEntry.action).where(AuditEntry.subject == "user:finance")) is None
    finally:
        other.extensions["cunguan.runtime"].db.dispose()
        mac_key.configure_from_folder(keys_dir)
