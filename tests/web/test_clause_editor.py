"""工作流与协议 · 条款编辑器 (app/definitions/clause_view.py): an existing clause opens as markup, the preview renders
its variables with sample data (without JavaScript, and as the fragment the script asks for), saving creates a draft
version of the clause in the one publishing flow, typed scripts and template syntax never get into it, and only ops
save (reviewers preview; agents and auditors stay out)."""

from __future__ import annotations

import html
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.definition_models import DefinitionVersion
from app.definitions import publishing
from app.platform.runtime import Runtime
from tests.conftest import csrf_token

Login = Callable[[str], FlaskClient]
EDITOR = "/admin/definitions/clause-editor"


def _post(client: FlaskClient, name: str, **data: str) -> tuple[int, str]:
    token = csrf_token(client.get(f"{EDITOR}/{name}").text)
    answer = client.post(f"{EDITOR}/{name}", data={"csrf_token": token, **data})
    return answer.status_code, answer.text


def _versions(rt: Runtime, name: str) -> list[DefinitionVersion]:
    with rt.db.uow() as uow:
        query = select(DefinitionVersion).where(DefinitionVersion.kind == "clause", DefinitionVersion.name == name)
        return list(uow.session.scalars(query))


def test_an_existing_clause_opens_as_markup_with_the_variables_to_pick(login: Login, users: dict[str, int]) -> None:
    page = login("ops").get(f"{EDITOR}/gov_supervision")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'value="政府资金监管"' in text and "一、本协议项下交易资金纳入{{ authority }}存量房交易资金监管" in text
    assert '<option value="buyer.name">甲方（付款方）姓名或名称（buyer.name）</option>' in text
    assert 'id="clause-preview"' in text and "北京住房和城乡建设主管部门" not in text  # the sample city: 南京
    assert "南京住房和城乡建设主管部门存量房交易资金监管" in text  # the published text previewed


def test_the_preview_renders_the_variables_with_sample_data(login: Login, users: dict[str, int]) -> None:
    reviewer = login("reviewer")
    body = "甲方 **{{ buyer.name }}** 应于签约后存入 {{ custody.upper }}。\n1. 先行\n- 其次"
    status, page = _post(reviewer, "escrow_notice", title="存管特别约定", body=body, action="preview")
    assert status == 200
    assert "第八条\u3000存管特别约定" in page and "<strong>张三</strong>" in page and "壹佰万元整" in page
    assert "保存草稿" not in page  # reviewers preview, never save
    token = csrf_token(reviewer.get(f"{EDITOR}/escrow_notice").text)
    live = reviewer.post(
        f"{EDITOR}/escrow_notice",
        data={"csrf_token": token, "title": "约定", "body": "{{ seller.name }}"},
        headers={"X-Clause-Preview": "1"},
    )
    assert live.status_code == 200 and "李四" in live.text and "<html" not in live.text  # the fragment alone


def test_insert_adds_the_chosen_variable_without_javascript(login: Login, users: dict[str, int]) -> None:
    data = {"title": "约定", "body": "乙方：", "action": "insert", "variable": "seller.name"}
    status, page = _post(login("ops"), "escrow_notice", **data)
    assert status == 200 and "乙方：{{ seller.name }}</textarea>" in html.unescape(page) and "乙方：李四" in page


def test_saving_creates_a_draft_version_that_goes_through_review(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    ops = login("ops")
    body = "甲方 **{{ buyer.name }}** 确认：\n1. 资金存入存管账户\n2. 过户后释放"
    token = csrf_token(ops.get(f"{EDITOR}/escrow_notice").text)
    answer = ops.post(
        f"{EDITOR}/escrow_notice",
        data={"csrf_token": token, "title": "存管特别约定", "body": body, "action": "save"},
        follow_redirects=True,
    )
    assert answer.status_code == 200 and "已保存为第 1 版草稿" in answer.text
    (version,) = _versions(rt, "escrow_notice")
    assert version.status == "draft" and version.author == "ops"
    assert "<strong>{{ buyer.name }}</strong>" in version.content and "<li>过户后释放</li>" in version.content
    assert publishing.problems(rt, "clause", "escrow_notice", version.content) == []
    publishing.submit(rt, "clause", "escrow_notice", "ops")  # the same flow as every definition
    assert _versions(rt, "escrow_notice")[0].status == "submitted"
    again = ops.get(f"{EDITOR}/escrow_notice").text
    assert "该版本已提交" in again and 'value="save"' not in again


def test_a_script_or_template_syntax_is_refused_and_nothing_is_saved(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    ops = login("ops")
    for body in ("{% for x in buyer %}{{ x }}{% endfor %}", "{{ buyer.__class__ }}", "{{ ''.__class__.__mro__ }}"):
        status, page = _post(ops, "escrow_notice", title="约定", body=body, action="save")
        assert status == 422 and ("模板语法" in page or "未知变量" in page), body
    assert _versions(rt, "escrow_notice") == []
    status, page = _post(ops, "escrow_notice", title="约定", body="<script>alert(1)</script>", action="save")
    assert status == 302
    (version,) = _versions(rt, "escrow_notice")
    assert "<script" not in version.content and "&lt;script&gt;" in version.content


def test_only_ops_save_and_agents_and_auditors_stay_out(login: Login, rt: Runtime, users: dict[str, int]) -> None:
    reviewer = login("reviewer")
    status, _ = _post(reviewer, "escrow_notice", title="约定", body="正文", action="save")
    assert status == 403 and _versions(rt, "escrow_notice") == []
    for role in ("agent", "auditor"):
        assert login(role).get(f"{EDITOR}/dispute").status_code == 403, role


def test_a_clause_written_in_another_form_is_left_to_the_text_editor(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    fancy = "<section>{% if authority %}{{ authority }}{% endif %}</section>\n"
    publishing.save_draft(rt, "clause", "fancy", fancy, "ops")
    page = login("ops").get(f"{EDITOR}/fancy").text
    assert 'id="clause-advanced"' in page and 'id="clause-form"' not in page
