"""Replay before approval (issue 18): two real 北京 resale deals on the platform's database (one closed, one still
running: its payout not yet answered by the bank) replayed in the sandbox: under the published config both come out
相同, the running one replayed up to its state; under a draft with a seller-paid fee on release
(`flask city replay --draft`) both are 金额不同 by the fee, in yuan; under a
draft on the resale workflow v2 with a 90/10 plan it takes another path (路径不同), and under a draft whose custody
limit is below their amount a deal cannot be replayed (无法重放, with the reason)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.cities import publishing
from app.db.config_models import ConfigSimulation
from app.deals import service as deals
from app.deals.timers import fire_due_timers
from app.deals.vocabulary import build_vocabulary
from app.domain.config_versions import content_sha256
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from app.sandbox import simulate as simulation
from app.sandbox.harness import SignOnce
from app.sandbox.replay import replay_city
from tests.factories import RESALE_FORM, actor, arrive, load_deal, open_account
from tests.integration.test_products_in_services import RENT_FORM, Clock, _pay_result, _payouts
from tests.integration.test_release_plans import PLAN_90_10, _pay

BEIJING = json.loads((ROOT / "city_configs" / "110000.json").read_text(encoding="utf-8"))
SELLER_FEE = {"name": "存管服务费", "payer": "seller", "kind": "rate", "bps": 30}


def _draft(**resale: object) -> str:
    config = json.loads(json.dumps(BEIJING))
    config["products"]["resale_escrow"] |= resale
    return json.dumps(config, ensure_ascii=False)


def _deal(client: FlaskClient, keys_dir: Path, rt: Runtime, account_no: str, close: bool) -> str:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, account_no)
    custody = load_deal(rt, deal_id).custody_amount_fen
    arrive(client, keys_dir, account_no, 100_000_00, f"A-{account_no}")  # a partial arrival first
    arrive(client, keys_dir, account_no, custody - 100_000_00, f"B-{account_no}")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    if close:
        _pay(client, keys_dir, rt, deal_id)
    deal = load_deal(rt, deal_id)
    assert deal.state == ("closed" if close else "releasing")  # else: its payout is still at the bank
    return deal.deal_no


@pytest.fixture
def real_deals(client: FlaskClient, keys_dir: Path, rt: Runtime, users: dict[str, int]) -> list[str]:
    """A closed deal and one whose payout the bank has not answered yet; their agreements signed once and copied
    (`SignOnce`, as the sandbox does): a render per deal would cost seconds and the replay compares money and
    paths, not agreements."""
    rt.registry = build_vocabulary(SignOnce())
    return [
        _deal(client, keys_dir, rt, "6226000000000031", close=True),
        _deal(client, keys_dir, rt, "6226000000000033", close=False),
    ]


def _by_deal(report: dict) -> dict[str, dict]:
    return {row["deal_no"]: row for row in report["deals"]}


def test_the_published_config_replays_the_same_and_a_seller_fee_draft_differs_by_the_fee(
    app: Flask, rt: Runtime, real_deals: list[str]
) -> None:
    closed, running = real_deals
    report = replay_city(rt, "110000", json.dumps(BEIJING, ensure_ascii=False))
    rows = _by_deal(report)
    assert set(rows) == set(real_deals) and report["count"] == 2
    assert [rows[n]["verdict"] for n in real_deals] == ["相同", "相同"], report["deals"]
    assert report["differing"] == 0
    assert rows[closed]["real"]["states"] == rows[closed]["replayed"]["states"]
    assert rows[closed]["real"]["states"][-1] == "已结清" and not rows[closed]["running"]
    assert rows[running]["running"] and rows[running]["replayed"]["states"][-1] == "放款中", "not further"
    assert rows[running]["replayed"]["payments"] == rows[running]["real"]["payments"]
    (payment,) = rows[closed]["replayed"]["payments"]
    assert payment["role"] == "卖方" and payment["masked"] == "**** 3445" and payment["amount_fen"] == 123_456_789

    publishing.save_draft(rt, "110000", _draft(fees=[SELLER_FEE]), "ops")
    result = app.test_cli_runner().invoke(args=["city", "replay", "110000", "--draft"])
    assert result.exit_code == 1, result.output
    assert f"{closed} · 二手房交易资金存管 · 金额不同" in result.output
    assert "收费：¥0.00 → ¥3,703.70（+¥3,703.70）" in result.output
    assert "第 1 笔放款：¥1,234,567.89 → ¥1,230,864.19（-¥3,703.70）" in result.output
    assert f"{running} · 二手房交易资金存管 · 金额不同" in result.output, "the payout in flight too"
    assert "共 2 笔，2 笔与实际不同（金额不同 2）" in result.output


def test_a_draft_on_another_workflow_takes_another_path_and_a_lower_limit_cannot_replay(
    rt: Runtime, real_deals: list[str]
) -> None:
    closed, running = real_deals
    v2 = {"workflow": {"id": "resale_escrow", "version": 2}, "agreement": {"template": "resale_escrow/v2"}}
    row = _by_deal(replay_city(rt, "110000", _draft(release=PLAN_90_10, **v2)))[closed]
    assert row["verdict"] == "路径不同", row
    assert row["real"]["states"][-1] == "已结清" and row["replayed"]["states"][-1] == "部分放款"
    assert row["amounts"] == ["第 1 笔放款：¥1,234,567.89 → ¥1,111,111.10（-¥123,456.79）"]

    report = replay_city(rt, "110000", _draft(custody={"max_fen": 100_000_000}), limit=1)
    (row,) = report["deals"]
    assert row["deal_no"] == running and row["verdict"] == "无法重放"
    assert row["reason"].startswith("按草稿配置无法新建：") and "1,000,000.00" in row["reason"], row["reason"]


def test_city_simulate_replay_stores_the_replay_with_the_simulation(
    app: Flask, rt: Runtime, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flask city simulate CODE --replay`: the replay (here of no real deal) is stored in the simulation's report.
    (The simulation's paths are stubbed: tests/integration/test_city_simulation.py runs them.)"""

    def paths_passed(rt: Runtime, stem: str, content: str, product: object, progress: object) -> dict[str, object]:
        with rt.db.uow() as uow:
            _, city = publishing.validated(rt, uow.session, stem, content)
        sums = {"content_sha256": content_sha256(content), "resolved_sha256": city.sha256}
        return {"city": stem, **sums, "products": [], "problems": [], "ok": True}

    monkeypatch.setattr(simulation, "run_city", paths_passed)
    publishing.save_draft(rt, "110000", _draft(fees=[SELLER_FEE]), "ops")
    result = app.test_cli_runner().invoke(args=["city", "simulate", "110000", "--replay"])
    assert result.exit_code == 0, result.output
    assert "真实存管单重放：0 笔，0 笔与实际不同" in result.output
    with rt.db.uow() as uow:
        stored = uow.session.scalars(select(ConfigSimulation)).one()
    assert stored.complete and stored.report["replay"]["count"] == 0 and stored.report["replay"]["ok"]


