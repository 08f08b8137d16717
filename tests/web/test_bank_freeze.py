"""Issue 15 case 10: a guarantee's freeze and unfreeze are bank operations. The worker asks the bank
(`POST /v1/freezes`, `/v1/unfreezes`), the ledger books them only on the bank's receipt signed with the bank's
key, and nobody types an account. Through HTTP (the deal's pages and actions, the simulated bank over HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.crypto.keys import ensure_private_key
from app.db.models import Job
from app.deals import service as deals
from app.deals.bank_freeze import FREEZE_JOB, UNFREEZE_JOB
from app.deals.case_blocks import free_in_custody
from app.platform.config import BankEndpoint
from app.platform.runtime import Runtime
from app.queue.worker import run_worker
from tests.conftest import csrf_token
from tests.factories import actor, load_deal, post_confirmed
from tests.integration.simulator_support import InProcessSimulator, bank_over_http

Login = Callable[[str], FlaskClient]
AMOUNT_FEN = 5_000_000
FORM = {
    "applicant_kind": "个人",
    "applicant_name": "张三",
    "applicant_id_number": "11010519491231002X",
    "applicant_phone": "13912345678",
    "beneficiary_name": "青岛示例建设有限公司",
    "beneficiary_bank_account": "6222600260001072444",
    "freeze_amount": "50000",
    "freeze_from": "2026-11-23",
}


@pytest.fixture
def bank(rt: Runtime, keys_dir: Path, tmp_path: Path) -> Iterator[InProcessSimulator]:
    """青岛's guarantees are at BOC: the simulated BOC, over HTTP."""
    with bank_over_http(rt, keys_dir, tmp_path, bank_code="boc") as sim:
        yield sim


def _confirmed(rt: Runtime, login: Login) -> int:
    """A guarantee the agent confirmed on its page: the deal waits for the bank's freeze."""
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "370200", "guarantee_release", FORM)
    agent = login("agent")
    page = agent.get(f"/deals/{deal_id}").text
    assert "冻结账户" in page and "确认协议后申请冻结" in page and "存管虚户" not in page
    token = csrf_token(page)
    assert agent.post(f"/deals/{deal_id}/confirm", data={"csrf_token": token}).status_code in (302, 303)
    assert load_deal(rt, deal_id).state == "freezing"
    page = agent.get(f"/deals/{deal_id}").text
    assert "冻结申请已提交，等待银行回执" in page and "确认协议后开立" not in page
    return deal_id


def _work(rt: Runtime) -> None:
    """Every job due now (retries included) runs."""
    with rt.db.uow() as uow:
        uow.session.execute(update(Job).where(Job.status == "pending").values(run_after=rt.clock()))
        uow.commit()
    run_worker(rt, should_stop=lambda: False, burst=True)


def _jobs(rt: Runtime, kind: str) -> list[Job]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Job).where(Job.kind == kind)))


def _held(rt: Runtime, deal_id: int) -> int:
    deal = load_deal(rt, deal_id)
    with rt.db.uow() as uow:
        return free_in_custody(uow.session, deal)


def _forge(bank: InProcessSimulator, tmp_path: Path) -> bytes:
    """From now on the simulated BOC signs with a key that is not the one the platform holds for BOC; returns
    the bank's own key."""
    own = bank.parts.keys.bank_private_keys["boc"]
    bank.parts.keys.bank_private_keys["boc"] = ensure_private_key(tmp_path / "forger.key.pem")
    return own


def _ops_action(login: Login, deal_id: int, event: str) -> int:
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    return post_confirmed(
        ops, f"/deals/{deal_id}/actions/{event}", {"csrf_token": token, "reason": "条件达成"}
    ).status_code


