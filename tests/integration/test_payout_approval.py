"""A payout above the city's threshold waits for a second person; the money is held meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.models import Job, Payout
from app.deals import service as deals
from app.ledger.repo import LedgerRepository
from app.payouts import approvals as payout_approvals
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import RESALE_FORM, actor, arrive, load_deal, open_account, post_confirmed

BIG = {**RESALE_FORM, "price": "9000000", "custody_amount": "6000000"}  # above 北京's ¥5,000,000 line
BIG_FEN = 6_000_000_00


def _released_big_deal(client: FlaskClient, rt: Runtime, keys_dir: Path) -> tuple[int, str]:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", BIG)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000777")
    arrive(client, keys_dir, "6226000000000777", BIG_FEN, "REF-BIG")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    return deal_id, load_deal(rt, deal_id).payouts[0].payout_id


def _submit_jobs(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return len(uow.session.scalars(select(Job).where(Job.kind == "submit_payout")).all())


def test_a_large_payout_waits_for_a_second_person_with_the_money_held(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    deal_id, payout_id = _released_big_deal(client, rt, keys_dir)
    deal_no = load_deal(rt, deal_id).deal_no
    with rt.db.uow() as uow:
        payout = uow.session.scalars(select(Payout)).one()
        assert (payout.status, payout.requested_by, payout.approvals_required) == ("awaiting_approval", "user:ops", 2)
        assert LedgerRepository(uow.session).totals(f"custody:{deal_no}")[2] == BIG_FEN, "held while waiting"
    assert _submit_jobs(rt) == 0, "the bank sees nothing before approval"
    with pytest.raises(ValidationError) as same:
        payout_approvals.approve(rt, actor(rt, "ops"), payout_id)
    assert same.value.code == "SAME_PERSON"
    with pytest.raises(ValidationError) as agent:
        payout_approvals.approve(rt, actor(rt, "agent"), payout_id)
    assert agent.value.code == "ROLE_NOT_ALLOWED"
    outcome = payout_approvals.approve(rt, actor(rt, "finance"), payout_id)
    assert outcome.released and _submit_jobs(rt) == 1
    with pytest.raises(ValidationError):
        payout_approvals.approve(rt, actor(rt, "finance"), payout_id)
    assert any(event.event == "payout_approved" for event in load_deal(rt, deal_id).events)


def test_a_large_payout_the_system_opened_needs_two_people(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    _, payout_id = _released_big_deal(client, rt, keys_dir)
    with rt.db.uow() as uow:  # as a timer or the bank's answer opens it: nobody has asked for it yet
        payout = uow.session.scalars(select(Payout)).one()
        payout.requested_by = "system"
        uow.commit()
    first = payout_approvals.approve(rt, actor(rt, "finance"), payout_id)
    assert (first.released, first.approvals, first.required_others) == (False, 1, 2)
    assert _submit_jobs(rt) == 0, "one person is not enough"
    with pytest.raises(ValidationError) as again:
        payout_approvals.approve(rt, actor(rt, "finance"), payout_id)
    assert again.value.code == "SAME_PERSON"
    second = payout_approvals.approve(rt, actor(rt, "ops"), payout_id)
    assert second.released and _submit_jobs(rt) == 1


def test_finance_approves_from_the_deal_page(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login
) -> None:
    deal_id, payout_id = _released_big_deal(client, rt, keys_dir)
    assert "审批通过付款" not in login("ops").get(f"/deals/{deal_id}").text, "not for the one who asked"
    page = login("finance").get(f"/deals/{deal_id}").text
    assert "待审批" in page and "审批通过付款" in page
    answer = post_confirmed(client, f"/payouts/{payout_id}/approve", {"csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    assert "已提交银行" in client.get(answer.headers["Location"]).text
    assert _submit_jobs(rt) == 1


def test_a_payout_under_the_line_goes_to_the_bank_at_once(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000778")
    arrive(client, keys_dir, "6226000000000778", 123_456_789, "REF-SMALL")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    assert load_deal(rt, deal_id).payouts[0].status == "pending" and _submit_jobs(rt) == 1
