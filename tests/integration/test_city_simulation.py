"""flask city simulate: every path of every product on real deals in a sandbox (the bank simulator over HTTP),
the report, the stored result that approval requires."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.cities import publishing
from app.db.config_models import ConfigSimulation
from app.db.models import Deal
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from app.sandbox.simulate import simulate
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.paths import covering_paths
from tests.conftest import DATABASES, fresh_database
from tests.integration.test_config_publishing import BEIJING

QINGDAO = (ROOT / "city_configs" / "370200.json").read_text(encoding="utf-8")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """One platform database per run (PostgreSQL when configured, as in CI): a simulation runs in its own
    SQLite sandbox whatever the platform's database is, which here only keeps the stored result."""
    with fresh_database(DATABASES[-1], tmp_path, platform_tables=True) as url:
        yield url


def _products(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["product"]: result for result in report["products"]}


def _simple_paths(definition: WorkflowDefinition) -> list[tuple[Transition, ...]]:
    """Every path from the initial state to a final one taking each transition at most once (the oracle)."""
    found: list[tuple[Transition, ...]] = []

    def walk(state: str, taken: tuple[Transition, ...]) -> None:
        if definition.states[state].final:
            found.append(taken)
            return
        for t in definition.transitions:
            if t.source == state and t not in taken:
                walk(t.target, (*taken, t))

    walk(definition.initial, ())
    return found


@pytest.mark.parametrize(("workflow", "version", "expected"), [("resale_escrow", 1, 21), ("gov_escrow", 1, 16)])
def test_paths_take_every_pair_of_transitions_that_a_simple_path_takes(
    rt: Runtime, workflow: str, version: int, expected: int
) -> None:
    """The paths take each transition once at most, reach a final state and take every pair of transitions that
    any such path takes - with fewer paths than all of them (47 and 27)."""
    definition = rt.workflow(workflow, version)
    paths = covering_paths(definition)
    assert len(paths) == expected
    for path in paths:
        assert path[0].source == definition.initial and definition.states[path[-1].target].final
        assert len(set(path)) == len(path)
        assert all(before.target == after.source for before, after in pairwise(path))
    every = _simple_paths(definition)
    assert len(every) > expected
    assert {pair for path in paths for pair in pairwise(path)} == {pair for path in every for pair in pairwise(path)}
    assert {t for path in paths for t in path} == set(definition.transitions)


def test_resale_escrow_v2_is_simulated_in_every_transition(rt: Runtime) -> None:
    """Resale escrow v2 has thousands of simple paths: a cap of 2,000 once left 4 of its 29 transitions unsimulated;
    63 paths take them all."""
    definition = rt.workflow("resale_escrow", 2)
    paths = covering_paths(definition)
    assert len(paths) == 63
    assert {t for path in paths for t in path} == set(definition.transitions)


def test_simulate_runs_every_path_of_every_product_on_real_deals_and_stores_the_result(
    app: Flask, rt: Runtime, users: dict[str, int]
) -> None:
    result = app.test_cli_runner().invoke(args=["city", "simulate", "110000", "--by", "ops"])
    assert result.exit_code == 0, result.output
    assert "resale_escrow（resale_escrow v1，服务层" in result.output
    # one path is a note: a partly funded deal cancelled "without money" cannot be made once money arrived
    assert "路径 20/21，流转覆盖 19/19，协议生成 1 份" in result.output
    assert "rent_custody（rent_custody v1，服务层" in result.output and "账务平衡" in result.output
    assert "状态机层" not in result.output
    with rt.db.uow() as uow:
        stored = uow.session.scalars(select(ConfigSimulation)).one()
        assert uow.session.scalars(select(Deal)).first() is None  # the sandbox is not the platform's database
    assert (stored.ok, stored.complete, stored.run_by) == (True, True, "ops")
    products = _products(stored.report)
    assert {p["level"] for p in products.values()} == {"services"}
    rent = products["rent_custody"]
    assert (rent["paths"], rent["paths_run"], rent["problems"]) == (17, 16, [])  # confirmed or imported
    # a partial arrival leaves money in custody: at the move-in deadline it goes back, never "cancelled"
    assert [note.split("：")[0] for note in rent["notes"]] == [
        "路径 confirm → account_opened → funds_arrived → move_in_expired",
    ]
    # back to rent_held after a month: no path takes release_due twice (each path takes a transition once)
    assert rent["uncovered"] == [
        "rent_paid -rent_period_started-> rent_held",
        "rent_due -funds_arrived-> rent_held",
        "overdue -funds_arrived-> rent_held",
    ]
    assert stored.report["ledger"] == {"ok": True, "problems": []}
    # the simulated content is the working file: drafting it unchanged, it can be submitted and approved
    publishing.save_draft(rt, "110000", BEIJING, "ops")
    publishing.submit(rt, "110000", "ops")
    approved = publishing.review(rt, "110000", "reviewer", "仿真通过", approve=True)
    assert approved.status == "approved"


