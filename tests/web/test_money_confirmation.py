"""Money moves only after a confirmation step: the first POST shows payee (masked), amount in figures and 大写
and the approval that follows, and moves nothing; only the POST with that step's token pays. Actions a deal's
state does not take are neither offered nor done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.db.models import Payout
from app.deals import service as deals
from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    arrive,
    confirmation_fields,
    confirmed_deal,
    load_deal,
    open_account,
)

Login = Callable[[str], FlaskClient]


def _money(rt: Runtime, deal_no: str) -> tuple[int, int]:
    """(free balance of the deal's custody, payouts opened)."""
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        account = repo.account(f"custody:{deal_no}")
        held = account.debits_pending
        payouts = uow.session.scalar(select(func.count()).select_from(Payout)) or 0
        return repo.balance(f"custody:{deal_no}") - held, payouts


@pytest.fixture
def funded(client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict) -> tuple[int, str]:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, "6226000000000401")
    arrive(client, keys_dir, "6226000000000401", CUSTODY_FEN, "REF-C1")
    return deal_id, load_deal(rt, deal_id).deal_no


def test_title_transfer_pays_only_after_its_confirmation(login: Login, rt: Runtime, funded: tuple[int, str]) -> None:
    deal_id, deal_no = funded
    ops = login("ops")
    url = f"/deals/{deal_id}/title-transferred"
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    before = _money(rt, deal_no)

    page = ops.post(url, data={"csrf_token": token})
    assert page.status_code == 200 and 'id="money-confirmation"' in page.text
    assert "¥1,234,567.89" in page.text and "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in page.text
    assert RESALE_FORM["seller_bank_account"] not in page.text and "3445" in page.text, "payee account masked"
    assert RESALE_FORM["seller_name"] not in page.text and "李*" in page.text, "payee name masked"
    assert "审批" in page.text, "says which approval follows"
    assert _money(rt, deal_no) == before and load_deal(rt, deal_id).state == "funded", "the preview moved nothing"

    forged = ops.post(url, data={"csrf_token": token, "confirm_token": "forged"})
    assert forged.status_code == 200 and "确认已失效" in forged.text
    assert _money(rt, deal_no) == before, "a wrong token moves nothing"
    fields = confirmation_fields(page.text)
    cancel = {"csrf_token": token, "reason": "x", "confirm_token": fields["confirm_token"]}
    assert "确认已失效" in ops.post(f"/deals/{deal_id}/actions/cancel", data=cancel).text, "bound to its action"
    assert _money(rt, deal_no) == before and load_deal(rt, deal_id).state == "funded"

    done = ops.post(url, data=fields)
    assert done.status_code == 302
    assert _money(rt, deal_no)[1] == before[1] + 1, "the confirmed POST opened the payout"
    assert load_deal(rt, deal_id).state != "funded"
    status = ops.get(f"/deals/{deal_id}/status")
    live = status.get_json()
    assert status.headers["Cache-Control"] == "no-store" and live["state_label"] and live["events"] >= 4
    assert any("付款" in text for text in live["progress"]) and not live["settled"], "the payout under way, in words"
    assert (
        'id="live-status"' in ops.get(f"/deals/{deal_id}").text and "deal_live.js" in ops.get(f"/deals/{deal_id}").text
    )


def test_ended_deal_offers_no_freeze_or_signing_and_refuses_them(
    login: Login, rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict
) -> None:
    deal_id = confirmed_deal(rt)  # signed by the platform, the bank's countersignature still missing
    open_account(client, keys_dir, rt, deal_id, "6226000000000402")
    deals.manual_action(rt, actor(rt, "ops"), deal_id, "cancel", "双方解约")  # nothing arrived: cancelled
    assert load_deal(rt, deal_id).state == "cancelled"
    ops = login("ops")
    page = ops.get(f"/deals/{deal_id}").text
    assert 'id="freeze-form"' not in page and 'id="resend-signature-form"' not in page
    assert "过户完成" not in page and 'id="propose-amendment-form"' not in page
    token = csrf_token(page)
    answer = ops.post(f"/deals/{deal_id}/resend-signature", data={"csrf_token": token, "reason": "再签"})
    assert answer.status_code == 302
    assert "存管单已结束" in ops.get(f"/deals/{deal_id}").text
    refused = ops.post(f"/deals/{deal_id}/title-transferred", data={"csrf_token": token}, follow_redirects=True)
    assert "不能执行" in refused.text and 'id="money-confirmation"' not in refused.text


def test_payee_account_must_be_typed_twice(login: Login, rt: Runtime, users: dict) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    proposal = {"csrf_token": token, "payee_name": "李四", "reason": "卖方更换收款卡"}
    typo = ops.post(
        f"/deals/{deal_id}/payee-amendments",
        data={**proposal, "payee_account": "6222020200112233446", "payee_account_again": "6222020200112233464"},
        follow_redirects=True,
    )
    assert "两次输入的收款账号不一致" in typo.text and "收款账户变更待审批" not in typo.text
