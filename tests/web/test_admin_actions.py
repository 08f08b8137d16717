"""Operations console actions and pages: suspense match / return, job retry, users, audit chain, ledger,
deal search with masked PII; login throttling and password rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from app.db.audit_models import AuditEntry
from app.db.ledger_models import LedgerAccount
from app.db.models import Job, Payout, SuspenseItem
from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime
from app.users.service import password_problem
from tests.conftest import PASSWORD, csrf_token
from tests.factories import (
    RESALE_FORM,
    arrive,
    colleague,
    confirmation_fields,
    confirmed_deal,
    load_deal,
    open_account,
)

Login = Callable[[str], FlaskClient]


def _audit_actions(rt: Runtime, prefix: str) -> list[tuple[str, str, str]]:
    """(actor, action, subject) of the audit entries whose action starts with `prefix`."""
    with rt.db.uow() as uow:
        query = select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)
        return [(e.actor, e.action, e.subject) for e in uow.session.scalars(query)]


def _post(client: FlaskClient, url: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login").text)
    return client.post(url, data={**data, "csrf_token": token}, follow_redirects=True)


@pytest.fixture
def funded(client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict) -> tuple[int, str]:
    """A deal with account 6226000000000201, ¥500 arrived, and ¥20 for an unknown account in suspense."""
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, "6226000000000201")
    arrive(client, keys_dir, "6226000000000201", 500_00, "REF-A")
    arrive(client, keys_dir, "6226999999999201", 20_00, "REF-UNKNOWN")
    return deal_id, load_deal(rt, deal_id).deal_no


def test_finance_matches_a_suspense_item_with_a_reason(login: Login, rt: Runtime, funded: tuple[int, str]) -> None:
    deal_id, deal_no = funded
    client = login("finance")
    page = client.get("/admin/suspense/").text
    assert "REF-UNKNOWN" in page and "¥20.00" in page and "未知账户" in page
    assert "6226620012345678" not in page and "5678" in page, "the payer's account is masked"
    answer = _post(client, "/admin/suspense/1/match", deal_no=deal_no, reason="  ")
    assert "请填写匹配原因" in answer.text
    answer = _post(client, "/admin/suspense/1/match", deal_no="RE-NOPE", reason="电话确认")
    assert "存管单不存在" in answer.text
    answer = _post(client, "/admin/suspense/1/match", deal_no=deal_no, reason="买方电话确认，账号输错一位")
    assert "已提出匹配，待另一位财务人员批准" in answer.text and "买方电话确认" in answer.text
    assert "须另一位财务人员" in _post(client, "/admin/suspense/1/approve-match").text, "not one's own proposal"
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).balance(f"custody:{deal_no}") == 500_00, "nothing moved yet"
    second = login(colleague(rt, "finance", PASSWORD))
    assert f"已批准匹配到存管单 {deal_no}" in _post(second, "/admin/suspense/1/approve-match").text
    with rt.db.uow() as uow:
        item = uow.session.get(SuspenseItem, 1)
        assert item is not None and (item.status, item.deal_id) == ("matched", deal_id)
        assert LedgerRepository(uow.session).balance(f"custody:{deal_no}") == 520_00
    assert _audit_actions(rt, "suspense.") == [
        ("user:finance", "suspense.match_propose", "suspense:1"),
        ("user:finance2", "suspense.match", "suspense:1"),
    ]
    assert "该挂账已处理" in _post(client, "/admin/suspense/1/match", deal_no=deal_no, reason="再次").text

    auditor = login("auditor")
    assert "提出匹配" not in auditor.get("/admin/suspense/1").text, "auditors read, never act"
    assert _post(auditor, "/admin/suspense/1/return", reason="x").status_code == 403


def test_finance_returns_a_wrong_payer_credit_by_original_route(
    login: Login, rt: Runtime, funded: tuple[int, str]
) -> None:
    deal_id, _ = funded
    client = login("finance")
    with rt.db.uow() as uow:  # as if the bank had flagged a stranger paying into the deal's account
        uow.session.execute(update(SuspenseItem).values(deal_id=deal_id, reason="wrong_payer"))
        uow.commit()
    assert "请填写退回原因" in _post(client, "/admin/suspense/1/return", reason="").text
    page = _post(client, "/admin/suspense/1/return", reason="非买方本人付款，核实后退回").text
    shown = re.search(r'id="planned-payouts".*?</table>', page, re.S)
    assert shown and "¥20.00" in shown.group(0) and "贰拾元整" in shown.group(0), "amount in figures and 大写"
    assert "6226620012345678" not in page and "5678" in shown.group(0), "the payer's account masked"
    assert "挂账原路退回" in shown.group(0) and "确认后即提交银行" in shown.group(0), "what it is, what follows"
    forged = _post(client, "/admin/suspense/1/return", reason="非买方本人付款，核实后退回", confirm_token="x")
    assert "确认已失效" in forged.text
    other_reason = {**confirmation_fields(page), "reason": "另一个原因"}
    assert "确认已失效" in client.post("/admin/suspense/1/return", data=other_reason).text, "bound to its reason"
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(SuspenseItem.status)) == "open", "no return without the confirmation"
        assert not uow.session.scalars(select(Payout)).all()
    answer = client.post("/admin/suspense/1/return", data=confirmation_fields(page), follow_redirects=True)
    assert "已发起原路退回" in answer.text
    with rt.db.uow() as uow:
        item = uow.session.get(SuspenseItem, 1)
        payout = uow.session.scalars(select(Payout).where(Payout.purpose == "return")).one()
        assert item is not None and item.status == "returning"
        assert (payout.payee_account, payout.amount_fen) == ("6226620012345678", 20_00)
        assert uow.session.scalars(select(Job.kind).where(Job.kind == "submit_payout")).all() == ["submit_payout"]
    assert _audit_actions(rt, "suspense.") == [("user:finance", "suspense.return", "suspense:1")]


def test_admin_retries_a_dead_job_with_a_reason(login: Login, rt: Runtime, users: dict) -> None:
    with rt.db.uow() as uow:
        job = Job(kind="submit_payout", payload={"payout_id": "P-1"}, status="dead", attempts=12, last_error="超时")
        job.run_after = rt.clock() + timedelta(days=1)
        uow.session.add(job)
        uow.commit()
    client = login("admin")
    page = client.get("/admin/jobs/?status=dead").text
    assert "超时" in page and "重试原因" in page
    assert 'cards" id="job-list"' in page and '<td data-label="状态">已放弃</td>' in page, "a card per job on phones"
    assert "请填写重试原因" in _post(client, "/admin/jobs/1/retry", reason=" ").text
    assert "任务 1 已重新排队" in _post(client, "/admin/jobs/1/retry", reason="银行已恢复").text
    with rt.db.uow() as uow:
        job = uow.session.get(Job, 1)
        assert job is not None and (job.status, job.attempts) == ("pending", 0) and job.run_after <= rt.clock()
    assert _audit_actions(rt, "job.") == [("user:admin", "job.retry", "job:1")]
    assert "重试原因" not in login("auditor").get("/admin/jobs/?status=pending").text


def test_admin_manages_users_under_the_password_rules(login: Login, client: FlaskClient, rt: Runtime) -> None:
    admin = login("admin")
    weak = _post(admin, "/admin/users/create", username="clerk", role="finance", password="onlyletterss")
    assert "密码须同时包含字母和数字" in weak.text
    assert (
        "密码不能包含用户名"
        in _post(admin, "/admin/users/create", username="clerk", role="finance", password="clerk12345xy").text
    )
    assert (
        "已创建用户 clerk：角色待另一位管理员批准后生效"
        in _post(admin, "/admin/users/create", username="clerk", role="finance", password="ledger-2026x").text
    )
    assert "已停用用户 clerk" in _post(admin, "/admin/users/clerk/active", active="0").text
    assert "不能停用自己的账号" in _post(admin, "/admin/users/admin/active", active="0").text
    assert "密码至少 12 位" in _post(admin, "/admin/users/clerk/password", password="short1").text
    assert "已重置 clerk 的密码" in _post(admin, "/admin/users/clerk/password", password="another-2027y").text
    assert [a for _, a, _ in _audit_actions(rt, "user.")] == [
        "user.create",
        "user.role_grant.propose",
        "user.set_active",
        "user.reset_password",
    ]
    assert "已停用" in admin.get("/admin/users/").text

    client.post("/logout", data={"csrf_token": csrf_token(client.get("/login").text)})
    token = csrf_token(client.get("/login").text)
    answer = client.post("/login", data={"username": "clerk", "password": "another-2027y", "csrf_token": token})
    assert answer.status_code == 401, "a deactivated user cannot log in"

    auditor = login("auditor")
    page = auditor.get("/admin/audit/verify").text
    # four user changes, and the logins: admin, clerk's refused one, auditor
    assert "哈希链完整：已检查 7 条" in page and "user.set_active" in page


def test_audit_verify_button_reports_a_broken_chain(login: Login, rt: Runtime, users: dict) -> None:
    from app.audit import log as audit
    from app.audit.chain import chain

    with rt.db.uow() as uow:
        audit.append(uow.session, at=rt.clock(), actor="user:admin", action="job.retry", subject="job:1")
        uow.commit()
    chain(rt)  # what a worker's round does: the entry gets its place in the chain
    with rt.db.engine.begin() as connection:  # tampering needs the append-only trigger out of the way
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
            connection.exec_driver_sql("UPDATE audit_log SET subject = 'job:2'")
        else:
            names = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
            ).scalars()
            for name in list(names):
                connection.exec_driver_sql(f'DROP TRIGGER "{name}"')
            connection.exec_driver_sql("UPDATE audit_log SET subject = 'job:2'")
    page = login("admin").get("/admin/audit/verify").text
    assert "哈希链校验失败" in page and "内容哈希不符" in page


def test_deals_search_and_detail_show_pii_masked(login: Login, funded: tuple[int, str]) -> None:
    deal_id, deal_no = funded
    client = login("ops")
    page = client.get("/admin/deals/?account_no=6226000000000201").text
    assert deal_no in page and RESALE_FORM["buyer_id_number"] not in page
    assert RESALE_FORM["buyer_id_number"][:3] + "*" in page, "masked, not hidden"
    assert deal_no not in client.get("/admin/deals/?account_no=6226000000000999").text
    assert deal_no in client.get("/admin/deals/?city=110000&date_from=2000-01-01").text
    assert deal_no not in client.get("/admin/deals/?state=closed").text
    detail = client.get(f"/admin/deals/{deal_id}").text
    assert RESALE_FORM["seller_bank_account"] not in detail and RESALE_FORM["seller_id_number"] not in detail
    assert "签章有效" in detail and "6226000000000201" in detail
    assert "arrival:ceb:REF-A" in detail, "the ledger transfers"
    assert "入账通知" in detail and "开立存管虚户" in detail, "callbacks and jobs, labelled"


def test_ledger_pages_show_exact_balances_history_cutoff_and_csv(
    login: Login, rt: Runtime, funded: tuple[int, str]
) -> None:
    _, deal_no = funded
    with rt.db.uow() as uow:
        clearing = uow.session.scalar(select(LedgerAccount).where(LedgerAccount.code == "bank_clearing:ceb"))
        assert clearing is not None and clearing.debits_posted == 0, "hot: the arrivals are still buffered"
    client = login("finance")
    accounts = client.get("/admin/ledger/").text
    assert 'data-fen="52000"' in accounts, "the clearing account's exact balance, buffer included"
    assert "custody:" not in accounts.replace('href="/admin/ledger/account/custody:', ""), "no code to type"
    by_deal = client.get(f"/admin/ledger/?deal_no={deal_no}").text.split('id="accounts"')[1]
    assert f"存管户 {deal_no}" in by_deal and "银行清算户" not in by_deal
    suspense = client.get("/admin/ledger/?kind=suspense").text.split('id="accounts"')[1]
    assert "挂账（中国光大银行）" in suspense and "存管户" not in suspense
    account = client.get(f"/admin/ledger/account/custody:{deal_no}").text
    assert 'id="balance" data-fen="50000"' in account and "期末余额" in account
    csv_answer = client.get(f"/admin/ledger/transfers.csv?account=custody:{deal_no}")
    assert csv_answer.mimetype == "text/csv"
    lines = csv_answer.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("编号,时间（北京时间）") and len(lines) == 2
    assert "arrival:ceb:REF-A" in lines[1] and "50000,500.00" in lines[1]
    assert login("finance").get("/admin/ledger/account/nope").status_code == 404


def test_login_is_throttled_per_account(client: FlaskClient, users: dict) -> None:
    def attempt(password: str, address: str = "10.0.0.1"):  # type: ignore[no-untyped-def]
        token = csrf_token(client.get("/login").text)
        return client.post(
            "/login",
            data={"username": "finance", "password": password, "csrf_token": token},
            environ_overrides={"REMOTE_ADDR": address},
        )

    assert [attempt("wrong").status_code for _ in range(5)] == [401] * 5
    locked = attempt(PASSWORD)
    assert locked.status_code == 429 and "登录失败次数过多" in locked.text, "even the right password waits"
    assert attempt(PASSWORD, "10.0.0.2").status_code == 429, "another address is locked out too"


def test_a_successful_login_forgets_earlier_failures(client: FlaskClient, users: dict) -> None:
    def attempt(password: str) -> int:
        token = csrf_token(client.get("/login").text)
        return client.post("/login", data={"username": "ops", "password": password, "csrf_token": token}).status_code

    assert [attempt("wrong") for _ in range(4)] == [401] * 4
    assert attempt(PASSWORD) == 302
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/login").text)})
    assert [attempt("wrong") for _ in range(4)] == [401] * 4
    assert attempt(PASSWORD) == 302


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1a", "密码至少 12 位"),
        ("abcdefghijkm", "密码须同时包含字母和数字"),
        ("123456789012", "密码须同时包含字母和数字"),
        ("xfinance2026", "密码不能包含用户名"),
        ("ledger-2026x", None),
    ],
)
def test_password_rules(password: str, problem: str | None) -> None:
    assert password_problem("finance", password) == problem
