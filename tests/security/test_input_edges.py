"""Issue 16, input edges: callback bodies with a key given twice are refused, a MALFORMED answer names the
field and the rule broken (also when the body fits none of the notification types), CSV reports carry no
spreadsheet formulas, and another agent's draft id creates nothing."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.db.models import BankNotification, Deal, FormDraft
from app.deals.cli import write_report
from app.deals.contract_import_report import ImportResult
from app.domain.contract_import import BadRow
from app.platform.csv_cells import safe_cell
from app.platform.runtime import Runtime
from app.users.service import create_user
from tests.conftest import PASSWORD, csrf_token
from tests.factories import RENT_PARTIES, notification, post_callback

Login = Callable[[str], FlaskClient]

ARRIVAL = {
    "bank_reference": "REF-1",
    "account_no": "6226000000000001",
    "amount_fen": 100,
    "payer_name": "张三",
    "payer_account": "6226620012345678",
    "arrived_at": "2026-11-23T08:00:00Z",
}


def _count(rt: Runtime, model: type) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_a_callback_body_with_a_key_given_twice_is_refused(client: FlaskClient, rt: Runtime, keys_dir: Path) -> None:
    body = json.dumps(notification("funds_arrived", **ARRIVAL), ensure_ascii=False)
    # the second amount_fen would win with a plain parser
    raw = body.replace('"amount_fen": 100', '"amount_fen": 100, "amount_fen": 99999999').encode()
    assert raw.count(b'"amount_fen"') == 2
    status, answer = post_callback(client, keys_dir, raw)
    assert (status, answer["code"]) == (400, "MALFORMED"), answer
    assert answer["errors"] == [
        {"pointer": "/amount_fen", "rule": "duplicate_key", "message": "字段 amount_fen 重复出现"}
    ]
    assert _count(rt, BankNotification) == 0, "nothing refused is stored"


def test_malformed_names_the_field_and_rule_of_the_type_meant(client: FlaskClient, keys_dir: Path) -> None:
    wrong_type = notification("funds_arrived", **{**ARRIVAL, "amount_fen": "100"})
    status, answer = post_callback(client, keys_dir, wrong_type)
    assert (status, answer["code"]) == (400, "MALFORMED"), answer
    assert [(e["pointer"], e["rule"]) for e in answer["errors"]] == [("/amount_fen", "type")], answer["errors"]
    assert "not valid under any of the given schemas" not in json.dumps(answer)

    missing = notification("funds_arrived", **{k: v for k, v in ARRIVAL.items() if k != "payer_name"})
    status, answer = post_callback(client, keys_dir, missing)
    assert status == 400
    assert [(e["pointer"], e["rule"]) for e in answer["errors"]] == [("/payer_name", "required")], answer["errors"]

    bad_pattern = notification("payout_result", payout_id="PO 1", bank_reference="B-1", status="succeeded")
    bad_pattern["failure_reason"] = None
    status, answer = post_callback(client, keys_dir, bad_pattern)
    assert status == 400
    assert [(e["pointer"], e["rule"]) for e in answer["errors"]] == [("/payout_id", "pattern")], answer["errors"]


def test_contract_import_report_carries_no_spreadsheet_formula(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/","点此")'
    result = ImportResult(source_name="x.csv")
    result.bad_rows = [
        BadRow(2, "tenant_name", f"无效值：{formula}", formula),
        BadRow(3, "tenant_name", "@SUM(A1)", "+1"),
        BadRow(4, "tenant_name", "-2+3", "\tcmd"),
    ]
    report = tmp_path / "x.errors.csv"
    write_report(report, result, {})
    rows = list(csv.reader(report.open(encoding="utf-8-sig", newline="")))[1:]
    cells = [cell for row in rows for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells), cells
    assert rows[0][4] == "'" + formula and rows[1][3] == "'@SUM(A1)", "the text is kept, only quoted"
    assert rows[0][0] == "2" and safe_cell(-5) == -5, "numbers stay numbers"


def test_another_agents_draft_id_creates_nothing(login: Login, rt: Runtime) -> None:
    form = {
        "city_code": "110000",
        "product": "rent_custody",
        **RENT_PARTIES,
        "monthly_rent_fen": "6500",
        "lease_months": "12",
        "months_per_installment": "3",
        "deposit_fen": "6500",
    }
    client = login("agent")
    token = csrf_token(client.get("/deals/new").text)
    saved = client.post("/deals/new", data={**form, "action": "save_draft", "csrf_token": token})
    draft_id = saved.headers["Location"].rsplit("=", 1)[1]
    create_user(rt, "agent2", PASSWORD, "agent", "另一位经纪人")
    client = login("agent2")
    token = csrf_token(client.get("/deals/new").text)
    answer = client.post("/deals/new", data={**form, "draft_id": draft_id, "csrf_token": token})
    assert answer.status_code == 404
    assert _count(rt, Deal) == 0, "no deal is created with another agent's draft id"
    assert _count(rt, FormDraft) == 1, "and the other agent's draft is untouched"
