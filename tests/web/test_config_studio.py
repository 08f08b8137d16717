"""城市配置 · 表单编辑 (app/studio, app/cities/studio_view.py): ops edit a new city's draft through the form's
fields as a browser posts them (CSRF included); the stored draft is the expected JSON, in fen and basis points;
a bad amount comes back in Chinese at its field and nothing is saved."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser

from flask.testing import FlaskClient

from app.cities import publishing
from app.cities.sources import open_version
from app.platform.runtime import Runtime
from tests.conftest import csrf_token

Login = Callable[[str], FlaskClient]
STUDIO = "/admin/configs/320100/studio"


class _Form(HTMLParser):
    """The fields of `#studio-form` as a browser submits them: text inputs, checked boxes, selected options."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.select, self.selected = False, "", ""
        self.fields: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == "studio-form"
        if not self.inside or "disabled" in a:
            return
        if tag == "input" and (a.get("type") != "checkbox" or "checked" in a):
            self.fields.setdefault(a["name"], []).append(a.get("value", ""))
        elif tag == "select":
            self.select, self.selected = a["name"], ""
            self.first: str | None = None
        elif tag == "option" and self.select:
            if self.first is None:
                self.first = a.get("value", "")
            if "selected" in a:
                self.selected = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select:
            self.fields.setdefault(self.select, []).append(self.selected or self.first or "")
            self.select = ""
        if tag == "form":
            self.inside = False


def fields_of(page: str) -> dict[str, list[str]]:
    parser = _Form()
    parser.feed(page)
    return parser.fields


def _new_city(ops: FlaskClient) -> None:
    token = csrf_token(ops.get("/admin/configs/").text)
    made = ops.post("/admin/configs/new", data={"csrf_token": token, "admin_code": "320100", "name": "南京"})
    assert made.status_code == 302


def _draft(rt: Runtime) -> dict[str, object]:
    with rt.db.uow() as uow:
        version = open_version(uow.session, "320100")
        assert version is not None
        return json.loads(version.content)


