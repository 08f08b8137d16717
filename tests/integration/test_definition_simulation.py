"""`flask definition simulate`: a draft runs in the city simulations of every city product that uses it, with the
draft in place (the sandbox run itself is `run_city`, which `flask city simulate` and its tests run); approval
needs a passing simulation of the exact content."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app.db.definition_models import DefinitionSimulation
from app.definitions import publishing
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from app.sandbox.definitions import users as users_of
from app.sandbox.definitions import with_draft
from tests.conftest import DATABASES, fresh_database

GUARANTEE = json.loads((ROOT / "workflows" / "guarantee_release.json").read_text(encoding="utf-8"))
DISPUTE = (ROOT / "agreement_templates" / "clauses" / "dispute.html.j2").read_text(encoding="utf-8")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """One platform database per run (PostgreSQL when configured): what is simulated runs in the sandbox's own
    SQLite database whatever the platform's is (as in test_city_simulation); the flow runs on both elsewhere."""
    with fresh_database(DATABASES[-1], tmp_path, platform_tables=True) as url:
        yield url


def test_a_draft_is_simulated_in_the_city_products_that_use_it_with_the_draft_in_place(rt: Runtime) -> None:
    clause = [(stem, product) for stem, product, _ in users_of(rt, "clause", "rent_supervision")]
    assert clause == [("440300", "rent_custody")], "only the products whose agreements print it"
    workflow = {(stem, product) for stem, product, _ in users_of(rt, "workflow", "guarantee_release@2")}
    assert workflow == {("370200", "guarantee_release"), ("_virtual", "guarantee_release")}

    draft = {**GUARANTEE, "version": 2, "name": "保函（第二版）"}
    drafted = with_draft(rt, "workflow", "guarantee_release@2", json.dumps(draft, ensure_ascii=False))
    assert drafted.workflow("guarantee_release", 1).name == "保函（第二版）", "in place of the version cities use"
    assert drafted.workflow("guarantee_release", 2).version == 2
    assert (
        rt.workflow("guarantee_release", 1).name == GUARANTEE["name"] and ("guarantee_release", 2) not in rt.workflows
    )

    edited = DISPUTE + "<p>修订</p>"
    drafted = with_draft(rt, "clause", "dispute", edited)
    entry, published = drafted.definitions.published("clause", "dispute"), rt.definitions.published("clause", "dispute")
    assert entry is not None and published is not None
    assert (entry.content, published.content) == (edited, DISPUTE)
    assert drafted.definitions.content("clause", "dispute", entry.sha256) == edited


def test_simulate_stores_the_outcome_that_approval_reads(app: Flask, rt: Runtime, users: dict[str, int]) -> None:
    runner = app.test_cli_runner()
    publishing.save_draft(rt, "workflow", "demo_escrow@1", json.dumps({**GUARANTEE, "id": "teleport"}), "ops")
    broken = runner.invoke(args=["definition", "simulate", "workflow", "demo_escrow@1"])
    assert broken.exit_code == 1 and "与名称 demo_escrow@1 不一致" in broken.output, broken.output
    fresh = json.dumps({**GUARANTEE, "id": "demo_escrow"}, ensure_ascii=False)
    publishing.save_draft(rt, "workflow", "demo_escrow@1", fresh, "ops")
    assert runner.invoke(args=["definition", "submit", "workflow", "demo_escrow@1", "--author", "ops"]).exit_code == 0
    passed = runner.invoke(args=["definition", "simulate", "workflow", "demo_escrow@1", "--by", "ops"])
    assert passed.exit_code == 0 and "✓ 仿真通过" in passed.output, "no city uses a new workflow yet: checked only"
    approve = ["definition", "approve", "workflow", "demo_escrow@1", "--reviewer", "reviewer", "--comment", "好"]
    assert runner.invoke(args=approve).exit_code == 0
    published = runner.invoke(args=["definition", "publish", "workflow", "demo_escrow@1", "--reviewer", "reviewer"])
    assert published.exit_code == 0 and "已发布" in published.output
    assert rt.workflow("demo_escrow", 1).id == "demo_escrow", "served at once"
    with rt.db.uow() as uow:
        outcomes = [
            row.ok for row in uow.session.scalars(select(DefinitionSimulation).order_by(DefinitionSimulation.id))
        ]
    assert outcomes == [False, True]
    listing = runner.invoke(args=["definition", "versions", "workflow", "demo_escrow@1"]).output
    assert "已发布" in listing and "审核 reviewer" in listing
