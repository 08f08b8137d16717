"""The generated intake form on the web: choice of (city, product), errors next to fields, values kept,
drafts saved and resumed (encrypted at rest), every product creating its deal."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from app.db.models import Deal, FormDraft
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import RENT_PARTIES, RESALE_FORM

Login = Callable[[str], FlaskClient]

RENT_FORM = {
    "city_code": "110000",
    "product": "rent_custody",
    **RENT_PARTIES,
    "monthly_rent_fen": "6500",
    "lease_months": "12",
    "months_per_installment": "3",
    "deposit_fen": "6500",
}


def _count(rt: Runtime, model: type) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def _post(client: FlaskClient, form: dict[str, str], **extra: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/deals/new").text)
    return client.post("/deals/new", data={**form, **extra, "csrf_token": token})


def _field_block(html: str, name: str) -> str:
    match = re.search(rf'<div class="field[^"]*" id="w-{name}".*?</div>', html, re.S)
    assert match, f"no field {name}"
    return match.group(0)


def test_agent_chooses_among_live_cities_and_their_products(login: Login) -> None:
    page = login("agent").get("/deals/new").text
    options = re.findall(r'<option value="(\d{6}:\w+)"', page)
    assert (
        "110000:resale_escrow" in options and "330100:gov_escrow" in options and "370100:provident_fund_rent" in options
    )
    assert not any(o.startswith(("370200", "440300")) for o in options), "draft cities are not offered"
    assert 'name="csrf_token"' in page and "网签合同编号" in page and "提交并预览协议" in page


def test_city_fields_appear_in_the_form_and_a_rent_custody_deal_is_created(login: Login, rt: Runtime) -> None:
    client = login("agent")
    page = client.get("/deals/new?choice=110000:rent_custody").text
    assert "租赁合同编号" in page and "网签备案的住房租赁合同编号" in page, "the city's label and help"
    assert 'inputmode="decimal"' in page and 'name="custody_bank"' not in page, "one bank: nothing to choose"
    assert client.get("/deals/new?choice=370200:resale_escrow").status_code == 404

    answer = _post(client, {**RENT_FORM, "landlord_bank_card": "6222600260001072445", "tenant_phone": "12345"})
    assert answer.status_code == 422
    assert "出租人收租银行卡号无效" in _field_block(answer.text, "landlord_bank_card")
    assert "承租人手机号应为 11 位手机号码" in _field_block(answer.text, "tenant_phone")
    assert _count(rt, Deal) == 0

    created = _post(client, RENT_FORM)
    assert created.status_code == 302, created.text
    with rt.db.uow() as uow:
        deal = uow.session.scalars(select(Deal)).one()
        # 3 months' rent in advance and the deposit: all supervised in 北京 (no exemption)
        assert (deal.product, deal.deal_no[:8], deal.custody_amount_fen) == ("rent_custody", "RC110000", 2_600_000)
        assert (deal.buyer_name, deal.seller_name, deal.seller_bank_account) == ("张三", "李四", "6222600260001072444")
        assert deal.facts["custody_per_month_fen"] == 650_000 and deal.facts["lease_starts_on"] == "2026-12-01"
        assert not any("id_number" in name or "phone" in name for name in deal.facts), "no PII in plain facts"


def test_government_escrow_lets_the_agent_choose_among_the_citys_banks(login: Login) -> None:
    page = login("agent").get("/deals/new?choice=330100:gov_escrow").text
    start = page.index('name="custody_bank"')
    select = page[start : page.index("</select>", start)]
    assert re.findall(r'<option value="(\w+)"', select) == ["icbc", "abc", "ccb"] and "中国工商银行" in select


def test_errors_sit_next_to_their_fields_and_typed_values_are_kept(login: Login, rt: Runtime) -> None:
    client = login("agent")
    wrong = {**RESALE_FORM, "buyer_id_number": "110105194912310021", "buyer_name": "王五", "payment_method": "贷款"}
    answer = _post(client, wrong)
    assert answer.status_code == 422
    assert "校验位" in _field_block(answer.text, "buyer_id_number")
    assert "买方姓名与网签合同的买受人不一致" in _field_block(answer.text, "buyer_name")
    loan = _field_block(answer.text, "loan_bank")
    assert "请填写贷款银行" in loan and 'data-when-value="贷款"' in loan
    assert 'value="110105194912310021"' in answer.text and 'value="2026-BJ-0012345"' in answer.text
    assert re.search(r'value="贷款" checked', answer.text), "the chosen radio stays chosen"
    assert _count(rt, Deal) == 0


def test_draft_is_saved_encrypted_resumed_and_removed_on_submission(login: Login, rt: Runtime) -> None:
    client = login("agent")
    partial = {"city_code": "110000", "product": "resale_escrow", "buyer_name": "张三"}
    saved = _post(client, {**partial, "buyer_id_number": "11010519491231002X", "price": "12.345"}, action="save_draft")
    assert saved.status_code == 302 and "draft=" in saved.headers["Location"]
    draft_id = int(saved.headers["Location"].rsplit("=", 1)[1])
    with rt.db.engine.connect() as connection:
        stored = connection.execute(text("SELECT values_json FROM form_drafts")).scalar_one()
    assert stored.startswith("k1$") and "11010519491231002X" not in stored and "张三" not in stored

    page = client.get(f"/deals/new?draft={draft_id}").text
    assert 'value="11010519491231002X"' in page and 'value="12.345"' in page, "invalid values are kept in drafts"
    assert f'name="draft_id" value="{draft_id}"' in page and "正在编辑" in page

    created = _post(client, RESALE_FORM, draft_id=str(draft_id))
    assert created.status_code == 302 and "/deals/" in created.headers["Location"]
    assert _count(rt, FormDraft) == 0 and _count(rt, Deal) == 1


def test_drafts_belong_to_their_agent(login: Login, rt: Runtime) -> None:
    from app.users.service import create_user

    client = login("agent")
    saved = _post(client, {**RENT_FORM, "tenant_phone": "123"}, action="save_draft")
    location = saved.headers["Location"]
    create_user(rt, "agent2", "another-pass-1", "agent", "另一位经纪人")
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/deals").text)})
    token = csrf_token(client.get("/login").text)
    client.post("/login", data={"username": "agent2", "password": "another-pass-1", "csrf_token": token})
    assert client.get(location).status_code == 404
    answer = _post(client, RENT_FORM, action="save_draft", draft_id=location.rsplit("=", 1)[1])
    assert answer.status_code == 404, "nobody overwrites another agent's draft"
