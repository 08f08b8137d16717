"""Ops freeze and unfreeze from the deal page and the console; batch actions (freeze deals, retry dead jobs,
approve payouts) confirm first, check each row on its own and say what was refused and why."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.db.audit_models import AuditEntry
from app.db.models import Job, Payout
from app.deals import freeze as deal_freeze
from app.deals import service as deals
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue
from tests.conftest import csrf_token
from tests.factories import (
    RESALE_FORM,
    actor,
    arrive,
    confirmation_fields,
    confirmed_deal,
    load_deal,
    open_account,
    post_confirmed,
)

Login = Callable[[str], FlaskClient]
BIG = {**RESALE_FORM, "price": "9000000", "custody_amount": "6000000"}  # above 北京's approval line


def _post(client: FlaskClient, path: str, follow: bool = True, **data: str | list[str]):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login").text)
    return post_confirmed(client, path, {**data, "csrf_token": token}, follow_redirects=follow)


def _flashes(html: str) -> str:
    return " ".join(
        re.sub(r"\s+", " ", m) for m in re.findall(r'class="(?:alert|flash)[^"]*"[^>]*>(.*?)</div>', html, re.S)
    )


def _audit(rt: Runtime, prefix: str) -> list[AuditEntry]:
    with rt.db.uow() as uow:
        query = select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)
        return list(uow.session.scalars(query))


def test_ops_freeze_and_unfreeze_on_the_deal_page_and_in_the_console(rt: Runtime, users: dict, login: Login) -> None:
    deal_id = confirmed_deal(rt)
    ops = login("ops")
    page = ops.get(f"/deals/{deal_id}").text
    assert "冻结原因" in page and "已冻结" not in page
    refused = _post(ops, f"/deals/{deal_id}/freeze", reason="  ")
    assert "请填写操作原因" in refused.text and load_deal(rt, deal_id).frozen_at is None
    page = _post(ops, f"/deals/{deal_id}/freeze", reason="公安机关协查").text
    assert "存管单已冻结" in page
    banner = re.search(r'id="frozen-banner">(.*?)</div>', page, re.S)
    assert banner and "已冻结" in banner.group(1) and "公安机关协查" in banner.group(1)
    assert "用户 测试ops（ops）" in banner.group(1), "who froze it, by name"
    assert "解冻原因" in page and "冻结原因" not in page
    console = ops.get(f"/admin/deals/{deal_id}").text
    assert 'id="frozen-banner"' in console and "公安机关协查" in console and 'id="unfreeze-form"' in console
    assert "已冻结" in ops.get("/admin/deals/").text, "the list marks frozen deals"
    page = _post(ops, f"/admin/deals/{deal_id}/unfreeze", reason="协查结束").text
    assert "存管单已解冻" in page and 'id="frozen-banner"' not in page and 'id="freeze-form"' in page
    assert [e.action for e in _audit(rt, "deal.") if e.action != "deal.create"] == ["deal.freeze", "deal.unfreeze"]
    finance = login("finance")
    assert 'id="freeze-form"' not in finance.get(f"/admin/deals/{deal_id}").text, "only ops freeze"
    assert _post(finance, f"/admin/deals/{deal_id}/freeze", follow=False, reason="x").status_code == 403
    assert _post(finance, f"/deals/{deal_id}/freeze", follow=False, reason="x").status_code == 403


def test_batch_freeze_confirms_needs_a_reason_and_reports_each_deal(rt: Runtime, users: dict, login: Login) -> None:
    first, second, third = (confirmed_deal(rt) for _ in range(3))
    deal_freeze.freeze(rt, actor(rt, "ops"), third, "早已冻结")
    ops = login("ops")
    listing = ops.get("/admin/deals/").text
    assert 'id="batch-form"' in listing and 'name="rowid"' in listing
    rows = [str(first), str(second), str(third)]
    confirm = _post(ops, "/admin/deals/batch", action="freeze", rowid=rows, url="/admin/deals/")
    assert "确认批量操作：冻结" in confirm.text and "已选择 3 项" in confirm.text and "操作原因" in confirm.text
    assert load_deal(rt, first).frozen_at is None, "nothing happens before confirmation"
    again = _post(ops, "/admin/deals/batch", action="freeze", rowid=rows, confirmed="1", reason=" ")
    assert "请填写操作原因" in again.text and load_deal(rt, first).frozen_at is None
    done = _post(ops, "/admin/deals/batch", action="freeze", rowid=rows, confirmed="1", reason="批量风控冻结")
    report = _flashes(done.text)
    assert (
        "成功 2 项" in report
        and "未执行 1 项" in report
        and f"{load_deal(rt, third).deal_no}：存管单已处于冻结状态" in report
    )
    assert all(load_deal(rt, d).frozen_reason == "批量风控冻结" for d in (first, second))
    assert len(_audit(rt, "deal.freeze")) == 3
    nothing = _post(ops, "/admin/deals/batch", action="freeze", confirmed="1", reason="x")
    assert "请先勾选" in nothing.text
    assert 'id="batch-form"' not in login("finance").get("/admin/deals/").text


def test_batch_retry_of_dead_jobs(rt: Runtime, users: dict, login: Login) -> None:
    with rt.db.uow() as uow:
        dead = [enqueue(uow.session, "open_virtual_account", {"virtual_account_id": n}, now=rt.clock()) for n in (1, 2)]
        done = enqueue(uow.session, "open_virtual_account", {"virtual_account_id": 3}, now=rt.clock())
        ids = [job.id for job in dead]
        uow.session.execute(update(Job).where(Job.id.in_(ids)).values(status="dead", attempts=8))
        uow.session.execute(update(Job).where(Job.id == done.id).values(status="done"))
        uow.commit()
    admin = login("admin")
    assert 'name="rowid"' in admin.get("/admin/jobs/?status=dead").text
    rows = [str(n) for n in (*ids, done.id)]
    confirm = _post(admin, "/admin/jobs/batch", action="retry", rowid=rows)
    assert "确认批量操作：重试" in confirm.text and "尝试次数清零" in confirm.text
    report = _flashes(
        _post(admin, "/admin/jobs/batch", action="retry", rowid=rows, confirmed="1", reason="银行恢复").text
    )
    assert "成功 2 项" in report and f"{done.id}：只能重试失败或已放弃的任务" in report
    with rt.db.uow() as uow:
        statuses = dict(uow.session.execute(select(Job.id, Job.status)).all())
    assert [statuses[n] for n in ids] == ["pending", "pending"] and statuses[done.id] == "done"
    assert [e.detail["reason"] for e in _audit(rt, "job.retry")] == ["银行恢复", "银行恢复"]


def _big_payout(client: FlaskClient, rt: Runtime, keys_dir: Path, account_no: str) -> tuple[int, str]:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", BIG)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, account_no)
    arrive(client, keys_dir, account_no, 6_000_000_00, f"REF-{account_no}")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    return deal_id, load_deal(rt, deal_id).payouts[0].payout_id


def test_payouts_awaiting_approval_list_and_batch_approval(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Login
) -> None:
    open_deal, open_payout = _big_payout(client, rt, keys_dir, "6226000000000881")
    frozen_deal, frozen_payout = _big_payout(client, rt, keys_dir, "6226000000000882")
    deal_freeze.freeze(rt, actor(rt, "ops"), frozen_deal, "司法冻结")
    finance = login("finance")
    page = finance.get("/admin/payouts/").text
    assert open_payout in page and frozen_payout in page and "¥6,000,000.00" in page
    assert load_deal(rt, open_deal).deal_no in page and "用户 测试ops（ops）" in page and "0 / 1" in page
    assert "存管单已冻结，解冻前不能审批付款" in page, "the frozen one shows why it cannot be approved"
    assert 'table-striped cards" id="payout-list"' in page and '<td data-label="金额">¥6,000,000.00</td>' in page
    ops = login("ops")
    own = _post(ops, "/admin/payouts/batch", action="approve", rowid=[open_payout], confirmed="1").text
    assert "发起人不能审批自己的付款" in own and 'name="confirm_token"' not in own, "nothing to confirm"
    finance = login("finance")
    rows = [open_payout, frozen_payout, "NO-SUCH"]
    unconfirmed = {"csrf_token": csrf_token(finance.get("/login").text), "action": "approve", "confirmed": "1"}
    page = finance.post("/admin/payouts/batch", data={**unconfirmed, "rowid": rows}).text
    assert "确认批量操作：审批通过" in page and "操作原因" not in page
    payee = re.search(r'id="planned-payouts".*?</table>', page, re.S)
    assert payee and "¥6,000,000.00" in payee.group(0) and "陆佰万元整" in payee.group(0), "amount in figures and 大写"
    assert load_deal(rt, open_deal).deal_no in payee.group(0) and "李*" in payee.group(0), "the deal, payee masked"
    assert BIG["seller_bank_account"] not in page and BIG["seller_bank_account"][-4:] in payee.group(0)
    assert "提交银行" in payee.group(0) and frozen_payout not in payee.group(0), "what follows; only the payable one"
    assert f"{frozen_payout}：存管单已冻结" in page and "NO-SUCH：付款不存在" in page, "the refused ones, and why"
    fields = confirmation_fields(page)
    other_rows = finance.post("/admin/payouts/batch", data={**fields, "rowid": [open_payout]}).text
    forged = finance.post("/admin/payouts/batch", data={**unconfirmed, "rowid": rows, "confirm_token": "x"}).text
    assert "确认已失效" in other_rows and "确认已失效" in forged, "the token is bound to its rows"
    with rt.db.uow() as uow:
        assert not uow.session.scalars(select(Job).where(Job.kind == "submit_payout")).all()
        assert uow.session.scalar(select(Payout.approved_by).where(Payout.payout_id == open_payout)) == []
    report = _flashes(finance.post("/admin/payouts/batch", data=fields, follow_redirects=True).text)
    assert "成功 1 项" in report and "未执行 2 项" in report
    assert f"{frozen_payout}：存管单已冻结" in report and "NO-SUCH：付款不存在" in report
    with rt.db.uow() as uow:
        status = dict(uow.session.execute(select(Payout.payout_id, Payout.status)).all())
        submits = uow.session.scalars(select(Job).where(Job.kind == "submit_payout")).all()
    assert (status[open_payout], status[frozen_payout]) == ("pending", "awaiting_approval")
    assert [job.payload["payout_id"] for job in submits] == [open_payout]
    twice = _flashes(_post(finance, f"/admin/payouts/{open_payout}/approve").text)
    assert "该付款无需审批或已审批" in twice
    deal_freeze.unfreeze(rt, actor(rt, "ops"), frozen_deal, "解除冻结")
    single = _flashes(_post(finance, f"/admin/payouts/{frozen_payout}/approve").text)
    assert "已审批，付款已提交银行" in single and open_payout not in finance.get("/admin/payouts/").text
