"""Issue 17's "Done when", end to end through the services, on both databases. Each part is tested in depth on
its own (test_release_plans, test_fees_charged, test_extra_fields, test_working_day_deadlines,
test_product_variants, test_bank_by_config, test_definition_kinds_publishing, test_definition_publishing); here
they are composed, everything said by configuration and published through the one flow with its real checks and
simulations:
- a resale deal of 北京 on a workflow version published in the flow (resale_escrow v2 with a funding deadline),
  its city saying 90/10, a seller-paid fee, 3 working days to fund and 房屋面积: the deadline crosses National Day,
  the agreement prints plan, fee and the extra field, 90 % then 10 % are released and the fee is charged once;
- a new bank (民商, code cmbx, protocol v1) and 新房资金监管 through the flow: 上海's variant on that bank is
  simulated in the sandbox - the bank simulator playing the bank as published - then published and used by a deal;
- a broken workflow version is refused before publishing and the running deal goes on untouched."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.ledger_models import LedgerTransfer
from app.deals import service as deals
from app.definitions import publishing
from app.ledger.repo import check_ledger
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from app.sandbox.definitions import simulate_definition
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    arrive,
    load_deal,
    notification,
    open_account,
    patch_city,
    post_callback,
    virtual_account,
)
from tests.integration.test_agreement_deal import html_text
from tests.integration.test_definition_kinds_publishing import NEW_HOME, cmbc_key, cmbx, text
from tests.integration.test_extra_fields import HOUSE_AREA
from tests.integration.test_fees_charged import FEE_FEN
from tests.integration.test_product_variants import NEW_HOME_FORM
from tests.integration.test_release_plans import PLAN_90_10, _pay

# Wed 30 Sep 2026, 16:45 in Shanghai (after 光大's 16:30 cut-off): 1-7 Oct are National Day, so the 3 working days
# counted from the next working day are Fri 9, Sat 10 (调休) and Mon 12 Oct: due at 13 Oct 00:00 Shanghai
OPENED_AT = datetime(2026, 9, 30, 8, 45, tzinfo=UTC)
FUNDING_DUE = datetime(2026, 10, 12, 16, 0, tzinfo=UTC)
SELLER_FEE = [{"name": "存管服务费", "payer": "seller", "kind": "rate", "bps": 30, "min_fen": 50_000}]


def resale_v4() -> str:
    """resale_escrow v2 (90/10 plans) with a funding deadline: what a business person adds as a workflow version."""
    data = json.loads((ROOT / "workflows" / "resale_escrow_v2.json").read_text(encoding="utf-8"))
    data["version"] = 4  # v3 ships with the code: the flow adds the next
    data["parameters"] = {"funding_deadline": {"type": "duration", "label": "入金期限", "default": "P15D"}}
    data["states"]["awaiting_funds"]["timers"] = [{"after": "funding_deadline", "event": "funding_expired"}]
    data["events"]["funding_expired"] = "逾期未入金"
    data["transitions"] += [
        {
            "from": "awaiting_funds",
            "event": "funding_expired",
            "to": "refunding",
            "label": "逾期未足额入金，原路退回",
            "guard": "has_custody_funds",
            "actions": ["refund_to_origin"],
        },
        {
            "from": "awaiting_funds",
            "event": "funding_expired",
            "to": "cancelled",
            "label": "逾期未入金，取消",
            "guard": "!has_custody_funds",
        },
    ]
    return json.dumps(data, ensure_ascii=False, indent=2)


def through_the_flow(rt: Runtime, kind: str, name: str, content: str, simulated: bool = True) -> dict:
    """Draft and submission by ops, the real simulation (else a recorded pass: a new version of a workflow runs
    every city product of that workflow, which test_definition_simulation covers), approval and publication by
    the reviewer."""
    publishing.save_draft(rt, kind, name, content, "ops")
    publishing.submit(rt, kind, name, "ops")
    if simulated:
        report = simulate_definition(rt, kind, name, "ops")
        assert report["ok"], report["problems"]
    else:
        report = {"ok": True, "runs": []}
        publishing.record_simulation(rt, kind, name, content, report, "test")
    publishing.review(rt, kind, name, "reviewer", "同意", approve=True)
    publishing.publish(rt, kind, name, "reviewer")
    return report


def _fee_fen(rt: Runtime, deal_id: int) -> list[int]:
    with rt.db.uow() as uow:
        rows = uow.session.scalars(select(LedgerTransfer).where(LedgerTransfer.deal_id == deal_id))
        return [t.amount_fen for t in rows if t.id.startswith("fee:")]


def test_issue_17_done_when(client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int]) -> None:
    # a resale deal: plan, fee, working days, extra field - all configuration, on a workflow version from the flow
    through_the_flow(rt, "workflow", "resale_escrow@4", resale_v4(), simulated=False)
    beijing = {
        "workflow": {"id": "resale_escrow", "version": 4},
        "agreement": {"template": "resale_escrow/v2"},
        "release": PLAN_90_10,
        "fees": SELLER_FEE,
        "form": HOUSE_AREA,
        "deadlines": {"funding_deadline": {"working_days": 3, "bank_cut_off": True}},
    }
    patch_city(rt, "110000", {"products": {"resale_escrow": beijing}})
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    now = [OPENED_AT]
    rt.clock = lambda: now[0]
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", {**RESALE_FORM, "house_area": "89.37"})
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000117")
    view = deals.deal_view(rt, agent, deal_id)
    assert [(d.label, d.text, d.due_at) for d in view.deadlines] == [("入金期限", "3个工作日", FUNDING_DUE)]
    agreement = html_text(deals.agreement_html(rt, agent, deal_id))
    assert "放款计划" in agreement and "过户完成后释放" in agreement and "物业交割后释放" in agreement
    assert "存管服务费：由卖方承担，按存管金额的0.30%计收，最低¥500.00，金额¥3,703.70" in agreement
    assert "附加信息" in agreement and "房屋面积" in agreement and "89.37" in agreement

    # a broken workflow version is refused before publishing; the running deal is untouched and goes on
    broken = json.loads(resale_v4())
    broken["version"] = 5
    broken["transitions"][0]["actions"] = ["teleport_money"]
    publishing.save_draft(rt, "workflow", "resale_escrow@5", json.dumps(broken), "ops")
    with pytest.raises(publishing.DefinitionInvalid) as refused:
        publishing.submit(rt, "workflow", "resale_escrow@5", "ops")
    assert any("动作不存在" in problem for problem in refused.value.details)
    assert ("resale_escrow", 5) not in rt.workflows and load_deal(rt, deal_id).workflow_version == 4

    now[0] = datetime(2026, 10, 9, 2, 0, tzinfo=UTC)
    arrive(client, keys_dir, "6226000000000117", CUSTODY_FEN, "S-DONE-1")
    assert load_deal(rt, deal_id).state == "funded"
    deals.record_title_transferred(rt, ops, deal_id)
    first = _pay(client, keys_dir, rt, deal_id)
    assert load_deal(rt, deal_id).state == "partly_released"
    deals.manual_action(rt, ops, deal_id, "handover_done", "已办理物业交割")
    payouts = _pay(client, keys_dir, rt, deal_id)
    assert len(first) == 1 and [p.payee_account for p in payouts] == [RESALE_FORM["seller_bank_account"]] * 2
    fees = [333_333, 37_037]  # the seller's fee comes off each tranche in proportion: ¥3,703.70 in all
    assert sum(fees) == FEE_FEN and _fee_fen(rt, deal_id) == fees, "charged once, with each release"
    assert [p.amount_fen for p in payouts] == [111_111_110 - fees[0], 12_345_679 - fees[1]]
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed"
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).ok

    # a new bank and 新房资金监管 by configuration alone: simulated with the simulator playing the bank, published, used
    bank = cmbx(keys_dir)
    assert through_the_flow(rt, "bank", "cmbx", text(bank))["runs"] == [], "no city uses it yet: checked only"
    patch_city(rt, "310000", {"products": {"new_home_supervision": {"banks": ["cmbx"]}}})
    report = through_the_flow(rt, "product", "new_home_supervision", text(NEW_HOME | {"name": "新房资金监管"}))
    assert [(run["city"], run["product"], run["ok"]) for run in report["runs"]] == [
        ("310000", "new_home_supervision", True)
    ]
    new_home = deals.create_deal(rt, agent, "310000", "new_home_supervision", dict(NEW_HOME_FORM))
    deals.confirm_agreement(rt, agent, new_home)
    made = load_deal(rt, new_home)
    assert (made.bank_code, made.deal_no[:2]) == ("cmbx", "NH")
    account_no = rt.known_banks["cmbx"].account_format.account_no(117)
    opened = notification(
        "account_opened",
        request_id=virtual_account(rt, new_home).request_id,
        account_no=account_no,
        account_name="存管",
    )
    status, answer = post_callback(client, keys_dir, opened, bank="cmbx", signing_key=cmbc_key(keys_dir))
    assert (status, answer["code"]) == (200, "OK"), answer
    paid = notification(
        "funds_arrived",
        account_no=account_no,
        amount_fen=load_deal(rt, new_home).custody_amount_fen,
        bank_reference="REF-CMBX-NH",
        payer_name=NEW_HOME_FORM["buyer_name"],
        payer_account=NEW_HOME_FORM["buyer_bank_account"],
        arrived_at="2026-10-09T08:00:00Z",
    )
    status, answer = post_callback(client, keys_dir, paid, bank="cmbx", signing_key=cmbc_key(keys_dir))
    assert (status, answer["code"]) == (200, "OK"), answer
    assert load_deal(rt, new_home).state == "funded"
