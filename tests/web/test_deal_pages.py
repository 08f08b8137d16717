"""Agent and ops pages: login, the intake form, the deal page, roles, CSRF, PII at rest."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select, text

from app.db.models import Deal, Job
from app.pdf.verify import verify_pdf
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import RESALE_FORM, confirmed_deal, post_confirmed

Login = Callable[[str], FlaskClient]


def _deal_count(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(Deal)) or 0


def _create(client: FlaskClient, form: dict[str, str]):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/deals/new").text)
    return client.post("/deals/new", data={**form, "csrf_token": token})


def test_pages_need_a_login_except_login_and_callbacks(client: FlaskClient) -> None:
    for path in ("/", "/deals", "/deals/new", "/deals/1", "/deals/1/agreement.pdf"):
        answer = client.get(path)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
    assert client.get("/api/openapi.json").status_code == 401
    assert client.get("/login").status_code == 200
    assert client.post("/api/banks/ceb/notifications", data=b"{}").status_code == 401


def test_wrong_password_is_refused_in_chinese(client: FlaskClient, users: dict) -> None:
    token = csrf_token(client.get("/login").text)
    answer = client.post("/login", data={"username": "agent", "password": "nope", "csrf_token": token})
    assert answer.status_code == 401 and "用户名或密码错误" in answer.text


def test_invalid_form_shows_errors_by_field_and_creates_nothing(login: Login, rt: Runtime) -> None:
    client = login("agent")
    answer = _create(client, {**RESALE_FORM, "buyer_id_number": "110105194912310021", "price": "abc"})
    assert answer.status_code == 422
    assert 'id="e-buyer_id_number"' in answer.text and "校验位" in answer.text
    assert 'id="e-price"' in answer.text and "金额格式不正确" in answer.text
    assert 'value="北京市朝阳区建国路1号1单元101"' in answer.text, "typed values are kept"
    assert _deal_count(rt) == 0


def test_form_without_csrf_token_is_refused(login: Login, rt: Runtime) -> None:
    client = login("agent")
    answer = client.post("/deals/new", data=RESALE_FORM)
    assert answer.status_code == 400 and "表单校验失败" in answer.text
    assert _deal_count(rt) == 0


def test_agent_creates_previews_confirms_and_downloads_signed_pdf(login: Login, rt: Runtime, keys_dir) -> None:
    client = login("agent")
    answer = _create(client, RESALE_FORM)
    assert answer.status_code == 302
    page = client.get(answer.headers["Location"]).text
    assert "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in page
    assert "¥1,234,567.89" in page
    assert "11010519491231002X" not in page, "ID numbers are masked on screen"
    deal_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    assert f"/deals/{deal_id}/agreement.html" in page, "the page frames the agreement preview"
    preview = client.get(f"/deals/{deal_id}/agreement.html")
    assert "资金存管协议" in preview.text and "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in preview.text
    assert "frame-ancestors 'self'" in preview.headers["Content-Security-Policy"]

    confirm = client.post(f"/deals/{deal_id}/confirm", data={"csrf_token": csrf_token(page)})
    assert confirm.status_code == 302
    page = client.get(f"/deals/{deal_id}").text
    assert "开户中" in page and "下载已签署协议" in page
    pdf = client.get(f"/deals/{deal_id}/agreement.pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    report = verify_pdf(pdf.data, (keys_dir / "platform.cert.pem").read_bytes())
    assert report.valid, report.errors
    assert client.get(f"/deals/{deal_id}/agreement.html").text == preview.text, "what was previewed was signed"
    with rt.db.uow() as uow:
        kinds = list(uow.session.scalars(select(Job.kind).order_by(Job.id)))
        assert kinds == ["agreement_countersign", "open_virtual_account"], "the bank is asked to sign and to open"
    state = client.get(f"/deals/{deal_id}?format=json").get_json()
    assert state["state"] == "awaiting_account" and state["agreement_signed"] is True


def test_roles_and_ownership(login: Login, rt: Runtime) -> None:
    client = login("agent")
    location = _create(client, RESALE_FORM).headers["Location"]
    deal_id = int(location.rsplit("/", 1)[1])
    token = csrf_token(client.get(location).text)
    assert client.post(f"/deals/{deal_id}/title-transferred", data={"csrf_token": token}).status_code == 403

    client = login("ops")
    assert client.get("/deals/new").status_code == 403
    token = csrf_token(client.get(location).text)
    assert client.post(f"/deals/{deal_id}/confirm", data={"csrf_token": token}).status_code == 403
    answer = post_confirmed(client, f"/deals/{deal_id}/title-transferred", {"csrf_token": token}, follow_redirects=True)
    assert "不能执行「过户完成」" in answer.text, "the workflow refuses title transfer before funding"

    from app.users.service import create_user

    create_user(rt, "agent2", "another-pass-1", "agent", "另一位经纪人")
    client.post("/logout", data={"csrf_token": token})
    token = csrf_token(client.get("/login").text)
    client.post("/login", data={"username": "agent2", "password": "another-pass-1", "csrf_token": token})
    assert client.get(location).status_code == 404, "an agent sees only their own deals"


def test_pii_is_encrypted_at_rest(login: Login, rt: Runtime) -> None:
    _create(login("agent"), RESALE_FORM)
    with rt.db.engine.connect() as connection:
        row = connection.execute(text("SELECT buyer_id_number, seller_bank_account, buyer_name FROM deals")).one()
    assert RESALE_FORM["buyer_id_number"] not in row[0] and row[0].startswith("k1$")
    assert RESALE_FORM["seller_bank_account"] not in row[1]
    with rt.db.uow() as uow:
        deal = uow.session.scalar(select(Deal))
        assert deal is not None and deal.buyer_id_number == RESALE_FORM["buyer_id_number"]


def test_security_headers(client: FlaskClient) -> None:
    headers = client.get("/login").headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_every_endpoint_needs_a_login_unless_listed_public(app, client: FlaskClient) -> None:
    """A new page is protected by default; this fails if someone makes one public by accident."""
    from app.web.access import PUBLIC_ENDPOINTS

    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = rule.build({arg: 1 for arg in rule.arguments})[1] if rule.arguments else rule.rule
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = client.open(path, method=method)
            assert answer.status_code in (302, 400, 401), (rule.endpoint, method, answer.status_code)
            if answer.status_code == 302:
                assert "/login" in answer.headers["Location"]
            checked += 1
    assert checked >= 9
    public = {
        "auth.login",
        "static",
        "bank_callbacks.notify",
        "bank_callbacks.ping",
        "health.healthz",
        "health.readyz",
        "health.favicon",
        # a party's signing pages: the signing link's token is the credential (tests/web/test_party_signing.py)
        "signing.page",
        "signing.agreement_html",
        "signing.send_code",
        "signing.check",
        "signing.sign",
    }
    assert public == PUBLIC_ENDPOINTS


def test_the_icon_browsers_ask_for_is_served_without_a_login(client: FlaskClient) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200 and answer.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    icon = Image.open(BytesIO(answer.data))
    assert icon.format == "ICO" and (32, 32) in icon.info["sizes"]


def test_a_deal_without_an_address_shows_a_dash_not_none(login: Login, rt: Runtime) -> None:
    deal_id = confirmed_deal(rt)
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        assert deal is not None
        deal.property_address = None
        uow.commit()
    page = login("agent").get("/deals").text
    assert deal.deal_no in page and "None" not in page and 'data-label="房屋" class="address">—</td>' in page


def test_openapi_document_is_served_to_logged_in_users(login: Login) -> None:
    client = login("auditor")
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    operation = spec["paths"]["/api/banks/{bank_code}/notifications"]["post"]
    parameters = [spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] for p in operation["parameters"]]
    headers = {p["name"] for p in parameters if p["in"] == "header"}
    assert {"X-Bank-Timestamp", "X-Bank-Nonce", "X-Bank-Signature"} <= headers
    assert {"200", "400", "401", "404", "413"} <= set(operation["responses"])
