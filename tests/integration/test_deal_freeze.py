"""A frozen deal sends no money: its payout submissions wait (the bank never sees them), approval is refused;
unfreezing sends them. Freeze and unfreeze need ops and a reason, and are audited with before/after."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.audit_models import AuditEntry
from app.db.models import Job
from app.deals import freeze as deal_freeze
from app.deals import service as deals
from app.payouts import approvals as payout_approvals
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.factories import RESALE_FORM, actor, load_deal, notification, post_callback
from tests.integration.test_payout_approval import _released_big_deal
from tests.integration.test_worker_jobs import FakeBank, _funded_and_released, _run_due, bank  # noqa: F401


def _submit_job(rt: Runtime) -> Job:
    with rt.db.uow() as uow:
        return uow.session.scalars(select(Job).where(Job.kind == "submit_payout")).one()


def _audit(rt: Runtime) -> list[AuditEntry]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_a_frozen_deals_payout_never_reaches_the_bank_until_unfrozen(
    client: FlaskClient,
    rt: Runtime,
    keys_dir: Path,
    users: dict,
    bank: FakeBank,  # noqa: F811 - the fixture
) -> None:
    ops = actor(rt, "ops")
    deal_id = _funded_and_released(client, rt, keys_dir)  # opened, funded; the payout is not yet submitted
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    deal_freeze.freeze(rt, ops, deal_id, "法院协助冻结通知书（2026）京0105执保123号")
    for later in (0, 10, 400, 1000):  # the worker keeps looking; the freeze keeps holding
        _run_due(rt, later_s=later)
    assert [name for name, _ in bank.calls] == [], "the bank never sees a frozen deal's payout"
    job = _submit_job(rt)
    assert (job.status, job.attempts) == ("pending", 0), "deferred, not failed: no attempt spent"
    assert "存管单已冻结" in (job.last_error or "")
    deal = load_deal(rt, deal_id)
    assert deal.frozen_by == "user:ops" and deal.payouts[0].status == "pending" and deal.state == "releasing"

    assert deal_freeze.unfreeze(rt, ops, deal_id, "法院解除冻结") == 1, "the waiting submission wakes up"
    _run_due(rt)  # now, not after the deferral
    assert [name for name, _ in bank.calls] == ["submit"]
    assert bank.calls[0][1].payout_id == payout_id  # type: ignore[attr-defined]
    paid = notification(
        "payout_result", payout_id=payout_id, bank_reference="BANK-REF-1", status="succeeded", failure_reason=None
    )
    assert post_callback(client, keys_dir, paid)[0] == 200
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and deal.payouts[0].status == "succeeded" and deal.frozen_at is None
    entries = [e for e in _audit(rt) if e.action in ("deal.freeze", "deal.unfreeze")]
    assert [e.action for e in entries] == ["deal.freeze", "deal.unfreeze"]
    freeze, unfreeze = entries
    assert freeze.before["frozen"] is False and freeze.after["frozen"] is True
    assert freeze.after["frozen_reason"].startswith("法院协助冻结") and freeze.detail["reason"].endswith("123号")
    assert unfreeze.before["frozen_by"] == "user:ops" and unfreeze.after["frozen"] is False
    assert [e.event for e in deal.events if e.event in ("freeze", "unfreeze")] == ["freeze", "unfreeze"]


def test_approving_a_frozen_deals_payout_is_refused(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login
) -> None:
    deal_id, payout_id = _released_big_deal(client, rt, keys_dir)
    deal_freeze.freeze(rt, actor(rt, "ops"), deal_id, "风险排查")
    with pytest.raises(ValidationError) as refused:
        payout_approvals.approve(rt, actor(rt, "finance"), payout_id)
    assert refused.value.code == "DEAL_FROZEN" and "冻结" in refused.value.message
    page = login("finance").get(f"/deals/{deal_id}").text
    assert "已冻结" in page and "风险排查" in page and "审批通过付款" not in page
    deal_freeze.unfreeze(rt, actor(rt, "ops"), deal_id, "排查完毕")
    assert payout_approvals.approve(rt, actor(rt, "finance"), payout_id).released


def test_freeze_needs_ops_a_reason_and_a_change(rt: Runtime, users: dict) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    cases = [
        ("finance", "x", "ROLE_NOT_ALLOWED"),
        ("ops", "  ", "REASON_REQUIRED"),
        ("ops", "长" * 257, "REASON_TOO_LONG"),
    ]
    for who, reason, code in cases:
        with pytest.raises(ValidationError) as refused:
            deal_freeze.freeze(rt, actor(rt, who), deal_id, reason)
        assert refused.value.code == code
    with pytest.raises(ValidationError) as not_frozen:
        deal_freeze.unfreeze(rt, actor(rt, "ops"), deal_id, "解冻")
    assert not_frozen.value.code == "NOT_FROZEN"
    deal_freeze.freeze(rt, actor(rt, "ops"), deal_id, "冻结")
    with pytest.raises(ValidationError) as twice:
        deal_freeze.freeze(rt, actor(rt, "ops"), deal_id, "再冻结")
    assert twice.value.code == "ALREADY_FROZEN"
    cancelled = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    deals.manual_action(rt, actor(rt, "ops"), cancelled, "cancel", "买卖双方解约")
    with pytest.raises(ValidationError) as finished:
        deal_freeze.freeze(rt, actor(rt, "ops"), cancelled, "冻结")
    assert finished.value.code == "DEAL_FINISHED"
    assert [e.action for e in _audit(rt) if e.action.startswith("deal.freeze")] == ["deal.freeze"], (
        "refusals leave no audit entry"
    )
