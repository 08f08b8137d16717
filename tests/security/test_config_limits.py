"""Issue 16, config and input limits: config regexes on a linear-time engine, bounded config drafts,
`extends` confined to the config store, a wall-clock budget on validating a draft, and length limits on the
user forms (4xx, never 500)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.cities import publishing
from app.db.config_models import CityConfigVersion
from app.db.models import User
from app.domain.cities import CityCatalog, resolve
from app.domain.problems import CityConfigInvalid
from app.domain.validation_budget import ConfigValidationTimeout, within_budget
from app.platform.config import ROOT, Config
from app.platform.runtime import Runtime
from tests.conftest import csrf_token

Login = Callable[[str], FlaskClient]
BEIJING = json.loads((ROOT / "city_configs" / "110000.json").read_text(encoding="utf-8"))
PAGE = "/admin/configs/110000"
CATASTROPHIC = "^(a+)+$"


def _draft(**changes: object) -> str:
    return json.dumps({**BEIJING, **changes}, ensure_ascii=False, indent=2)


def _with_lease_pattern(pattern: str) -> str:
    products = json.loads(json.dumps(BEIJING["products"]))
    lease = {"lease_contract_no": {"pattern": pattern}}
    products["rent_custody"]["form"] = {"schema": {"properties": lease}}
    return _draft(products=products)


def _save(client: FlaskClient, content: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get(PAGE).text)
    return client.post(f"{PAGE}/draft", data={"csrf_token": token, "content": content})


def _drafts(rt: Runtime) -> list[int]:
    with rt.db.uow() as uow:
        query = select(CityConfigVersion.version).where(
            CityConfigVersion.city_code == "110000", CityConfigVersion.status == "draft"
        )
        return list(uow.session.scalars(query))


# --- regexes from config ------------------------------------------------------------------------------

CHILD = """
import json, time
from app.domain.cities import FormField, FormSpec
from app.domain.forms.schema_form import build_form, load_base_schema
from app.platform.errors import ValidationError
field = FormField("code", "编号", "本市要求", 1, False, schema={"type": "string", "pattern": %r})
form = build_form("resale_escrow", load_base_schema("resale_escrow"), FormSpec(("本市要求",), (field,)))
start = time.perf_counter()
try:
    form.validate({"code": "a" * 50 + "!"})
except ValidationError as error:
    print(json.dumps({"seconds": time.perf_counter() - start, "code": error.details.get("code")}))
"""


def test_a_catastrophic_config_pattern_is_matched_in_linear_time() -> None:
    """Python's `re` needs about 2^50 steps for this input: on the old engine the child never answers in time."""
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD % CATASTROPHIC], cwd=ROOT, capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the pattern stalled the form validation (backtracking engine)")
    outcome = json.loads(child.stdout)
    assert outcome["code"] == "编号格式不正确"
    assert outcome["seconds"] < 0.5


def test_a_fair_config_pattern_still_checks_the_field() -> None:
    from app.domain.forms.patterns import matches

    assert matches("^[0-9]{6,20}$", "123456") and not matches("^[0-9]{6,20}$", "12345x")
    assert matches("[0-9]{3}", "ab123cd")  # JSON Schema patterns search, they are not anchored


@pytest.mark.parametrize("pattern", ["^(?=L)L[0-9]+$", "^(L)\\1$", "^[0-9", "a" * 600])
def test_a_pattern_the_linear_engine_refuses_is_refused_at_validation(
    login: Login, rt: Runtime, users: dict[str, int], pattern: str
) -> None:
    publishing.import_files(rt)
    content = _with_lease_pattern(pattern)
    answer = _save(login("ops"), content)
    assert answer.status_code == 422
    line = next(n for n, text in enumerate(content.splitlines(), 1) if '"pattern"' in text)
    assert "正则表达式无效或不受支持" in answer.text and f"第 {line} 行" in answer.text  # at its line, no pointer
    assert _drafts(rt) == []


def test_a_catastrophic_pattern_is_accepted_since_it_runs_in_linear_time(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    answer = _save(login("ops"), _with_lease_pattern(CATASTROPHIC))
    assert answer.status_code == 302 and _drafts(rt) == [2]


# --- oversized and deeply nested drafts ----------------------------------------------------------------


def test_a_deeply_nested_draft_is_refused_with_a_message_not_a_500(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    deep = _draft(x="__DEEP__").replace('"__DEEP__"', "[" * 5_000 + "]" * 5_000)
    answer = _save(ops, deep)
    assert answer.status_code == 422 and "嵌套层数过多" in answer.text
    just_too_deep = _draft(x="__DEEP__").replace('"__DEEP__"', "[" * 40 + "]" * 40)
    answer = _save(ops, just_too_deep)
    assert answer.status_code == 422 and "嵌套层数过多" in answer.text
    assert _drafts(rt) == []


def test_an_oversized_draft_is_refused_with_a_message(login: Login, rt: Runtime, users: dict[str, int]) -> None:
    publishing.import_files(rt)
    answer = _save(login("ops"), _draft(name="北" * 100_000))
    assert answer.status_code == 422 and "配置过大" in answer.text
    assert _drafts(rt) == []


# --- extends ----------------------------------------------------------------------------------------------


def test_extends_cannot_read_a_file_outside_the_config_store(
    login: Login, rt: Runtime, users: dict[str, int], tmp_path: Path
) -> None:
    publishing.import_files(rt)
    secret = tmp_path / "outside" / "secret.json"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"db_password_of_the_server": "hunter2"}), encoding="utf-8")
    ops = login("ops")
    for parent in (str(secret.with_suffix("")), "../../../../../../" + str(secret.with_suffix("")), "110000/.."):
        answer = _save(ops, _draft(extends=parent))
        assert answer.status_code == 422, parent
        assert "继承（extends）只能填写城市代码" in answer.text
        assert "db_password_of_the_server" not in answer.text and "hunter2" not in answer.text
    assert _drafts(rt) == []


