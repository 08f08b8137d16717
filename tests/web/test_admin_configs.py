"""城市配置 in the operations console: the JSON editor and its errors at their lines, diff, diagrams, simulation,
the review flow by role (never one's own version), publishing into the running catalog, rollback, new cities."""

from __future__ import annotations

import html
import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.cities import publishing
from app.db.audit_models import AuditEntry
from app.db.config_models import CityConfigVersion, ConfigSimulation
from app.db.models import Job
from app.platform.config import ROOT
from app.platform.errors import NotFound
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from app.sandbox import simulate as simulation
from tests.conftest import PASSWORD, csrf_token
from tests.factories import colleague
from tests.integration.test_config_publishing import pass_simulation

Login = Callable[[str], FlaskClient]
BEIJING = (ROOT / "city_configs" / "110000.json").read_text(encoding="utf-8")
PAGE = "/admin/configs/110000"


def edited(**changes: object) -> str:
    data = json.loads(BEIJING)
    data.update(changes)
    return json.dumps(data, ensure_ascii=False, indent=2)


def post(client: FlaskClient, url: str, **data: str) -> str:
    """POST a form of the city page with the page's CSRF token; the page it lands on."""
    token = csrf_token(client.get(PAGE).text)
    answer = client.post(url, data={"csrf_token": token, **data}, follow_redirects=True)
    assert answer.status_code == 200, (url, answer.status_code)
    return answer.text


def versions(rt: Runtime) -> dict[int, tuple[str, str, str | None]]:
    return {v.version: (v.status, v.author, v.reviewer) for v in publishing.versions(rt, "110000")}


def run_jobs(rt: Runtime) -> int:
    """Run the due jobs as `flask worker --burst` would; how many ran."""
    ran = 0
    while run_one(rt, "test-worker"):
        ran += 1
    return ran