def test_a_shorter_move_in_deadline_would_have_cancelled_a_rent_deal_paid_on_its_fourth_day(
    client: FlaskClient, keys_dir: Path, rt: Runtime, users: dict[str, int]
) -> None:
    """The sandbox clock follows the recorded times: the tenant paid on day 4 and the rent went to the landlord on
    day 5 (北京: 5 days to pay); under a draft giving 3 days the deadline passes first, the deal is cancelled and the
    money that then arrives goes back to the tenant instead of on to the landlord."""
    rt.registry = build_vocabulary(SignOnce())
    clock = Clock(rt)
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "rent_custody", RENT_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000034")
    clock.advance(days=4)
    arrive(client, keys_dir, "6226000000000034", 600_000, "R-DAY-4")
    clock.advance(days=1)
    assert fire_due_timers(rt) == 1
    _pay_result(client, keys_dir, _payouts(rt, deal_id)[0], "succeeded")
    assert load_deal(rt, deal_id).state == "rent_paid"

    (same,) = replay_city(rt, "110000", json.dumps(BEIJING, ensure_ascii=False))["deals"]
    assert same["verdict"] == "相同", same
    assert same["replayed"]["states"][-1] == "本期租金已付房东"
    assert same["replayed"]["payments"][0]["amount_fen"] == 300_000

    config = json.loads(json.dumps(BEIJING))
    config["products"]["rent_custody"]["deadlines"]["move_in_deadline"] = "P3D"
    (row,) = replay_city(rt, "110000", json.dumps(config, ensure_ascii=False))["deals"]
    assert row["verdict"] == "路径不同", row
    assert row["replayed"]["states"] == ["待签约", "开户中", "待付首期租金及押金", "已取消"]
    assert row["real"]["states"][-1] == "本期租金已付房东"
    # the tenant's money arrived after the deal ended: returned to where it came from, not released
    assert row["amounts"] == ["第 1 笔：放款 ¥3,000.00 → 退回 ¥6,000.00"]
    assert row["payees"] == ["第 1 笔：出租人 **** 2444 → 原付款账户 **** 5678"], row["payees"]
