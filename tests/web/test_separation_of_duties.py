"""Separation of duties (三权分立) and four eyes, through HTTP: the administrator manages accounts and can act as
nobody; a password an administrator sets is one-time; a password change, reset, deactivation or role change
ends every session of the user; a role an administrator gives takes effect only when a second one approves;
nobody approves their own payout or refund."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.audit_models import AuditEntry
from app.db.grant_models import RoleGrant
from app.db.models import Deal, Payout
from app.deals import service as deals
from app.deals.workflow import DealContext
from app.payouts import lifecycle
from app.payouts.lifecycle import PayoutOrder
from app.payouts.status import PayoutPurpose
from app.platform.runtime import Runtime
from tests.conftest import PASSWORD, csrf_token
from tests.factories import (
    RESALE_FORM,
    actor,
    arrive,
    colleague,
    confirmed_deal,
    load_deal,
    open_account,
    post_confirmed,
)

Login = Callable[[str], FlaskClient]
BIG = {**RESALE_FORM, "price": "9000000", "custody_amount": "6000000"}  # above 北京's approval line
RESET = "handed-over-2026"
OWN = "only-i-know-77"


def _post(client: FlaskClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login", follow_redirects=True).text)  # or the password page it leads to
    return post_confirmed(client, path, {**data, "csrf_token": token}, follow_redirects=True)


def _log_in(client: FlaskClient, username: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def _status(rt: Runtime, payout_id: str) -> str:
    with rt.db.uow() as uow:
        return uow.session.scalars(select(Payout.status).where(Payout.payout_id == payout_id)).one()


def _big_payout(client: FlaskClient, rt: Runtime, keys_dir: Path) -> tuple[int, str]:
    """¥6,000,000 released on ops' word (title transferred): it waits for someone other than ops."""
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", BIG)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000991")
    arrive(client, keys_dir, "6226000000000991", 6_000_000_00, "REF-BIG")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    payout = load_deal(rt, deal_id).payouts[0]
    assert (payout.amount_fen, payout.status) == (6_000_000_00, "awaiting_approval")
    return deal_id, payout.payout_id


def test_the_admin_resets_a_finance_password_and_cannot_approve_a_payout_as_them(
    app: Flask, client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Login
) -> None:
    deal_id, payout_id = _big_payout(client, rt, keys_dir)
    finance_earlier = app.test_client()  # the finance user's own session, from before the reset
    assert _log_in(finance_earlier, "finance", PASSWORD).status_code == 302
    assert finance_earlier.get("/admin/payouts/").status_code == 200

    admin = login("admin")
    assert admin.get("/admin/payouts/").status_code == 403, "the administrator holds no business role"
    assert admin.get(f"/deals/{deal_id}").status_code == 403
    assert admin.get("/deals", headers={"Accept": "application/json"}).get_json()["code"] == "HTTP_403"
    assert _post(admin, f"/admin/payouts/{payout_id}/approve").status_code == 403
    assert "已重置 finance 的密码" in _post(admin, "/admin/users/finance/password", password=RESET).text

    follow = finance_earlier.get("/admin/payouts/")
    assert follow.status_code == 302 and "/login" in follow.headers["Location"], "a reset ends every session"

    as_finance = app.test_client()  # the administrator, trying the password they set
    answer = _log_in(as_finance, "finance", RESET)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/password")
    page = as_finance.get("/admin/payouts/")
    assert page.status_code == 302 and page.headers["Location"].endswith("/password"), "pages: change it first"
    token = csrf_token(as_finance.get("/password").text)
    refused = as_finance.post(
        f"/admin/payouts/{payout_id}/approve", data={"csrf_token": token}, headers={"Accept": "application/json"}
    )
    assert refused.status_code == 403
    assert refused.get_json() == {
        "code": "PASSWORD_CHANGE_REQUIRED",
        "message": "管理员设置的密码只能使用一次，请先修改密码",
    }
    assert as_finance.post(f"/payouts/{payout_id}/approve", data={"csrf_token": token}).status_code == 403
    assert _status(rt, payout_id) == "awaiting_approval"

    finance = app.test_client()  # the finance user changes the one-time password: the other session ends
    assert _log_in(finance, "finance", RESET).status_code == 302
    assert (
        "两次输入的新密码不一致"
        in _post(finance, "/password", current_password=RESET, new_password=OWN, confirm_password=OWN + "x").text
    )
    assert (
        "新密码不能与当前密码相同"
        in _post(finance, "/password", current_password=RESET, new_password=RESET, confirm_password=RESET).text
    )
    changed = _post(finance, "/password", current_password=RESET, new_password=OWN, confirm_password=OWN)
    assert "密码已修改，其他会话已全部退出" in changed.text
    assert as_finance.get("/password").status_code == 302, "the administrator's session with the old one ended"
    assert _log_in(as_finance, "finance", RESET).status_code == 401
    assert "已审批，付款已提交银行" in _post(finance, f"/admin/payouts/{payout_id}/approve").text
    assert _status(rt, payout_id) == "pending"
    with rt.db.uow() as uow:
        query = select(AuditEntry.action).where(AuditEntry.subject == "user:finance").order_by(AuditEntry.id)
        actions = list(uow.session.scalars(query))
    assert [a for a in actions if a.startswith("user.")] == ["user.reset_password", "user.change_password"]
    assert "auth.login" in actions and "auth.login_failed" in actions, "the logins with either password are audited"


