"""工作流与协议 in the console: the list, a clause edited by ops, simulated by a worker job, approved by a reviewer
(never by its author), published; every form needs its role and the CSRF token."""

from __future__ import annotations

import html
from collections.abc import Callable

from flask.testing import FlaskClient

from app.definitions import publishing
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from tests.conftest import csrf_token

Login = Callable[[str], FlaskClient]
PAGE = "/admin/definitions/clause/confidentiality"
CLAUSE = (ROOT / "agreement_templates" / "clauses" / "confidentiality.html.j2").read_text(encoding="utf-8")


def post(client: FlaskClient, url: str, **data: str) -> str:
    token = csrf_token(client.get(PAGE).text)
    answer = client.post(url, data={"csrf_token": token, **data}, follow_redirects=True)
    assert answer.status_code == 200, (url, answer.status_code)
    return answer.text


def test_a_clause_goes_through_the_console_from_draft_to_published(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    ops = login("ops")
    listing = ops.get("/admin/definitions/").text
    assert "resale_escrow@1" in listing and "confidentiality" in listing and "2027" in listing
    assert "协议条款" in listing and "工作日历" in listing
    assert ops.post(f"{PAGE}/draft", data={"content": "x"}).status_code == 400, "no CSRF token, no change"
    edited = CLAUSE + "<p>（修订）</p>\n"
    page = post(ops, f"{PAGE}/draft", content=edited)
    assert "已保存为草稿" in page and "草稿" in page and "（修订）" in html.unescape(page)
    assert "已提交审核" in post(ops, f"{PAGE}/submit")
    assert "仿真已提交" in post(ops, f"{PAGE}/simulate")
    reviewer = login("reviewer")  # the same client, now the reviewer's
    refused = html.unescape(post(reviewer, f"{PAGE}/approve", comment="同意"))
    assert "尚无通过的仿真：请先运行仿真（本页的「运行仿真」" in refused, "the page's button, not only the command"
    publishing.record_simulation(rt, "clause", "confidentiality", edited, {"ok": True, "runs": []}, "test")
    assert "已批准" in post(reviewer, f"{PAGE}/approve", comment="同意")
    assert "已发布" in post(reviewer, f"{PAGE}/publish")
    published = rt.definitions.published("clause", "confidentiality")
    assert published is not None and published.content == edited
    auditor = login("auditor")  # the same client, now logged in as an auditor: reads, never writes
    assert "保存草稿" not in auditor.get(PAGE).text
    assert auditor.post(f"{PAGE}/publish", data={"csrf_token": csrf_token(auditor.get(PAGE).text)}).status_code == 403


def test_the_console_simulation_runs_as_a_worker_job(login: Login, rt: Runtime, users: dict[str, int]) -> None:
    """A broken draft's job ends with a failed simulation stored (no city is run for it)."""
    publishing.save_draft(rt, "clause", "confidentiality", "{% if %}", "ops")
    assert "仿真已提交" in post(login("ops"), f"{PAGE}/simulate")
    assert run_one(rt, "test-worker")
    page = login("reviewer").get(PAGE).text
    assert "✗ 发现问题" in page and "模板语法错误" in page


def test_a_new_bank_is_started_in_the_console_under_its_own_name(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    ops = login("ops")
    listing = ops.get("/admin/definitions/").text
    assert "存管银行" in listing and "业务品种" in listing and 'id="new-definition"' in listing
    bank = (ROOT / "bank_configs" / "cmbc.json").read_text(encoding="utf-8").replace('"cmbc"', '"cmbx"')
    page = post(ops, "/admin/definitions/new", kind="bank", name="cmbx", content=bank)
    assert "已保存为草稿" in page and "cmbx" in page
    assert publishing.draft_content(rt, "bank", "cmbx") == (1, bank)
    assert "名称 ../x 无效" in post(ops, "/admin/definitions/new", kind="bank", name="../x", content=bank)
    assert "已提交审核" in post(ops, "/admin/definitions/bank/cmbx/submit")
    auditor = login("auditor")
    assert 'id="new-definition"' not in auditor.get("/admin/definitions/").text
    token = csrf_token(auditor.get("/admin/definitions/").text)
    refused = auditor.post(
        "/admin/definitions/new", data={"csrf_token": token, "kind": "bank", "name": "x", "content": "{}"}
    )
    assert refused.status_code == 403