def test_the_freeze_is_booked_only_on_the_banks_signed_receipt(
    rt: Runtime, login: Login, bank: InProcessSimulator
) -> None:
    deal_id = _confirmed(rt, login)
    assert _held(rt, deal_id) == 0, "nothing is held before the bank answered"
    _work(rt)
    deal = load_deal(rt, deal_id)
    assert deal.state == "frozen" and _held(rt, deal_id) == AMOUNT_FEN
    (frozen,) = [a for a in bank.state("boc")["accounts"] if a["request_id"] == f"FZ-{deal.deal_no}"]
    assert deal.virtual_account is not None and deal.virtual_account.account_no == frozen["account_no"]
    assert frozen["balance_fen"] == AMOUNT_FEN, "the bank froze the amount the agreement names"
    page = login("ops").get(f"/deals/{deal_id}").text
    assert "已冻结" in page and "frozen_account" not in page, "no account is typed anywhere"
    assert f'<strong id="account-no">{frozen["account_no"]}</strong>' in page and "冻结账户" in page


def test_a_forged_receipt_books_nothing(rt: Runtime, login: Login, bank: InProcessSimulator, tmp_path: Path) -> None:
    _forge(bank, tmp_path)
    deal_id = _confirmed(rt, login)
    _work(rt)
    deal = load_deal(rt, deal_id)
    assert (deal.state, _held(rt, deal_id), deal.virtual_account) == ("freezing", 0, None)
    (job,) = _jobs(rt, FREEZE_JOB)
    assert job.status in ("pending", "dead") and "回执" in (job.last_error or "")


def test_the_bank_unreachable_is_retried_and_nothing_is_booked_meanwhile(
    rt: Runtime, login: Login, bank: InProcessSimulator
) -> None:
    reachable = rt.banks["boc"]
    rt.banks["boc"] = BankEndpoint("boc", reachable.name, "http://127.0.0.1:9")  # nothing listens there
    deal_id = _confirmed(rt, login)
    run_worker(rt, should_stop=lambda: False, burst=True)
    (job,) = _jobs(rt, FREEZE_JOB)
    assert (job.status, job.attempts) == ("pending", 1), "retried later"
    assert (load_deal(rt, deal_id).state, _held(rt, deal_id)) == ("freezing", 0)
    rt.banks["boc"] = reachable
    _work(rt)
    assert (load_deal(rt, deal_id).state, _held(rt, deal_id)) == ("frozen", AMOUNT_FEN)


def test_a_refusal_by_the_bank_is_shown_on_the_deal(rt: Runtime, login: Login, bank: InProcessSimulator) -> None:
    assert bank.client.put("/sim/faults/boc", json={"freeze_refusal": 1.0}).status_code == 200
    deal_id = _confirmed(rt, login)
    _work(rt)
    assert (load_deal(rt, deal_id).state, _held(rt, deal_id)) == ("cancelled", 0)
    assert "银行拒绝冻结" in login("ops").get(f"/deals/{deal_id}").text


def test_the_unfreeze_is_booked_only_on_the_banks_signed_receipt(
    rt: Runtime, login: Login, bank: InProcessSimulator, tmp_path: Path
) -> None:
    deal_id = _confirmed(rt, login)
    _work(rt)
    assert _ops_action(login, deal_id, "conditions_met") in (302, 303)
    assert load_deal(rt, deal_id).state == "unfreezing"
    own = _forge(bank, tmp_path)
    _work(rt)
    assert (load_deal(rt, deal_id).state, _held(rt, deal_id)) == ("unfreezing", AMOUNT_FEN), "forged: nothing booked"
    bank.parts.keys.bank_private_keys["boc"] = own
    _work(rt)
    (job,) = _jobs(rt, UNFREEZE_JOB)
    assert job.status == "done"
    assert (load_deal(rt, deal_id).state, _held(rt, deal_id)) == ("released", 0)


def test_nobody_confirms_a_freeze_or_an_unfreeze_by_hand(rt: Runtime, login: Login, bank: InProcessSimulator) -> None:
    deal_id = _confirmed(rt, login)
    for event in ("freeze_confirmed", "freeze_failed", "unfreeze_confirmed"):
        assert _ops_action(login, deal_id, event) == 404, event
    assert (load_deal(rt, deal_id).state, _held(rt, deal_id)) == ("freezing", 0)