def test_nobody_approves_their_own_payout_or_refund(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Login
) -> None:
    _, payout_id = _big_payout(client, rt, keys_dir)
    ops = login("ops")
    assert "发起人不能审批自己的付款" in _post(ops, f"/admin/payouts/{payout_id}/approve").text
    assert _status(rt, payout_id) == "awaiting_approval"

    refund_deal = confirmed_deal(rt)
    open_account(client, keys_dir, rt, refund_deal, "6226000000000992")
    arrive(client, keys_dir, "6226000000000992", 300_00, "REF-REFUND")
    with rt.db.uow() as uow:  # a refund by original route, asked for by finance (北京: every refund is approved)
        deal = uow.session.get(Deal, refund_deal)
        assert deal is not None
        order = PayoutOrder(300_00, "张三", "6226620012345678", PayoutPurpose.REFUND)
        refund = lifecycle.open_deal_payout(DealContext(rt, uow.session, deal, "user:finance"), order)
        refund_id = refund.payout_id
        assert refund.status == "awaiting_approval"
        uow.commit()
    finance = login("finance")
    assert "发起人不能审批自己的付款" in _post(finance, f"/admin/payouts/{refund_id}/approve").text
    assert _status(rt, refund_id) == "awaiting_approval"
    assert "已审批，付款已提交银行" in _post(login("ops"), f"/admin/payouts/{refund_id}/approve").text
    assert _status(rt, refund_id) == "pending"


