"""Everything issue 15 asks the audit log to hold, produced through HTTP: logins, failures and the lockout; a
deal's creation, confirmation, agreement signature and title transfer (workflow events); the release (opened,
approved with payee and amount, accepted by the bank, the bank's result) and the refund of an overpayment; PDF
download, PII search and unmask, CSV export, a user change - each with actor, target and before/after."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.audit_models import AuditEntry
from app.db.models import Payout
from app.payouts import submission
from app.platform.runtime import Runtime
from app.users.login_throttle import MAX_FAILURES
from tests.conftest import csrf_token
from tests.factories import RESALE_FORM, arrive, load_deal, notification, open_account, post_callback, post_confirmed

Login = Callable[[str], FlaskClient]
BIG = {**RESALE_FORM, "price": "9000000", "custody_amount": "6000000"}  # above 北京's approval line
BIG_FEN = 6_000_000_00
OVERPAID_FEN = 500_00
ACCOUNT = "6226000000000888"


def _entries(rt: Runtime, action: str) -> list[AuditEntry]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _one(rt: Runtime, action: str, **expected: Any) -> AuditEntry:
    found = [e for e in _entries(rt, action) if all(getattr(e, k) == v for k, v in expected.items())]
    assert len(found) == 1, (action, expected, [(e.actor, e.subject) for e in _entries(rt, action)])
    return found[0]


def _post(client: FlaskClient, url: str, **data: str) -> Any:
    return post_confirmed(client, url, {**data, "csrf_token": csrf_token(client.get("/login").text)})


def test_a_deals_whole_life_is_in_the_audit_log(
    app: Flask, client: FlaskClient, rt: Runtime, keys_dir: Path, login: Login
) -> None:
    agent = login("agent")
    created = _post(agent, "/deals/new", **BIG)
    assert created.status_code == 302
    deal_id = int(created.headers["Location"].rsplit("/", 1)[1])
    deal_no = load_deal(rt, deal_id).deal_no
    subject = f"deal:{deal_no}"
    assert _one(rt, "deal.create", actor="user:agent", subject=subject).after["custody_amount_fen"] == BIG_FEN

    assert _post(agent, f"/deals/{deal_id}/confirm").status_code == 302
    confirm = _one(rt, "workflow.confirm", actor="user:agent", subject=subject)
    assert confirm.before == {"state": "created"} and confirm.after["state"] != "created"
    signed = _one(rt, "agreement.sign", actor="platform", subject=subject)
    assert signed.after["pdf_sm3"] == load_deal(rt, deal_id).agreement.pdf_sm3

    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, BIG_FEN + OVERPAID_FEN, "REF-AUDIT")
    assert _one(rt, "workflow.funds_arrived", subject=subject).after == {"state": "funded"}

    ops = login("ops")
    assert _post(ops, f"/deals/{deal_id}/title-transferred").status_code == 302
    title = _one(rt, "workflow.title_transferred", actor="user:ops", subject=subject)
    assert title.before == {"state": "funded"} and title.after == {"state": "releasing"}
    release = load_deal(rt, deal_id).payouts[0]
    payout_subject = f"payout:{release.payout_id}"
    opened = _one(rt, "payout.open", actor="user:ops", subject=payout_subject)
    assert opened.after["status"] == "awaiting_approval" and opened.after["purpose"] == "release"
    assert opened.after["amount_fen"] == BIG_FEN and opened.after["payee_name"] == "李*"
    assert opened.after["payee_account"].endswith(RESALE_FORM["seller_bank_account"][-4:])
    assert RESALE_FORM["seller_bank_account"] not in str(opened.after), "the account is masked"
    assert opened.detail["deal_no"] == deal_no

    finance = login("finance")
    assert _post(finance, f"/payouts/{release.payout_id}/approve").status_code == 302
    approval = _one(rt, "payout.approve", actor="user:finance", subject=payout_subject)
    assert approval.before["approved_by"] == [] and approval.after["approved_by"] == ["user:finance"]
    assert (approval.before["status"], approval.after["status"]) == ("awaiting_approval", "pending")
    assert approval.after["amount_fen"] == BIG_FEN and approval.after["payee_name"] == "李*"

    with rt.db.uow() as uow:  # the bank accepted it (what the submit_payout job records)
        payout = uow.session.scalars(select(Payout).where(Payout.payout_id == release.payout_id)).one()
        submission.mark_submitted(uow.session, payout, "B-AUDIT", rt.clock())
        uow.commit()
    accepted = _one(rt, "payout.submitted", actor="bank:ceb", subject=payout_subject)
    assert (accepted.before["status"], accepted.after["status"]) == ("pending", "submitted")
    paid = notification(
        "payout_result", payout_id=release.payout_id, bank_reference="B-AUDIT", status="succeeded", failure_reason=None
    )
    answer = post_callback(client, keys_dir, paid)
    assert answer[0] == 200, answer
    result = _one(rt, "payout.result", subject=payout_subject)
    assert (result.before["status"], result.after["status"]) == ("submitted", "succeeded")
    assert result.after["bank_reference"] == "B-AUDIT"
    assert _entries(rt, "workflow.payout_succeeded")[0].subject == subject

    refunds = [e for e in _entries(rt, "payout.open") if e.after["purpose"] == "refund"]
    assert len(refunds) == 1 and refunds[0].after["amount_fen"] == OVERPAID_FEN, "the overpayment goes back"
    assert refunds[0].detail["deal_no"] == deal_no

    pdf = login("agent").get(f"/deals/{deal_id}/agreement.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    download = _one(rt, "agreement.download", actor="user:agent", subject=subject)
    assert download.detail["pdf_sm3"] == load_deal(rt, deal_id).agreement.pdf_sm3

    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0


def test_logins_failures_and_the_lockout_are_audited(client: FlaskClient, rt: Runtime, login: Login) -> None:
    login("ops")
    assert _one(rt, "auth.login", actor="user:ops", subject="user:ops").detail["ip"]
    for _ in range(MAX_FAILURES):
        token = csrf_token(client.get("/login").text)
        client.post("/login", data={"username": "agent", "password": "wrong-password-1", "csrf_token": token})
    failures = _entries(rt, "auth.login_failed")
    assert len(failures) == MAX_FAILURES and {e.subject for e in failures} == {"user:agent"}
    assert [e.detail["failures"] for e in failures] == list(range(1, MAX_FAILURES + 1))
    lockout = _one(rt, "auth.lockout", subject="user:agent")
    assert lockout.detail["ip"] == failures[0].detail["ip"] and lockout.detail["minutes"] > 0


def test_pii_search_unmask_csv_export_and_user_changes_are_audited(
    client: FlaskClient, rt: Runtime, keys_dir: Path, login: Login
) -> None:
    agent = login("agent")
    deal_id = int(_post(agent, "/deals/new", **RESALE_FORM).headers["Location"].rsplit("/", 1)[1])
    deal_no = load_deal(rt, deal_id).deal_no

    finance = login("finance")
    id_number = RESALE_FORM["buyer_id_number"]
    assert deal_no in finance.get(f"/admin/deals/?party_id={id_number}").text
    search = _one(rt, "pii.search", actor="user:finance")
    assert search.detail["found"] == 1 and search.detail["searched"]["id_number"].endswith(id_number[-4:])
    assert id_number not in str(search.detail), "the searched number is masked in the log"
    finance.get("/admin/deals/?city=110000")
    assert len(_entries(rt, "pii.search")) == 1, "a search by other fields is not a PII search"

    assert _post(finance, f"/admin/deals/{deal_id}/unmask", reason="核对收款人").status_code == 200
    assert _one(rt, "pii.unmask", actor="user:finance", subject=f"deal:{deal_no}").detail["reason"] == "核对收款人"

    csv = finance.get("/admin/ledger/transfers.csv?code=arrival")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    export = _one(rt, "export.csv", actor="user:finance", subject="ledger:transfers")
    assert export.detail == {"filters": {"code": "arrival"}, "rows": 0}

    admin = login("admin")
    assert _post(admin, "/admin/users/agent/active", active="0").status_code == 302
    change = _one(rt, "user.set_active", actor="user:admin", subject="user:agent")
    assert change.before == {"active": True} and change.after == {"active": False}
