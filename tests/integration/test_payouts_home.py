"""One home per capability: every payout (a deal's release and refund, a suspense item's return) is made by
the payouts package and ends with its hold posted or voided; every credit of a deal's custody keeps its
transfer id (`arrival:`, `rematch:`, `match:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.bank_inbox import suspense
from app.db.ledger_models import LedgerTransfer
from app.db.models import Deal, Payout
from app.deals import service as deals
from app.ledger.repo import LedgerRepository, check_ledger
from app.payouts import lifecycle
from app.payouts.status import PayoutPurpose, PayoutStatus
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    arrive,
    bank_accepted,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    post_callback,
)

ACCOUNT = "6226000000000777"


def _result(client: FlaskClient, keys_dir: Path, payout_id: str, status: str) -> None:
    bank_accepted(client.application.extensions["cunguan.runtime"], payout_id)
    body = notification(
        "payout_result",
        payout_id=payout_id,
        status=status,
        bank_reference=f"B-{payout_id}",
        failure_reason="账户状态异常" if status == "failed" else None,
    )
    assert post_callback(client, keys_dir, body)[0] == 200


def _newest_payout(rt: Runtime, purpose: PayoutPurpose) -> Payout:
    with rt.db.uow() as uow:
        return uow.session.scalars(
            select(Payout).where(Payout.purpose == purpose).order_by(Payout.id.desc()).limit(1)
        ).one()


def _transfer_ids(rt: Runtime) -> set[str]:
    with rt.db.uow() as uow:
        return set(uow.session.scalars(select(LedgerTransfer.id)))


def test_a_release_a_refund_and_a_return_are_made_by_one_constructor_and_end_with_resolved_holds(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[str, str]] = []
    real_create = lifecycle._create

    def spy(*args: Any, **kwargs: Any) -> Payout:
        payout = real_create(*args, **kwargs)
        made.append((payout.payout_id, payout.purpose))
        return payout

    monkeypatch.setattr(lifecycle, "_create", spy)
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "H-1")
    arrive(client, keys_dir, ACCOUNT, 12_345, "H-2")  # an overpayment: refunded when the deal closes
    deals.record_title_transferred(rt, ops, deal_id)
    _result(client, keys_dir, _newest_payout(rt, PayoutPurpose.RELEASE).payout_id, "succeeded")
    _result(client, keys_dir, _newest_payout(rt, PayoutPurpose.REFUND).payout_id, "succeeded")
    assert load_deal(rt, deal_id).state == "closed"
    arrive(client, keys_dir, ACCOUNT, 7_00, "H-LATE")  # after the end: returned from suspense
    returned = _newest_payout(rt, PayoutPurpose.RETURN)
    _result(client, keys_dir, returned.payout_id, "failed")  # failed first: the hold is voided
    suspense.return_item(rt, returned.suspense_item_id, "再次原路退回", "user:finance")
    _result(client, keys_dir, _newest_payout(rt, PayoutPurpose.RETURN).payout_id, "succeeded")

    deal_no = load_deal(rt, deal_id).deal_no
    with rt.db.uow() as uow:
        payouts = list(uow.session.scalars(select(Payout).order_by(Payout.id)))
        assert [(p.payout_id, p.purpose) for p in payouts] == made, "every payout came from the constructor"
        assert [p.purpose for p in payouts] == ["release", "refund", "return", "return"]
        assert [p.status for p in payouts] == ["succeeded", "succeeded", "failed", "succeeded"]
        repo = LedgerRepository(uow.session)
        assert repo.totals(f"custody:{deal_no}")[2] == 0, "no custody hold left"
        assert repo.totals("suspense:ceb")[2] == 0 and repo.balance("suspense:ceb") == 0
        assert check_ledger(uow.session).ok
    ids = _transfer_ids(rt)
    for payout in payouts:
        resolution = ":posted" if payout.status == PayoutStatus.SUCCEEDED else ":void"
        assert {f"payout:{payout.payout_id}", f"payout:{payout.payout_id}{resolution}"} <= ids
    assert {"arrival:ceb:H-1", "arrival:ceb:H-2", "arrival:ceb:H-LATE"} <= ids


def test_a_payout_on_its_own_settles_its_hold_even_when_the_deal_does_not_take_the_result(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int]
) -> None:
    """Resale's release is not in a group: its hold used to be posted only by the workflow's `settle_payout`.
    The bank's result is a fact for the ledger whatever state the deal is in."""
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "S-1")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    payout_id = _newest_payout(rt, PayoutPurpose.RELEASE).payout_id
    with rt.db.uow() as uow:  # the deal moved on meanwhile (as a person's correction could make it)
        moved = uow.session.get(Deal, deal_id)
        assert moved is not None
        moved.state = "funded"
        uow.commit()
    _result(client, keys_dir, payout_id, "succeeded")
    deal = load_deal(rt, deal_id)
    assert deal.state == "funded" and deal.events[-1].detail["label"] == "已记录，未触发流转"
    assert f"payout:{payout_id}:posted" in _transfer_ids(rt)
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).totals(f"custody:{deal.deal_no}")[2] == 0


def test_money_matched_from_suspense_keeps_its_transfer_ids_and_never_goes_to_an_ended_deal(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int]
) -> None:
    early = confirmed_deal(rt)
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "R-EARLY")  # before `account_opened`
    open_account(client, keys_dir, rt, early, ACCOUNT)
    assert load_deal(rt, early).state == "funded"
    arrive(client, keys_dir, "6226999999999990", 10_00, "R-TYPO")  # an account nobody has
    item_id = suspense.list_items(rt)[0].id
    suspense.propose_match(rt, item_id, load_deal(rt, early).deal_no, "买方确认", "user:finance")
    suspense.approve_match(rt, item_id, "user:finance2")
    assert {"rematch:ceb:R-EARLY", "match:ceb:R-TYPO"} <= _transfer_ids(rt)
    assert [e.event for e in load_deal(rt, early).events].count("funds_arrived") == 2, "each credit fired once"

    deals.record_title_transferred(rt, actor(rt, "ops"), early)
    _result(client, keys_dir, _newest_payout(rt, PayoutPurpose.RELEASE).payout_id, "succeeded")
    assert load_deal(rt, early).state == "closed"
    arrive(client, keys_dir, "6226999999999991", 5_00, "R-LATE")
    item_id = suspense.list_items(rt)[0].id
    with pytest.raises(ValidationError) as refused:
        suspense.propose_match(rt, item_id, load_deal(rt, early).deal_no, "误匹配", "user:finance")
    assert refused.value.code == "DEAL_FINISHED", "a closed custody would keep the money for good"
    assert "match:ceb:R-LATE" not in _transfer_ids(rt)