def test_resolve_never_asks_the_store_for_a_name_that_is_not_a_config_name() -> None:
    asked: list[str] = []

    def read(stem: str) -> bytes | None:
        asked.append(stem)
        return json.dumps({"extends": "../etc/passwd"}).encode() if stem == "999901" else b"{}"

    with pytest.raises(CityConfigInvalid) as caught:
        resolve("999901", read)
    assert asked == ["999901"]
    [problem] = caught.value.problems
    assert problem.pointer == "/extends" and "passwd" not in str(caught.value.details)


# --- user inputs ------------------------------------------------------------------------------------------

LONG_NAME = "u" * 70


def test_a_70_character_username_at_login_is_a_4xx(client: FlaskClient, users: dict[str, int]) -> None:
    token = csrf_token(client.get("/login").text)
    answer = client.post("/login", data={"username": LONG_NAME, "password": "x" * 20, "csrf_token": token})
    assert 400 <= answer.status_code < 500
    answer = client.post("/login", data={"username": "agent", "password": "x" * 100_000, "csrf_token": token})
    assert 400 <= answer.status_code < 500


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("username", LONG_NAME, "用户名不能超过 64 个字符"),
        ("display_name", "名" * 70, "姓名不能超过 64 个字符"),
        ("password", "Ledger-2026x" + "y" * 200, "密码不能超过 128 个字符"),
    ],
)
def test_overlong_user_fields_are_refused_with_a_message(
    login: Login, rt: Runtime, field: str, value: str, message: str
) -> None:
    admin = login("admin")
    form = {"username": "clerk", "display_name": "职员", "role": "finance", "password": "Ledger-2026x"}
    token = csrf_token(admin.get("/admin/users/").text)
    answer = admin.post("/admin/users/create", data={**form, field: value, "csrf_token": token}, follow_redirects=True)
    assert answer.status_code == 200 and message in answer.text
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(User).where(User.username.in_(["clerk", LONG_NAME]))) is None


@pytest.mark.parametrize("action", ["draft", "simulate", "submit"])
def test_an_overlong_city_code_in_the_console_is_a_404(
    login: Login, rt: Runtime, users: dict[str, int], action: str
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    token = csrf_token(ops.get(PAGE).text)
    stem = "1" * 40
    answer = ops.post(f"/admin/configs/{stem}/{action}", data={"csrf_token": token, "content": _draft(admin_code=stem)})
    assert answer.status_code == 404
    assert ops.get(f"/admin/configs/{stem}").status_code == 404


# --- validation time budget ---------------------------------------------------------------------------------


def test_a_draft_whose_validation_outlasts_the_budget_is_refused_and_not_stored(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    rt.config_validation_budget_s = 0.0  # the setting (CUNGUAN_CONFIG_VALIDATION_BUDGET_S) at its smallest
    answer = _save(ops, _draft(name="北京市"))
    assert answer.status_code == 422 and "配置校验超过时限" in answer.text
    with rt.db.uow() as uow, pytest.raises(CityConfigInvalid) as refused:
        publishing.validated(rt, uow.session, "110000", _draft(name="北京市"))
    assert refused.value.code == "CONFIG_VALIDATION_TIMEOUT" and "校验超时" in refused.value.message
    assert _drafts(rt) == []
    rt.config_validation_budget_s = Config(instance_path=ROOT / "instance").config_validation_budget_s
    assert _save(ops, _draft(name="北京市")).status_code == 302 and _drafts(rt) == [2]  # the default budget


def _many_patterned_fields(count: int) -> str:
    products = json.loads(json.dumps(BEIJING["products"]))
    fields = {f"extra_{index}": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{6}$"} for index in range(count)}
    products["rent_custody"]["form"] = {"schema": {"properties": fields}}
    return _draft(products=products)


def test_the_budget_is_checked_while_the_fields_are_checked(tmp_path: Path, rt: Runtime) -> None:
    """A clock that moves 1 ms each time it is read: a draft with 1,500 patterned fields uses up a 0.5 s
    budget inside the per-field checks; the shipped Beijing config, checked the same way, fits."""
    for shipped in (ROOT / "city_configs").glob("_*.json"):
        (tmp_path / shipped.name).write_bytes(shipped.read_bytes())
    ticks = iter(range(10**9))
    clock = lambda: next(ticks) / 1000  # noqa: E731
    catalog = CityCatalog(tmp_path, rt.cities.check)
    (tmp_path / "110000.json").write_text(_many_patterned_fields(1_500), encoding="utf-8")
    with within_budget("110000.json", 0.5, clock), pytest.raises(ConfigValidationTimeout):
        catalog.load_resolved("110000")
    (tmp_path / "110000.json").write_text(_draft(), encoding="utf-8")
    with within_budget("110000.json", 0.5, clock):
        assert catalog.load_resolved("110000")[1].admin_code == "110000"