def test_ops_edit_a_new_city_through_the_form_and_the_draft_is_the_expected_json(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    _new_city(ops)
    before = _draft(rt)
    page = ops.get(STUDIO)
    assert page.status_code == 200
    assert "二手房交易资金存管" in page.text and "最低存管金额" in page.text and "中国光大银行" not in page.text
    posted = fields_of(page.text)
    assert posted["products/resale_escrow/custody/min_fen"] == ["1"]  # 100 fen shown in yuan
    # unchanged, the form gives back the same document
    same = ops.post(STUDIO, data=posted, follow_redirects=True)
    assert same.status_code == 200 and "已保存为第 1 版草稿" in same.text
    assert _draft(rt) == before

    resale = "products/resale_escrow"
    posted = fields_of(ops.get(STUDIO).text)
    posted[f"{resale}/banks"] = ["ceb", "pab"]
    posted |= {f"{resale}/fees/0/name": ["资金存管服务费"], f"{resale}/fees/0/payer": ["seller"]}
    posted |= {f"{resale}/fees/0/kind": ["rate"], f"{resale}/fees/0/bps": ["0.3"], f"{resale}/fees/0/bps:unit": ["%"]}
    tranches = f"{resale}/release/tranches"
    posted |= {f"{tranches}/0/label": ["首期"], f"{tranches}/0/share_bps": ["90"], f"{tranches}/0/event": [""]}
    posted.pop(f"{tranches}/0/remainder")
    posted |= {f"{tranches}/1/label": ["尾款"], f"{tranches}/1/remainder": ["1"]}
    posted[f"{tranches}/1/event"] = ["handover_done"]
    form = f"{resale}/form"
    posted |= {f"{form}/0/name": ["floor_area"], f"{form}/0/title": ["房屋面积"], f"{form}/0/x-section": ["房屋信息"]}
    posted |= {f"{form}/0/type": ["number"], f"{form}/0/x-order": ["1"], f"{form}/0/minimum": ["0.01"]}
    posted[f"{form}/0/required"] = ["1"]
    posted["products/gov_escrow/deadlines/funding_deadline"] = ["3"]
    posted["products/gov_escrow/deadlines/funding_deadline:unit"] = ["working_days"]
    posted.pop("products/guarantee_release/_on")
    saved = ops.post(STUDIO, data=posted, follow_redirects=True)
    assert saved.status_code == 200, saved.text[:3000]
    draft = _draft(rt)
    product = draft["products"]["resale_escrow"]  # type: ignore[index]
    assert product["banks"] == ["ceb", "pab"]
    assert product["fees"] == [{"name": "资金存管服务费", "payer": "seller", "kind": "rate", "bps": 30}]
    assert product["release"] == {
        "conditions": ["title_transferred"],
        "tranches": [
            {"label": "首期", "share_bps": 9000},
            {"label": "尾款", "remainder": True, "event": "handover_done"},
        ],
    }
    assert product["form"] == {
        "sections": ["房屋信息"],
        "schema": {
            "required": ["floor_area"],
            "properties": {
                "floor_area": {
                    "title": "房屋面积",
                    "x-section": "房屋信息",
                    "type": "number",
                    "x-order": 1,
                    "minimum": 0.01,
                }
            },
        },
    }
    assert draft["products"]["gov_escrow"]["deadlines"] == {"funding_deadline": {"working_days": 3}}  # type: ignore[index]
    assert "guarantee_release" not in draft["products"]  # type: ignore[operator]
    assert {k: v for k, v in draft.items() if k != "products"} == {k: v for k, v in before.items() if k != "products"}
    shown = fields_of(ops.get(STUDIO).text)
    assert shown[f"{resale}/fees/0/bps"] == ["0.3"] and shown[f"{tranches}/0/share_bps"] == ["90"]


def test_a_bad_amount_is_refused_in_chinese_at_its_field_and_nothing_is_saved(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    _new_city(ops)
    before = _draft(rt)
    posted = fields_of(ops.get(STUDIO).text)
    posted["products/resale_escrow/custody/min_fen"] = ["12.345"]
    posted["products/resale_escrow/fees/0/name"] = ["服务费"]
    posted["products/resale_escrow/fees/0/payer"] = ["seller"]
    posted["products/resale_escrow/fees/0/kind"] = ["rate"]
    posted["products/resale_escrow/fees/0/bps"] = ["千分之五"]
    answer = ops.post(STUDIO, data=posted)
    assert answer.status_code == 422
    page = answer.text
    at_field = 'id="f-products-resale_escrow-custody-min_fen-error" role="alert">金额最多两位小数（精确到分）</div>'
    assert at_field in page
    assert 'id="f-products-resale_escrow-fees-0-bps-error" role="alert">比例请填写数字' in page
    assert "千分之五" in page and 'value="12.345"' in page  # what was typed stays to be corrected
    assert "/products/" not in page.split('id="problems"')[1].split("</div>")[0]  # no JSON pointers
    assert _draft(rt) == before


def test_the_checks_problems_land_at_their_fields_and_auditors_only_read(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    """Values the form reads but the config checks refuse (one approver, a fee paid by a tenant on a resale) come
    back at their fields (or their table), in Chinese, and nothing is saved."""
    publishing.import_files(rt)
    ops = login("ops")
    _new_city(ops)
    before = _draft(rt)
    form = fields_of(ops.get(STUDIO).text)
    answer = ops.post(STUDIO, data=form | {"products/resale_escrow/approvals/0/approvers": ["1"]})
    assert answer.status_code == 422
    assert 'id="f-products-resale_escrow-approvals-0-approvers-error" role="alert">不得小于 2</div>' in answer.text
    fee = "products/resale_escrow/fees/0"
    tenant = {
        f"{fee}/name": ["服务费"],
        f"{fee}/payer": ["tenant"],
        f"{fee}/kind": ["fixed"],
        f"{fee}/amount_fen": ["10"],
    }
    answer = ops.post(STUDIO, data=form | tenant)
    assert answer.status_code == 422
    fees = answer.text.split('id="products-resale_escrow-fees"')[1].split("</fieldset>")[0]
    assert (
        '<div class="studio-error" role="alert">资金释放时收取的费用“服务费”只能由卖方承担（配置为承租方）</div>'
        in fees
    )
    assert _draft(rt) == before
    auditor = login("auditor").get(STUDIO).text
    assert "保存草稿" not in auditor and "disabled" in auditor


def test_the_json_tab_names_the_line_and_the_allowed_banks(login: Login, rt: Runtime, users: dict[str, int]) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    _new_city(ops)
    document = _draft(rt)
    document["products"]["resale_escrow"]["banks"] = ["cmb"]  # type: ignore[index]
    text = json.dumps(document, ensure_ascii=False, indent=2)
    line = text.splitlines().index('        "cmb"') + 1
    page = ops.get("/admin/configs/320100")
    assert 'href="/admin/configs/320100/studio"' in page.text
    answer = ops.post("/admin/configs/320100/draft", data={"csrf_token": csrf_token(page.text), "content": text})
    assert answer.status_code == 422
    expected = (
        f'<a href="#line-{line}">第 {line} 行</a>：未知银行：cmb（可选：农行、中行、建行、光大、民生、工行、平安）'
    )
    assert expected in answer.text