def test_a_role_an_admin_gives_takes_effect_only_when_a_second_admin_approves(
    app: Flask, rt: Runtime, users: dict, login: Login
) -> None:
    admin = login("admin")
    created = _post(admin, "/admin/users/create", username="clerk", role="reviewer", password=RESET)
    assert "角色待另一位管理员批准后生效" in created.text and "待批准：审核" in created.text
    clerk = app.test_client()
    pending = _log_in(clerk, "clerk", RESET)
    assert pending.status_code == 403 and "尚待另一位管理员批准" in pending.text
    with rt.db.uow() as uow:
        grant_id = uow.session.scalars(select(RoleGrant.id).where(RoleGrant.status == "pending")).one()
    own = _post(admin, f"/admin/users/grants/{grant_id}/approve")
    assert "提出人不能批准自己的申请" in own.text
    assert _log_in(clerk, "clerk", RESET).status_code == 403, "still not effective"

    second = login(colleague(rt, "admin", PASSWORD))
    assert "已批准角色授权" in _post(second, f"/admin/users/grants/{grant_id}/approve").text
    answer = _log_in(clerk, "clerk", RESET)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/password"), "one-time password"
    _post(clerk, "/password", current_password=RESET, new_password=OWN, confirm_password=OWN)
    assert clerk.get("/admin/configs/").status_code == 200, "a reviewer now"

    assert "待另一位管理员批准" in _post(second, "/admin/users/clerk/role", role="finance").text
    assert clerk.get("/admin/configs/").status_code == 200, "a proposed change changes nothing yet"
    assert clerk.get("/admin/payouts/").status_code == 403
    with rt.db.uow() as uow:
        change_id = uow.session.scalars(select(RoleGrant.id).where(RoleGrant.status == "pending")).one()
    assert "已批准角色授权" in _post(login("admin"), f"/admin/users/grants/{change_id}/approve").text
    ended = clerk.get("/admin/payouts/")
    assert ended.status_code == 302 and "/login" in ended.headers["Location"], "a role change ends every session"
    assert _log_in(clerk, "clerk", OWN).status_code == 302
    assert clerk.get("/admin/payouts/").status_code == 200 and clerk.get("/admin/configs/").status_code == 403
    with rt.db.uow() as uow:
        query = select(AuditEntry).where(AuditEntry.action.startswith("user.")).order_by(AuditEntry.id)
        trail = [(e.actor, e.action) for e in uow.session.scalars(query)]
    assert trail == [
        ("user:admin", "user.create"),
        ("user:admin", "user.role_grant.propose"),
        ("user:admin2", "user.role_grant.approve"),
        ("user:clerk", "user.change_password"),
        ("user:admin2", "user.role_grant.propose"),
        ("user:admin", "user.role_grant.approve"),
    ]


def test_deactivation_and_a_password_change_end_the_other_sessions(
    app: Flask, rt: Runtime, users: dict, login: Login
) -> None:
    laptop, phone = app.test_client(), app.test_client()
    for client in (laptop, phone):
        assert _log_in(client, "ops", PASSWORD).status_code == 302
    assert (
        "密码已修改"
        in _post(laptop, "/password", current_password=PASSWORD, new_password=OWN, confirm_password=OWN).text
    )
    assert laptop.get("/deals").status_code == 200, "the session that changed it goes on"
    assert phone.get("/deals").status_code == 302, "every other session ended"
    assert (
        _post(
            laptop, "/password", current_password="wrong-pass-1", new_password=RESET, confirm_password=RESET
        ).status_code
        == 422
    )

    agent = app.test_client()
    assert _log_in(agent, "agent", PASSWORD).status_code == 302
    assert "已停用用户 agent" in _post(login("admin"), "/admin/users/agent/active", active="0").text
    assert agent.get("/deals").status_code == 302


def test_the_command_line_gives_no_business_role_and_its_passwords_are_one_time(
    app: Flask, rt: Runtime, users: dict
) -> None:
    runner = app.test_cli_runner()
    typed = f"{RESET}\n{RESET}\n"
    refused = runner.invoke(args=["user", "create", "clerk", "--role", "finance", "--name", "职员"], input=typed)
    assert refused.exit_code == 1 and "另一位管理员批准" in refused.output
    assert "不再创建演示用户" in runner.invoke(args=["user", "create-demo"]).output, "users exist: no demo back door"
    made = runner.invoke(args=["user", "create", "root2", "--role", "admin", "--name", "管理员二"], input=typed)
    assert made.exit_code == 0 and "已创建管理员 root2" in made.output
    assert runner.invoke(args=["user", "set-password", "finance"], input=typed).exit_code == 0
    client = app.test_client()
    answer = _log_in(client, "finance", RESET)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/password")
    assert client.get("/admin/payouts/").headers["Location"].endswith("/password")
