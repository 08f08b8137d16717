"""The operations console: every admin page and form × every role, against one table of who may do what."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.cities import publishing
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from tests.conftest import ROLES, csrf_token
from tests.factories import arrive, confirmed_deal, load_deal, open_account

Login = Callable[[str], FlaskClient]

STAFF = {"ops", "reviewer", "finance", "auditor", "admin"}
# the system administrator manages accounts and holds no business role (三权分立): none of these
FINANCE_READ = {"finance", "auditor"}
CONFIG_READ = {"ops", "reviewer", "auditor"}
CONFIG_AUTHOR = {"ops"}
CONFIG_REVIEW = {"reviewer"}
CONFIG_STEPS = ("simulate", "submit", "approve", "reject", "publish", "rollback")

# endpoint -> (method, roles allowed). A new admin endpoint without a line here fails the first test.
ROLE_TABLE: dict[str, tuple[str, set[str]]] = {
    "admin.index": ("GET", STAFF),
    "admin_deals.index": ("GET", {"ops", "finance", "auditor"}),
    "admin_deals.detail": ("GET", {"ops", "finance", "auditor"}),
    "admin_deals.unmask": ("POST", {"finance"}),
    "admin_deals.freeze": ("POST", {"ops"}),
    "admin_deals.unfreeze": ("POST", {"ops"}),
    "admin_deals.batch": ("POST", {"ops"}),
    "admin_payouts.index": ("GET", {"ops", "finance", "auditor"}),
    "admin_payouts.approve": ("POST", {"ops", "finance"}),
    "admin_payouts.batch": ("POST", {"ops", "finance"}),
    "admin_payee_amendments.index": ("GET", {"ops", "finance", "auditor"}),
    "admin_payee_amendments.approve": ("POST", {"ops", "finance"}),
    "admin_banks.index": ("GET", {"auditor", "admin"}),
    "admin_banks.limits": ("POST", {"admin"}),
    "admin_ledger.index": ("GET", FINANCE_READ),
    "admin_ledger.account": ("GET", FINANCE_READ),
    "admin_ledger.transfers": ("GET", FINANCE_READ),
    "admin_ledger.transfers_csv": ("GET", FINANCE_READ),
    "admin_suspense.index": ("GET", FINANCE_READ),
    "admin_suspense.item": ("GET", FINANCE_READ),
    "admin_suspense.match": ("POST", {"finance"}),
    "admin_suspense.approve_match": ("POST", {"finance"}),
    "admin_suspense.return_": ("POST", {"finance"}),
    "admin_jobs.index": ("GET", {"auditor", "admin"}),
    "admin_jobs.retry": ("POST", {"admin"}),
    "admin_jobs.batch": ("POST", {"admin"}),
    "admin_users.index": ("GET", {"auditor", "admin"}),
    "admin_users.create": ("POST", {"admin"}),
    "admin_users.active": ("POST", {"admin"}),
    "admin_users.password": ("POST", {"admin"}),
    "admin_users.role": ("POST", {"admin"}),
    "admin_users.approve_grant": ("POST", {"admin"}),
    "admin_users.reject_grant": ("POST", {"admin"}),
    "admin_audit.index": ("GET", {"auditor", "admin"}),
    "admin_audit.verify": ("GET", {"auditor", "admin"}),
    "admin_sms.index": ("GET", {"ops", "admin"}),  # only while the SMS simulator is in use (404 with a gateway)
    "admin_configs.index": ("GET", CONFIG_READ),
    "admin_configs.city": ("GET", CONFIG_READ),
    "admin_configs.graph": ("GET", CONFIG_READ),
    "admin_configs.save": ("POST", CONFIG_AUTHOR),
    "admin_configs.studio": ("GET", CONFIG_READ),
    "admin_configs.studio_save": ("POST", CONFIG_AUTHOR),
    "admin_configs.simulate": ("POST", CONFIG_AUTHOR | CONFIG_REVIEW),
    "admin_configs.submit": ("POST", CONFIG_AUTHOR),
    "admin_configs.new_city": ("POST", CONFIG_AUTHOR),
    "admin_configs.approve": ("POST", CONFIG_REVIEW),
    "admin_configs.reject": ("POST", CONFIG_REVIEW),
    "admin_configs.publish": ("POST", CONFIG_REVIEW),
    "admin_configs.rollback": ("POST", CONFIG_REVIEW),
    "admin_configs.go_live": ("POST", CONFIG_REVIEW),
    "admin_configs.take_offline": ("POST", CONFIG_REVIEW),
    "admin_definitions.index": ("GET", CONFIG_READ),
    "admin_definitions.definition": ("GET", CONFIG_READ),
    "admin_definitions.save": ("POST", CONFIG_AUTHOR),
    "admin_definitions.new": ("POST", CONFIG_AUTHOR),
    "admin_definitions.submit": ("POST", CONFIG_AUTHOR),
    "admin_definitions.simulate": ("POST", CONFIG_AUTHOR | CONFIG_REVIEW),
    "admin_definitions.approve": ("POST", CONFIG_REVIEW),
    "admin_definitions.reject": ("POST", CONFIG_REVIEW),
    "admin_definitions.publish": ("POST", CONFIG_REVIEW),
    "admin_definitions.definition_studio": ("GET", CONFIG_READ),
    "admin_definitions.definition_studio_save": ("POST", CONFIG_AUTHOR),
    "admin_definitions.clause_editor_open": ("GET", CONFIG_AUTHOR | CONFIG_REVIEW),
    "admin_definitions.clause_editor": ("GET", CONFIG_AUTHOR | CONFIG_REVIEW),
    "admin_definitions.clause_editor_post": ("POST", CONFIG_AUTHOR | CONFIG_REVIEW),  # saving: authors only
    **{
        f"admin_configs.{name}": ("GET", CONFIG_AUTHOR | CONFIG_REVIEW)
        for name in (
            "preview_form",
            "preview_form_frame",
            "preview_agreement",
            "preview_agreement_html",
            "preview_agreement_pdf",
        )
    },
}
# what a permitted request answers where it is not the usual 200 (GET) or 302 (POST)
PERMITTED = {
    "admin_definitions.clause_editor_open": 302,  # to the named clause's editor
    "admin_definitions.clause_editor_post": 422,  # the posted (empty) clause is refused in Chinese
    "admin_definitions.definition_studio_save": 422,  # the posted (empty) bank form is refused at its fields
}
DEFINITION_STEPS = ("submit", "simulate", "approve", "reject", "publish")
NOT_ROLE_CHECKED = {"admin.static"}  # flask-admin's CSS/JS: behind the login like everything else


def _admin_rules(app: Flask) -> dict[str, str]:
    """endpoint -> URL rule, for every route flask-admin registered."""
    names = {view.endpoint for view in app.extensions["admin"][0]._views}
    return {
        rule.endpoint: rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in names and rule.endpoint not in NOT_ROLE_CHECKED
    }


def test_every_admin_endpoint_has_an_entry_in_the_role_table(app: Flask) -> None:
    rules = _admin_rules(app)
    assert set(rules) == set(ROLE_TABLE), "add new admin endpoints to ROLE_TABLE (and remove old ones)"
    for endpoint, (method, _) in ROLE_TABLE.items():
        methods = next(r.methods for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        assert method in methods, endpoint


@pytest.fixture
def paths(client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict) -> dict[str, str]:
    """A deal with an account, one arrival and one unknown credit in suspense: every page has something."""
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, "6226000000000101")
    arrive(client, keys_dir, "6226000000000101", 500_00, "REF-WALK-1")
    arrive(client, keys_dir, "6226999999999101", 20_00, "REF-WALK-2")
    deal_no = load_deal(rt, deal_id).deal_no
    publishing.import_files(rt)
    publishing.save_draft(rt, "110000", (ROOT / "city_configs" / "110000.json").read_text("utf-8"), "ops")  # previews
    return {
        "admin_deals.detail": f"/admin/deals/{deal_id}",
        "admin_deals.unmask": f"/admin/deals/{deal_id}/unmask",
        "admin_deals.freeze": f"/admin/deals/{deal_id}/freeze",
        "admin_deals.unfreeze": f"/admin/deals/{deal_id}/unfreeze",
        "admin_payouts.approve": "/admin/payouts/NO-SUCH-PAYOUT/approve",
        "admin_payee_amendments.approve": "/admin/payee-amendments/999/approve",
        "admin_banks.limits": "/admin/banks/ceb/limits",
        "admin_ledger.account": f"/admin/ledger/account/custody:{deal_no}",
        "admin_suspense.item": "/admin/suspense/1",
        "admin_suspense.match": "/admin/suspense/1/match",
        "admin_suspense.approve_match": "/admin/suspense/1/approve-match",
        "admin_suspense.return_": "/admin/suspense/1/return",
        "admin_jobs.retry": "/admin/jobs/999/retry",
        "admin_users.active": "/admin/users/nobody/active",
        "admin_users.password": "/admin/users/nobody/password",
        "admin_users.role": "/admin/users/nobody/role",
        "admin_users.approve_grant": "/admin/users/grants/999/approve",
        "admin_users.reject_grant": "/admin/users/grants/999/reject",
        "admin_configs.city": "/admin/configs/110000",
        "admin_configs.graph": "/admin/configs/workflow/resale_escrow/1.svg",
        "admin_configs.save": "/admin/configs/nocity/draft",
        "admin_configs.studio": "/admin/configs/110000/studio",
        "admin_configs.studio_save": "/admin/configs/nocity/studio",
        **{f"admin_configs.{name}": f"/admin/configs/nocity/{name}" for name in CONFIG_STEPS},
        "admin_configs.go_live": "/admin/configs/nocity/go-live",
        "admin_configs.take_offline": "/admin/configs/nocity/take-offline",
        "admin_definitions.definition": "/admin/definitions/clause/dispute",
        "admin_definitions.definition_studio": "/admin/definitions/bank/ceb/studio",
        "admin_definitions.definition_studio_save": "/admin/definitions/bank/ceb/studio",
        "admin_definitions.clause_editor_open": "/admin/definitions/clause-editor/?name=dispute",
        "admin_definitions.clause_editor": "/admin/definitions/clause-editor/dispute",
        "admin_definitions.clause_editor_post": "/admin/definitions/clause-editor/dispute",
        "admin_configs.preview_form": "/admin/configs/110000/preview/form",
        "admin_configs.preview_form_frame": "/admin/configs/110000/preview/form/resale_escrow/frame",
        "admin_configs.preview_agreement": "/admin/configs/110000/preview/agreement",
        "admin_configs.preview_agreement_html": "/admin/configs/110000/preview/agreement/resale_escrow.html",
        "admin_configs.preview_agreement_pdf": "/admin/configs/110000/preview/agreement/resale_escrow.pdf",
        "admin_definitions.save": "/admin/definitions/clause/nothing/draft",
        **{f"admin_definitions.{name}": f"/admin/definitions/clause/nothing/{name}" for name in DEFINITION_STEPS},
    }


def test_every_admin_page_by_every_role(app: Flask, client: FlaskClient, login: Login, paths: dict[str, str]) -> None:
    rules = _admin_rules(app)
    urls = {endpoint: paths.get(endpoint, rule) for endpoint, rule in rules.items()}
    for endpoint, url in urls.items():
        if ROLE_TABLE[endpoint][0] == "POST":
            assert client.post(url).status_code == 400, (endpoint, "anonymous: no session, no CSRF token")
            continue
        answer = client.get(url)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], (endpoint, "anonymous")
    for role in ROLES:
        client = login(role)
        token = csrf_token(client.get("/login").text)
        for endpoint, url in urls.items():
            method, allowed = ROLE_TABLE[endpoint]
            data = {"csrf_token": token} if method == "POST" else None
            answer = client.open(url, method=method, data=data)
            if role in allowed:
                expected = PERMITTED.get(endpoint, 200 if method == "GET" else 302)  # empty forms: an error
                assert answer.status_code == expected, (role, endpoint, answer.status_code)
            else:
                assert answer.status_code == 403, (role, endpoint, answer.status_code)
                assert "当前角色无权访问此页面" in answer.text
    assert "agent" not in set().union(*(roles for _, roles in ROLE_TABLE.values()))


def test_admin_pages_are_chinese_with_security_headers_and_the_alert_banner(
    login: Login, rt: Runtime, users: dict
) -> None:
    from app.db.ledger_models import LedgerAlert
    from app.domain import ledger
    from app.ledger.repo import LedgerRepository

    with rt.db.uow() as uow:
        account = LedgerRepository(uow.session).ensure_account(ledger.bank_clearing("ceb"))
        uow.session.add(LedgerAlert(account_id=account.id, projected_fen=10_00, threshold_fen=1000_00))
        uow.commit()
    answer = login("ops").get("/admin/")
    assert answer.status_code == 200
    assert "存管运营后台" in answer.text and "看板" in answer.text
    assert "账户预警" in answer.text and "¥1,000.00" in answer.text, "the hot-account banner"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert "cdn" not in answer.text.lower(), "assets are served locally"
    assert "账务" not in answer.text, "the menu shows only what the role may open"


def test_admin_form_without_csrf_token_is_refused(login: Login) -> None:
    answer = login("admin").post("/admin/users/create", data={"username": "x", "role": "ops", "password": "a1" * 6})
    assert answer.status_code == 400 and "表单校验失败" in answer.text