def test_government_escrow_runs_with_approvals_and_refunds(app: Flask, rt: Runtime, users: dict[str, int]) -> None:
    """杭州: government escrow on three banks; refunds need a second person's approval (the simulation
    approves as ops and finance), payouts fail through the simulator's payout_failure fault and are retried."""
    result = app.test_cli_runner().invoke(args=["city", "simulate", "330100"])
    assert result.exit_code == 0, result.output
    with rt.db.uow() as uow:
        report = uow.session.scalars(select(ConfigSimulation)).one().report
    assert report["ok"], report["problems"]
    gov = _products(report)["gov_escrow"]
    assert (gov["level"], gov["paths"], gov["paths_run"], gov["agreements_rendered"]) == ("services", 16, 15, 1)
    assert gov["uncovered"] == []  # back in funded after a rejection, the contract's termination refunds
    assert [note.split("：")[0] for note in gov["notes"]] == [
        "路径 confirm → account_opened → funds_arrived → funding_expired"
    ]


def test_a_changed_draft_needs_its_own_simulation_and_qingdao_guarantees_hold_the_frozen_money(
    app: Flask, rt: Runtime, users: dict[str, int]
) -> None:
    """青岛 resale and guarantees: a gap the simulation found, now closed - the guarantee holds the frozen money in
    custody and a claim pays from the frozen account. Its working file's simulation does not count for a changed
    draft (here: guarantees alone, the shortest product, so that the draft's runs are quick), nor does a
    simulation of one named product; the CLI shows its progress in paths on stderr."""
    runner = app.test_cli_runner()
    working = runner.invoke(args=["city", "simulate", "370200"])  # the working file: there is no draft yet
    assert working.exit_code == 0, working.output
    with rt.db.uow() as uow:
        qingdao = uow.session.scalars(select(ConfigSimulation)).one().report
    assert qingdao["ok"], qingdao["problems"]
    assert {p["level"] for p in qingdao["products"]} == {"services"} and qingdao["ledger"]["ok"]
    guarantee = _products(qingdao)["guarantee_release"]
    assert guarantee["paths_run"] == guarantee["paths"] == 7 and guarantee["uncovered"] == []

    changed = json.loads(QINGDAO) | {"name": "青岛市"}
    changed["products"]["resale_escrow"] = None
    publishing.save_draft(rt, "370200", json.dumps(changed, ensure_ascii=False), "ops")
    submit = ["city", "submit", "370200", "--author", "ops"]
    refused = runner.invoke(args=submit)
    assert refused.exit_code == 1 and "SIMULATION_REQUIRED" in refused.output
    partial = runner.invoke(args=["city", "simulate", "370200", "guarantee_release"])
    assert "仅部分业务" in partial.output
    assert "仿真中 0/7 条路径 · guarantee_release（第 1/1 个业务）" in partial.stderr
    assert "仿真中 7/7 条路径 · 账务核对" in partial.stderr and "仿真中" not in partial.stdout
    refused = runner.invoke(args=submit)
    assert refused.exit_code == 1, "a simulation of one product does not count, even of the only one"
    assert runner.invoke(args=["city", "simulate", "370200"]).exit_code == 0
    assert runner.invoke(args=submit).exit_code == 0
    approved = runner.invoke(args=["city", "approve", "370200", "--reviewer", "reviewer", "--comment", "好"])
    assert approved.exit_code == 0, approved.output


def test_simulate_exits_1_on_an_invalid_config(app: Flask, rt: Runtime, users: dict[str, int], tmp_path: Path) -> None:
    data = json.loads(BEIJING)
    data["products"]["resale_escrow"]["workflow"]["version"] = 9
    publishing.save_draft(rt, "110000", json.dumps(data), "ops")
    result = app.test_cli_runner().invoke(args=["city", "simulate", "110000"])
    assert result.exit_code == 1 and "unknown workflow resale_escrow v9" in result.output
    with rt.db.uow() as uow:
        assert uow.session.scalars(select(ConfigSimulation)).first() is None


