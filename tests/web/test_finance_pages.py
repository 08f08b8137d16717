"""Finance pages: reconciliation runs for finance (start and read), auditors read only, others (admin too) not."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from flask.testing import FlaskClient

from app.bank_inbox import reconciliation
from app.platform.runtime import Runtime
from tests.conftest import csrf_token

Login = Callable[[str], FlaskClient]
HEADER = "交易日期,交易时间,交易流水号,虚户账号,借贷标志,交易金额,对方户名,对方账号,业务编号,摘要"
ROWS = (
    "2026-11-20,09:05:07,CEBI1,6226000000000099,贷,12.34,王五,6222020200112233445,,来账",
    "2026-11-20,09:06:00,CEBI2,6226000000000099,贷,12.3,王五,6222020200112233445,,来账",
)


def _run_from_file(rt: Runtime) -> int:
    content = "".join(row + "\r\n" for row in (HEADER, *ROWS)).encode()
    statement = reconciliation.statement_from_file("ceb", date(2026, 11, 20), "ceb-1120.csv", content)
    return reconciliation.reconcile(rt, "ceb", date(2026, 11, 20), statement=statement, actor="user:finance")


def test_finance_sees_runs_and_a_runs_problems(rt: Runtime, login: Login) -> None:
    run_id = _run_from_file(rt)
    client = login("finance")
    page = client.get("/finance/reconciliation")
    assert page.status_code == 200
    assert "发起对账" in page.text and f"#{run_id}" in page.text and "ceb-1120.csv" in page.text
    detail = client.get(f"/finance/reconciliation/{run_id}").text
    assert "已挂账" in detail and "¥12.34" in detail  # a credit to an account we do not know
    assert "无法解析" in detail and "交易金额：金额“12.3”格式不正确" in detail
    assert "对账单没有期末余额行" in detail  # a saved file without the closing-balance row
    assert re.search(r"未解决</span><br><strong class=\"error\">2 项", detail)


def test_auditors_read_only_others_refused(rt: Runtime, login: Login) -> None:
    run_id = _run_from_file(rt)
    for role in ("auditor",):
        client = login(role)
        page = client.get("/finance/reconciliation")
        assert page.status_code == 200 and f"#{run_id}" in page.text and "发起对账" not in page.text
        assert client.get(f"/finance/reconciliation/{run_id}").status_code == 200
        token = csrf_token(page.text)
        answer = client.post("/finance/reconciliation", data={"csrf_token": token, "bank": "ceb", "date": "2026-11-20"})
        assert answer.status_code == 403
    for role in ("agent", "ops", "reviewer", "admin"):  # the administrator holds no business role
        assert login(role).get("/finance/reconciliation").status_code == 403


def test_starting_a_run_reports_what_went_wrong(login: Login) -> None:
    client = login("finance")
    token = csrf_token(client.get("/finance/reconciliation").text)
    bad_day = client.post(
        "/finance/reconciliation", data={"csrf_token": token, "bank": "ceb", "date": "20261120"}, follow_redirects=True
    )
    assert "对账日期格式不正确" in bad_day.text
    unreachable = client.post(
        "/finance/reconciliation",
        data={"csrf_token": token, "bank": "ceb", "date": "2026-11-20"},
        follow_redirects=True,
    )
    assert "对账未完成" in unreachable.text and "无法连接银行" in unreachable.text
    assert "暂无对账记录" in unreachable.text
    assert client.post("/finance/reconciliation", data={"bank": "ceb", "date": "2026-11-20"}).status_code == 400
