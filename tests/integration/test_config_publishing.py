"""Reviewed, versioned publishing of city configs: statuses, roles, simulation gate, rollback, the audit trail,
and the running catalog serving the published version."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text

from app.audit.chain import chain
from app.cities import publishing
from app.db.audit_models import AuditEntry
from app.db.config_models import CityConfigVersion, ConfigSimulation
from app.platform.config import ROOT
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime
from tests.conftest import PASSWORD
from tests.factories import colleague

BEIJING = (ROOT / "city_configs" / "110000.json").read_text(encoding="utf-8")


def renamed(name: str) -> str:
    data = json.loads(BEIJING)
    data["name"] = name
    return json.dumps(data, ensure_ascii=False, indent=2)


def pass_simulation(rt: Runtime, stem: str) -> None:
    """Record a passing simulation of the version under work (the simulator's own tests run the real one)."""
    with rt.db.uow() as uow:
        version = uow.session.scalar(
            select(CityConfigVersion).where(
                CityConfigVersion.city_code == stem, CityConfigVersion.status.in_(("draft", "submitted"))
            )
        )
        assert version is not None
        _, city = publishing.validated(rt, uow.session, stem, version.content)
        uow.session.add(
            ConfigSimulation(
                city_code=stem,
                content_sha256=version.content_sha256,
                resolved_sha256=city.sha256,
                complete=True,
                ok=True,
                report={},
                run_by="test",
            )
        )
        uow.commit()


def publish_renamed(rt: Runtime, name: str) -> CityConfigVersion:
    publishing.save_draft(rt, "110000", renamed(name), "ops")
    pass_simulation(rt, "110000")
    publishing.submit(rt, "110000", "ops")
    publishing.review(rt, "110000", "reviewer", "同意", approve=True)
    return publishing.publish(rt, "110000", "reviewer")


def statuses(rt: Runtime, stem: str) -> dict[int, str]:
    return {row.version: row.status for row in publishing.versions(rt, stem)}


def test_import_files_publishes_the_shipped_configs_once(rt: Runtime, users: dict[str, int]) -> None:
    imported = publishing.import_files(rt)
    assert "110000" in imported and "_virtual" in imported
    assert publishing.import_files(rt) == []
    assert statuses(rt, "110000") == {1: "published"}
    assert publishing.versions(rt, "110000")[0].author == "system"


def test_review_flow_roles_simulation_gate_and_one_published_version(rt: Runtime, users: dict[str, int]) -> None:
    publishing.import_files(rt)
    with pytest.raises(ValidationError) as refused:
        publishing.save_draft(rt, "110000", renamed("北京市"), "agent")
    assert refused.value.code == "ROLE_NOT_ALLOWED"
    draft = publishing.save_draft(rt, "110000", renamed("北京市"), "ops")
    assert (draft.version, draft.status) == (2, "draft")
    with pytest.raises(ValidationError) as too_early:
        publishing.review(rt, "110000", "reviewer", "同意", approve=True)
    assert too_early.value.code == "CONFIG_STATUS"
    with pytest.raises(ValidationError) as no_simulation:
        publishing.submit(rt, "110000", "ops")
    assert no_simulation.value.code == "SIMULATION_REQUIRED", "submitting needs a simulation of this version"
    assert "第 2 版尚无通过的仿真" in no_simulation.value.message and "运行仿真" in no_simulation.value.message
    assert statuses(rt, "110000") == {2: "draft", 1: "published"}
    pass_simulation(rt, "110000")
    publishing.submit(rt, "110000", "ops")
    with pytest.raises(ValidationError) as frozen:
        publishing.save_draft(rt, "110000", renamed("北京"), "ops")
    assert frozen.value.code == "CONFIG_VERSION_OPEN"
    with pytest.raises(ValidationError) as not_reviewer:
        publishing.review(rt, "110000", "ops", "同意", approve=True)
    assert not_reviewer.value.code == "ROLE_NOT_ALLOWED"
    assert rt.cities.get("110000").name == "北京"  # approval alone changes nothing
    publishing.review(rt, "110000", "reviewer", "同意", approve=True)
    published = publishing.publish(rt, "110000", "reviewer")
    assert (published.version, published.reviewer) == (2, "reviewer")
    assert statuses(rt, "110000") == {2: "published", 1: "retired"}
    assert rt.cities.get("110000").name == "北京市"


def test_administrators_neither_write_nor_review_and_the_author_cannot_approve(
    rt: Runtime, users: dict[str, int]
) -> None:
    with pytest.raises(ValidationError) as admin_writes:
        publishing.save_draft(rt, "110000", renamed("北京市"), "admin")
    assert admin_writes.value.code == "ROLE_NOT_ALLOWED", "the administrator holds no business role"
    publishing.save_draft(rt, "110000", renamed("北京市"), "ops")
    pass_simulation(rt, "110000")
    publishing.submit(rt, "110000", "ops")
    for alone in ("admin", "ops"):  # the administrator, and the author (not a reviewer either)
        with pytest.raises(ValidationError) as refused:
            publishing.review(rt, "110000", alone, "同意", approve=True)
        assert refused.value.code == "ROLE_NOT_ALLOWED"
    rejected = publishing.review(rt, "110000", "reviewer", "名称不规范", approve=False)
    assert (rejected.status, rejected.comment) == ("rejected", "名称不规范")
    assert publishing.save_draft(rt, "110000", renamed("北京"), "ops").version == 2


def test_submit_refuses_an_invalid_config_with_its_problems(rt: Runtime, users: dict[str, int]) -> None:
    data = json.loads(BEIJING)
    data["products"]["resale_escrow"]["banks"] = ["nobank"]
    publishing.save_draft(rt, "110000", json.dumps(data), "ops")
    from app.domain.problems import CityConfigInvalid

    with pytest.raises(CityConfigInvalid) as invalid:
        publishing.submit(rt, "110000", "ops")
    assert any(p.pointer == "/products/resale_escrow/banks/0" for p in invalid.value.problems)
    assert statuses(rt, "110000") == {1: "draft"}


def test_a_rollback_is_a_proposal_a_second_reviewer_approves_on_a_fresh_simulation(
    rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    publish_renamed(rt, "北京市")
    with pytest.raises(ValidationError) as current:
        publishing.propose_rollback(rt, "110000", 2, "reviewer", "")
    assert current.value.code == "ROLLBACK_TARGET"
    with pytest.raises(NotFound):
        publishing.propose_rollback(rt, "110000", 9, "reviewer", "")
    proposal = publishing.propose_rollback(rt, "110000", 1, "reviewer", "新名称影响打印")
    assert (proposal.version, proposal.rollback_of, proposal.status, proposal.author) == (3, 1, "submitted", "reviewer")
    assert statuses(rt, "110000") == {3: "submitted", 2: "published", 1: "retired"}
    assert rt.cities.get("110000").name == "北京市", "a proposal changes nothing"
    with pytest.raises(ValidationError) as open_one:
        publishing.propose_rollback(rt, "110000", 1, "reviewer", "再来一次")
    assert open_one.value.code == "CONFIG_VERSION_OPEN"

    with rt.db.uow() as uow:  # version 1's content passed a simulation before: it was another version
        _, city = publishing.validated(rt, uow.session, "110000", proposal.content)
        earlier = proposal.created_at - timedelta(days=1)
        uow.session.add(
            ConfigSimulation(
                city_code="110000",
                content_sha256=proposal.content_sha256,
                resolved_sha256=city.sha256,
                complete=True,
                ok=True,
                report={},
                run_by="test",
                created_at=earlier,
            )
        )
        uow.commit()
    second = colleague(rt, "reviewer", PASSWORD)
    with pytest.raises(ValidationError) as stale:
        publishing.review(rt, "110000", second, "同意", approve=True)
    assert stale.value.code == "SIMULATION_REQUIRED", "a rollback needs a simulation of this exact version"
    pass_simulation(rt, "110000")
    with pytest.raises(ValidationError) as own:
        publishing.review(rt, "110000", "reviewer", "同意", approve=True)
    assert own.value.code == "SELF_REVIEW", "the proposer is the author: a second person approves"
    publishing.review(rt, "110000", second, "仿真通过，同意回滚", approve=True)
    back = publishing.publish(rt, "110000", second)
    assert (back.version, back.rollback_of, back.status, back.reviewer) == (3, 1, "published", second)
    assert statuses(rt, "110000") == {3: "published", 2: "retired", 1: "retired"}
    assert rt.cities.get("110000").name == "北京"


def test_every_step_is_audited_with_before_and_after(rt: Runtime, users: dict[str, int]) -> None:
    publishing.import_files(rt)
    publish_renamed(rt, "北京市")
    with rt.db.uow() as uow:
        query = select(AuditEntry).where(AuditEntry.subject.like("city_config:110000:%")).order_by(AuditEntry.id)
        entries = list(uow.session.scalars(query))
    assert [e.action for e in entries] == [
        "city_config.import",
        "city_config.draft",
        "city_config.submit",
        "city_config.approve",
        "city_config.publish",
    ]
    publish = entries[-1]
    assert (publish.before["name"], publish.after["name"], publish.actor) == ("北京", "北京市", "reviewer")
    assert entries[1].before["name"] == "北京" and entries[1].after["name"] == "北京市"


def test_cli_review_flow_versions_and_diff(app: Flask, rt: Runtime, users: dict[str, int], tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["city", "import-files"]).exit_code == 0
    edited = tmp_path / "110000.json"
    edited.write_text(renamed("北京市"), encoding="utf-8")
    result = runner.invoke(args=["city", "draft", "110000", "--file", str(edited), "--author", "ops"])
    assert result.exit_code == 0 and "第 2 版已保存为草稿" in result.output
    diff = runner.invoke(args=["city", "diff", "110000"])
    assert '-  "name": "北京",' in diff.output and '+  "name": "北京市",' in diff.output
    refused = runner.invoke(args=["city", "submit", "110000", "--author", "ops"])
    assert refused.exit_code == 1 and "SIMULATION_REQUIRED" in refused.output
    pass_simulation(rt, "110000")
    assert runner.invoke(args=["city", "submit", "110000", "--author", "ops"]).exit_code == 0
    assert runner.invoke(args=["city", "approve", "110000", "--reviewer", "reviewer", "--comment", "好"]).exit_code == 0
    assert runner.invoke(args=["city", "publish", "110000", "--reviewer", "reviewer"]).exit_code == 0
    rolled = runner.invoke(args=["city", "rollback", "110000", "--to", "1", "--reviewer", "reviewer"])
    assert rolled.exit_code == 0 and "待另一位审核人仿真后批准并发布" in rolled.output, rolled.output
    listing = runner.invoke(args=["city", "versions", "110000"]).output.splitlines()
    assert listing[0].startswith("v3") and "待审核" in listing[0] and "回滚自 v1" in listing[0]
    assert "已发布" in listing[1] and "审核 reviewer" in listing[1], "the command line publishes nothing alone"
    pass_simulation(rt, "110000")
    alone = runner.invoke(args=["city", "approve", "110000", "--reviewer", "reviewer", "--comment", "好"])
    assert alone.exit_code == 1 and "SELF_REVIEW" in alone.output


def test_audit_verify_passes_then_fails_after_tampering(app: Flask, rt: Runtime, users: dict[str, int]) -> None:
    publishing.import_files(rt)
    publish_renamed(rt, "北京市")
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "审计日志链完整" in ok.output
    chain(rt)  # what a worker's round does: the entries get their place in the chain (seq = row id here)
    dialect = rt.db.engine.dialect.name
    with pytest.raises(Exception, match="append-only"), rt.db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 3"))
    with pytest.raises(Exception, match="append-only"), rt.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = 3"))
    # someone with DDL rights drops the guard and edits history: the chain shows it
    drop = "DROP TRIGGER audit_log_no_update" + (" ON audit_log" if dialect == "postgresql" else "")
    if dialect == "postgresql":
        drop = "DROP TRIGGER audit_log_no_change ON audit_log"
    with rt.db.engine.begin() as connection:
        connection.execute(text(drop))
        connection.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 3"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and "第 3 条：内容哈希不符" in broken.output
