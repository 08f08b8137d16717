"""The simulations' fund-safety invariants (`app.tools.vopr.invariants`) hold on a real deal's life and find
planted breaches: a payout approved by whoever asked for it or twice by one person, a payout sent on with too
few approvals, a suspense credit matched by one person alone, payouts the audit log does not explain."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from app.db.models import Payout, SuspenseItem
from app.deals import service as deals
from app.platform.runtime import Runtime
from app.tools.vopr.invariants import audit_problems, fund_safety_problems
from tests.factories import actor
from tests.web.test_payee_rules import _funded_resale


def _problems(rt: Runtime) -> list[str]:
    with rt.db.uow() as uow:
        return fund_safety_problems(uow.session, rt.products)


def test_a_released_deal_breaks_no_invariant(rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict) -> None:
    deal_id = _funded_resale(rt, client, keys_dir)
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)  # opens the release payout, audited
    with rt.db.uow() as uow:
        assert uow.session.query(Payout).filter_by(deal_id=deal_id).count() == 1
    assert _problems(rt) == []
    assert audit_problems(rt) == []


def test_the_invariants_find_one_person_approvals_and_unaudited_payouts(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict
) -> None:
    deal_id = _funded_resale(rt, client, keys_dir)
    planted = [  # (payout id, approvals required, requested by, approved by, status)
        ("SELF", 2, "user:ops", ["user:ops"], "pending"),
        ("TWICE", 3, "user:ops", ["user:finance", "user:finance"], "submitted"),
        ("WAITING", 2, "user:ops", [], "awaiting_approval"),
    ]
    with rt.db.uow() as uow:
        for payout_id, required, requested_by, approved_by, status in planted:
            uow.session.add(
                Payout(
                    payout_id=payout_id,
                    deal_id=deal_id,
                    bank_code="ceb",
                    amount_fen=1,
                    payee_name="某某",
                    payee_account="6222000011112222",
                    purpose="release",
                    status=status,
                    approvals_required=required,
                    requested_by=requested_by,
                    approved_by=approved_by,
                )
            )
        uow.session.add(
            SuspenseItem(
                bank_code="ceb",
                bank_reference="REF-ALONE",
                transfer_id="suspense:ceb:REF-ALONE",
                account_no="6226000000000555",
                amount_fen=100,
                reason="wrong_payer",
                status="matched",
                deal_id=deal_id,
                resolution="财务独自匹配",
                resolved_by="user:finance",
            )
        )
        uow.commit()
    problems = _problems(rt)
    four_eyes = sorted(p for p in problems if p.startswith("four eyes:"))
    assert four_eyes == [
        "four eyes: SELF: approved by its requester user:ops",
        "four eyes: TWICE: one person approved it twice (['user:finance', 'user:finance'])",
        "four eyes: TWICE: submitted with 1 of 2 approvals",
        "four eyes: suspense 1: matched by user:finance, proposed by None",
    ]
    unaudited = sorted(p for p in problems if p.startswith("audit:"))
    assert unaudited == [
        "audit: SELF (pending): no payout.open in the audit log",
        "audit: TWICE (submitted): no payout.open, payout.submitted in the audit log",
        "audit: WAITING (awaiting_approval): no payout.open in the audit log",
    ]
