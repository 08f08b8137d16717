"""flask city simulate: every path in a sandbox, the report, the stored result that approval requires."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from app.db.models import ConfigSimulation, Deal
from app.services import config_publishing as publishing
from app.services.runtime import Runtime
from app.state_machine.paths import enumerate_paths
from tests.integration.test_config_publishing import BEIJING, renamed


def test_paths_reach_a_final_state_and_take_each_transition_once(rt: Runtime) -> None:
    definition = rt.workflow("resale_escrow", 1)
    paths = enumerate_paths(definition)
    assert len(paths) == 9
    for path in paths:
        assert path[0].source == definition.initial and definition.states[path[-1].target].final
        assert len(set(path)) == len(path)
    assert {t for path in paths for t in path} == set(definition.transitions)


def test_simulate_runs_every_path_in_a_sandbox_and_stores_the_result(
    app: Flask, rt: Runtime, users: dict[str, int]
) -> None:
    result = app.test_cli_runner().invoke(args=["city", "simulate", "110000", "--by", "ops"])
    assert result.exit_code == 0, result.output
    assert "resale_escrow（resale_escrow v1，服务层" in result.output
    assert "路径 9/9，流转覆盖 10/10，协议生成 1 份" in result.output
    assert "rent_custody（rent_custody v1，状态机层" in result.output and "账务平衡" in result.output
    with rt.db.uow() as uow:
        stored = uow.session.scalars(select(ConfigSimulation)).one()
        assert uow.session.scalars(select(Deal)).first() is None  # the sandbox is not the platform's database
    assert (stored.ok, stored.complete, stored.run_by) == (True, True, "ops")
    # the simulated content is the working file: drafting it unchanged, it can be approved
    publishing.save_draft(rt, "110000", BEIJING, "ops")
    publishing.submit(rt, "110000", "ops")
    approved = publishing.review(rt, "110000", "reviewer", "仿真通过", approve=True)
    assert approved.status == "approved"


def test_a_changed_draft_needs_its_own_simulation(app: Flask, rt: Runtime, users: dict[str, int]) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["city", "simulate", "110000"]).exit_code == 0  # the working file, not the draft
    publishing.save_draft(rt, "110000", renamed("北京市"), "ops")
    publishing.submit(rt, "110000", "ops")
    refused = runner.invoke(args=["city", "approve", "110000", "--reviewer", "reviewer", "--comment", "好"])
    assert refused.exit_code == 1 and "SIMULATION_REQUIRED" in refused.output
    partial = runner.invoke(args=["city", "simulate", "110000", "resale_escrow"])
    assert "仅部分业务" in partial.output
    refused = runner.invoke(args=["city", "approve", "110000", "--reviewer", "reviewer", "--comment", "好"])
    assert refused.exit_code == 1, "a simulation of one product does not count"
    assert runner.invoke(args=["city", "simulate", "110000"]).exit_code == 0
    approved = runner.invoke(args=["city", "approve", "110000", "--reviewer", "reviewer", "--comment", "好"])
    assert approved.exit_code == 0, approved.output


def test_simulate_exits_1_on_an_invalid_config(app: Flask, rt: Runtime, users: dict[str, int], tmp_path: Path) -> None:
    data = json.loads(BEIJING)
    data["products"]["resale_escrow"]["workflow"]["version"] = 9
    publishing.save_draft(rt, "110000", json.dumps(data), "ops")
    result = app.test_cli_runner().invoke(args=["city", "simulate", "110000"])
    assert result.exit_code == 1 and "unknown workflow resale_escrow v9" in result.output
    with rt.db.uow() as uow:
        assert uow.session.scalars(select(ConfigSimulation)).first() is None