def test_shanghai_runs_intent_deposits_and_renovation_stages_at_the_services_level(rt: Runtime) -> None:
    """上海: intent deposits (refund by origin after a partial and a full arrival), renovation escrow whose
    last stage is reached by running the earlier ones, resale escrow with a designated payer, and new-home
    supervision (a variant on the resale workflow, declared by configuration)."""
    report = simulate(rt, "310000", run_by="test")
    assert report["ok"], report["problems"]
    products = _products(report)
    assert set(products) == {"intent_deposit", "new_home_supervision", "renovation_escrow", "resale_escrow"}
    for name, result in products.items():
        assert result["level"] == "services" and result["problems"] == [], name
        assert result["paths_run"] + len(result["notes"]) == result["paths"], name
        assert result["agreements_rendered"] == 1, name
    assert products["renovation_escrow"]["uncovered"] == []
    assert products["intent_deposit"]["uncovered"] == []
    assert report["ledger"]["ok"]


def test_every_shipped_city_is_simulated_by_a_test_here() -> None:
    simulated = {"110000", "310000", "330100", "370100", "370200", "440300"}
    assert {path.stem for path in (ROOT / "city_configs").glob("[0-9]*.json")} == simulated


def test_jinan_provident_fund_rent_runs_to_the_last_month_at_the_services_level(rt: Runtime) -> None:
    """济南 provident-fund rent: the fund centre's draws, a lease run to its last month. (Each other shipped
    city has a test of its own: the runs take long and xdist spreads them over its workers.)"""
    jinan = simulate(rt, "370100", run_by="test")
    assert jinan["ok"], jinan["problems"]
    fund = _products(jinan)["provident_fund_rent"]
    # a termination with nothing left in custody cannot be made once money arrived: 32 notes, no problem
    assert (fund["level"], fund["paths_run"], fund["paths"], fund["uncovered"]) == ("services", 22, 27, [])
    assert fund["problems"] == [] and all(note.split("：")[0].endswith("terminate") for note in fund["notes"])
    assert {p["level"] for p in jinan["products"]} == {"services"} and jinan["ledger"]["ok"]


def test_shenzhen_rent_custody_with_exempt_months_closes_a_lease_with_nothing_left_to_pay(rt: Runtime) -> None:
    """深圳 rent custody with exempt months: a gap the simulation found, now closed - the move-out with nothing
    left to pay closes the lease. 深圳's resale escrow is 青岛's but for the bank (asserted): the test above
    simulates it there."""
    shenzhen, qingdao = rt.cities.get("440300"), rt.cities.get("370200")
    assert replace(shenzhen.product("resale_escrow"), banks=()) == replace(qingdao.product("resale_escrow"), banks=())
    report = simulate(rt, "440300", "rent_custody", run_by="test")
    assert report["ok"], report["problems"]
    assert {p["level"] for p in report["products"]} == {"services"} and report["ledger"]["ok"]
    rent = _products(report)["rent_custody"]
    assert rent["problems"] == [] and rent["paths_run"] > 0


def test_a_simulation_keeps_its_own_logs_and_leaves_other_threads_logs_alone(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker simulating a city runs other jobs in other threads: their lines still reach the log, while
    the sandbox's own lines do not (its warnings go to the report)."""
    worker_log = logging.getLogger("cunguan.worker")

    def meanwhile(done: int, _total: int, _label: str) -> None:
        if done:
            return
        worker_log.warning("sandbox warning")  # the simulating thread: the sandbox's
        other = threading.Thread(target=lambda: (worker_log.info("other job info"), worker_log.warning("other job")))
        other.start()
        other.join()

    with caplog.at_level(logging.INFO, logger="cunguan.worker"):
        report = simulate(rt, "370200", "guarantee_release", run_by="test", progress=meanwhile)
    assert report["ok"], report["problems"]
    messages = [record.getMessage() for record in caplog.records if record.name == "cunguan.worker"]
    assert "other job info" in messages and "other job" in messages, "another thread's lines are not lost"
    assert "sandbox warning" not in messages
    assert not any(
        record.name == "cunguan.worker" and record.threadName.startswith("sim-") for record in caplog.records
    )