def test_the_city_list_and_page_show_versions_diagrams_and_the_new_city_form(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    listing = ops.get("/admin/configs/").text
    assert "北京" in listing and "110000" in listing and "新建城市" in listing
    page = ops.get(PAGE).text
    assert "第 1 版" in page and "已发布" in page and "system" in page
    assert "保存草稿" in page and 'src="/admin/configs/workflow/resale_escrow/1.svg"' in page
    graph = ops.get("/admin/configs/workflow/resale_escrow/1.svg")
    assert graph.status_code == 200 and graph.mimetype == "image/svg+xml" and b"<svg" in graph.data
    assert "script-src" not in graph.headers["Content-Security-Policy"]
    assert ops.get("/admin/configs/workflow/nope/1.svg").status_code == 404
    auditor = login("auditor").get(PAGE).text
    assert "第 1 版" in auditor and "保存草稿" not in auditor and "新建城市" not in auditor
    assert "readonly" in auditor


def test_an_invalid_draft_lists_errors_at_their_lines_keeps_the_text_and_saves_nothing(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    token = csrf_token(ops.get(PAGE).text)
    data = json.loads(BEIJING)
    data["name"] = "北京（错误草稿）"
    data["status"] = "somewhere"
    typed = json.dumps(data, ensure_ascii=False, indent=2)
    answer = ops.post(f"{PAGE}/draft", data={"csrf_token": token, "content": typed})
    assert answer.status_code == 422
    assert "未保存" in answer.text and '<a href="#line-5">第 5 行</a>：只能选：draft, live, suspended' in answer.text
    assert '<span id="line-5" class="config-bad-line">5</span>' in answer.text, "the line is marked in the gutter"
    assert typed in html.unescape(answer.text), "the typed text stays in the editor"
    broken = ops.post(f"{PAGE}/draft", data={"csrf_token": token, "content": '{"name": "北京",'})
    assert broken.status_code == 422
    assert "第 1 行</a>：JSON 格式错误：第 1 行第 15 列，应为用双引号括起的键名" in broken.text
    assert '{"name": "北京",' in html.unescape(broken.text)
    assert versions(rt) == {1: ("published", "system", "system")}


def test_ops_drafts_simulates_submits_reviewer_approves_publishes_and_rolls_back(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    page = post(ops, f"{PAGE}/draft", content=edited(name="北京市"))
    assert "已保存为第 2 版草稿" in page and "第 2 版（草稿）" in page
    assert '+  "name": "北京市",' in html.unescape(page) and '-  "name": "北京",' in html.unescape(page)
    assert "第 2 版尚未仿真" in page
    page = post(ops, f"{PAGE}/simulate", product="resale_escrow")  # one product: quick (the whole city: a minute)
    assert "仿真已提交（第 2 版 · 仅 resale_escrow）" in page and "仿真排队中" in page
    assert run_jobs(rt) == 1
    page = ops.get(PAGE).text
    assert "✓ 通过" in page and "（仅部分业务，不能作为审批依据）" in page and "路径 20/21" in page
    page = post(ops, f"{PAGE}/submit")
    assert "第 2 版尚无通过的仿真" in page, "a simulation of one product does not count"
    assert versions(rt)[2][0] == "draft"
    pass_simulation(rt, "110000")  # the whole city's simulation (tests/integration/test_city_simulation.py)
    page = post(ops, f"{PAGE}/submit")
    assert "第 2 版已提交审核" in page and versions(rt)[2][0] == "submitted"
    token = csrf_token(ops.get(PAGE).text)
    assert ops.post(f"{PAGE}/approve", data={"csrf_token": token, "comment": "好"}).status_code == 403
    assert rt.cities.get("110000").name == "北京", "nothing published yet"

    reviewer = login("reviewer")
    page = post(reviewer, f"{PAGE}/approve", comment="")
    assert "审核意见不能为空" in page and versions(rt)[2][0] == "submitted"
    page = post(reviewer, f"{PAGE}/approve", comment="仿真通过，同意")
    assert "第 2 版已批准" in page and "仿真通过，同意" in page
    page = post(reviewer, f"{PAGE}/publish")
    assert "第 2 版已发布" in page
    assert versions(rt) == {2: ("published", "ops", "reviewer"), 1: ("retired", "system", "system")}
    assert rt.cities.get("110000").name == "北京市", "the running catalog serves the published version"

    page = post(reviewer, f"{PAGE}/rollback", to_version="1", comment="名称改回")
    assert "已提出回滚到第 1 版" in page and "回滚自第 1 版" in page
    assert versions(rt)[3] == ("submitted", "reviewer", None) and versions(rt)[2][0] == "published"
    assert rt.cities.get("110000").name == "北京市", "one reviewer alone only proposes"
    second = login(colleague(rt, "reviewer", PASSWORD))
    page = post(second, f"{PAGE}/approve", comment="同意回滚")
    assert "第 3 版尚无通过的仿真" in page, "the simulations of version 1's content were not of this version"
    pass_simulation(rt, "110000")
    assert "第 3 版已批准" in post(second, f"{PAGE}/approve", comment="仿真通过，同意回滚")
    assert "第 3 版已发布" in post(second, f"{PAGE}/publish")
    assert versions(rt)[3] == ("published", "reviewer", "reviewer2") and versions(rt)[2][0] == "retired"
    assert rt.cities.get("110000").name == "北京"
    with rt.db.uow() as uow:
        trail = [(e.action, e.actor) for e in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert [step for step in trail if step[0].startswith("city_config.") and step[0] != "city_config.import"] == [
        ("city_config.draft", "ops"),
        ("city_config.submit", "ops"),
        ("city_config.approve", "reviewer"),
        ("city_config.publish", "reviewer"),
        ("city_config.rollback", "reviewer"),
        ("city_config.approve", "reviewer2"),
        ("city_config.publish", "reviewer2"),
    ]


def test_the_administrator_is_refused_and_nobody_approves_their_own_version(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    admin = login("admin")  # manages accounts only: no config page, no draft, no review, no publishing
    assert admin.get(PAGE).status_code == 403
    token = csrf_token(admin.get("/login").text)
    for step in ("draft", "submit", "approve", "publish", "rollback"):
        answer = admin.post(f"{PAGE}/{step}", data={"csrf_token": token, "content": edited(name="北京市")})
        assert answer.status_code == 403, step
    assert versions(rt) == {1: ("published", "system", "system")}
    ops = login("ops")
    post(ops, f"{PAGE}/draft", content=edited(name="北京市"))
    pass_simulation(rt, "110000")
    post(ops, f"{PAGE}/submit")
    reviewer = login("reviewer")
    assert "第 2 版已批准" in post(reviewer, f"{PAGE}/approve", comment="同意")
    post(reviewer, f"{PAGE}/publish")
    page = post(reviewer, f"{PAGE}/rollback", to_version="1", comment="改回")
    assert "这是你提交的版本，不能自己审核" in page
    pass_simulation(rt, "110000")
    page = post(reviewer, f"{PAGE}/approve", comment="自己批准")
    assert "不能审核自己提交的版本" in page
    assert versions(rt)[3] == ("submitted", "reviewer", None)
    page = post(login(colleague(rt, "reviewer", PASSWORD)), f"{PAGE}/reject", comment="名称不必改回")
    assert "第 3 版已驳回" in page and versions(rt)[3] == ("rejected", "reviewer", "reviewer2")
    assert rt.cities.get("110000").name == "北京市"


def test_a_new_city_is_a_draft_copied_from_the_virtual_city(login: Login, rt: Runtime, users: dict[str, int]) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    token = csrf_token(ops.get("/admin/configs/").text)
    answer = ops.post("/admin/configs/new", data={"csrf_token": token, "admin_code": "510100", "name": "成都"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/configs/510100")
    page = ops.get("/admin/configs/510100").text
    assert "已由虚拟城市复制出 成都（510100）的草稿" in page and "第 1 版（草稿）" in page
    with rt.db.uow() as uow:
        draft = uow.session.scalars(select(CityConfigVersion).where(CityConfigVersion.city_code == "510100")).one()
        _, city = publishing.validated(rt, uow.session, "510100", draft.content)
    assert (draft.status, draft.author, city.admin_code, city.name) == ("draft", "ops", "510100", "成都")
    assert city.products["gov_escrow"].overrides  # the virtual city's products came along
    assert "成都住房和城乡建设局" in draft.content and "虚拟城市" not in draft.content
    again = ops.post("/admin/configs/new", data={"csrf_token": token, "admin_code": "510100", "name": "成都"})
    assert again.status_code == 302
    assert "城市 510100 已存在" in ops.get("/admin/configs/510100").text
    bad = ops.post("/admin/configs/new", data={"csrf_token": token, "admin_code": "5101", "name": "成都"})
    assert bad.status_code == 302 and "请填写 6 位行政区划代码" in ops.get("/admin/configs/").text


def test_simulate_is_a_job_one_per_city_with_its_progress_on_the_page(
    login: Login, rt: Runtime, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    post(ops, f"{PAGE}/draft", content=edited(name="北京市"))
    token = csrf_token(ops.get(PAGE).text)
    answer = ops.post(f"{PAGE}/simulate", data={"csrf_token": token, "product": "resale_escrow"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(PAGE), "back at once"
    page = ops.get(PAGE).text
    assert "仿真排队中" in page and "（第 2 版 · 仅 resale_escrow）" in page
    assert '<meta http-equiv="refresh" content="5">' in page, "refreshes itself while it runs (no script)"
    assert "仿真进行中…" in page and "保存草稿" not in page, "no typing lost to a refresh"
    assert "第 2 版尚未仿真" not in page

    for product in ("", "rent_custody"):  # a second run of the city, of whatever, waits for the first
        again = post(ops, f"{PAGE}/simulate", product=product)
        assert "本城市已有一个仿真正在排队（第 2 版 · 仅 resale_escrow，ops 提交），请等它完成后再运行" in again
    reviewer_page = login("reviewer").get(PAGE).text  # reviewers see the progress, without the button
    assert "仿真排队中" in reviewer_page and "运行仿真" not in reviewer_page
    ops = login("ops")
    with rt.db.uow() as uow:
        assert [(j.kind, j.status, j.max_attempts) for j in uow.session.scalars(select(Job))] == [
            ("simulate_city", "pending", 2)
        ]

    real, seen = simulation.simulate, []

    def watched(*args: object, **options: object) -> dict[str, object]:
        *rest, progress = args

        def spy(done: int, total: int, label: str) -> None:
            progress(done, total, label)  # type: ignore[operator]
            seen.append(ops.get(PAGE).text)  # the page while the worker is in the middle of it

        return real(*rest, spy, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(simulation, "simulate", watched)
    assert run_jobs(rt) == 1
    assert len(seen) == 2
    assert "仿真中 0/21" in seen[0] and "resale_escrow（第 1/1 个业务）" in seen[0] and 'content="5"' in seen[0]
    assert "仿真中 21/21" in seen[1] and "账务核对" in seen[1]
    page = ops.get(PAGE).text
    assert "refresh" not in page and "仿真中" not in page and "运行仿真" in page and "保存草稿" in page
    assert "✓ 通过" in page and "路径 20/21" in page and "账务平衡" in page and "· ops ·" in page
    with rt.db.uow() as uow:
        stored = uow.session.scalars(select(ConfigSimulation)).one()
        job = uow.session.scalars(select(Job)).one()
    assert (stored.ok, stored.complete, stored.run_by) == (True, False, "ops")
    assert job.status == "done" and job.payload["progress"] == {"done": 21, "total": 21, "label": "账务核对"}
    assert job.payload["outcome"]["ok"] is True and job.payload["outcome"]["stored"] is True

    page = post(ops, f"{PAGE}/simulate", product="resale_escrow")
    assert "仿真已提交" in page, "once done, the city may be simulated again"


def test_a_simulation_that_cannot_run_says_why_and_frees_the_city(
    login: Login, rt: Runtime, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    post(ops, f"{PAGE}/draft", content=edited(name="北京市"))
    assert "城市配置 110000 没有业务 nope" in post(ops, f"{PAGE}/simulate", product="nope")
    token = csrf_token(ops.get(PAGE).text)
    assert ops.post("/admin/configs/nocity/simulate", data={"csrf_token": token}).status_code == 302
    assert "城市配置 nocity 不存在" in ops.get(PAGE).text
    post(ops, f"{PAGE}/simulate")

    def gone(*args: object, **options: object) -> dict[str, object]:
        raise NotFound("城市配置 110000 没有第 2 版", code="CONFIG_VERSION_NOT_FOUND")

    monkeypatch.setattr(simulation, "simulate", gone)
    assert run_jobs(rt) == 1
    page = ops.get(PAGE).text
    assert "上次仿真（第 2 版，ops" in page and "未能完成，可重新运行" in page
    assert "CONFIG_VERSION_NOT_FOUND: 城市配置 110000 没有第 2 版" in page and "refresh" not in page
    assert "仿真已提交（第 2 版）" in post(ops, f"{PAGE}/simulate")
    with rt.db.uow() as uow:
        assert sorted(j.status for j in uow.session.scalars(select(Job))) == ["dead", "pending"]
