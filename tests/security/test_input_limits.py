"""Issue 16, every input has limits: an over-long value in any form or search box of the staff site (intake
fields, reasons of ops actions and freezes, review comments, amendment reasons, reconciliation and alert
resolutions, admin search boxes) is a 400 with a Chinese message before any view runs, never a 500, and
stores nothing; a contract-import file too large or with too many rows is refused whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.db.audit_models import AuditEntry
from app.db.models import Deal
from app.deals.contract_import import import_contracts
from app.domain.contract_import import MAX_FILE_BYTES, MAX_RECORDS, ImportFileError
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import confirmed_deal, load_deal

Login = Callable[[str], FlaskClient]
# over every limit (the longest is 2,000); a value near the 1 MB body limit takes werkzeug ~0.4 s to parse
HUGE = "长" * 5_000

# (who, method, path, the over-long field): one of each kind of text box
BOXES = [
    ("agent", "POST", "/deals/new", "tenant_name"),
    ("ops", "POST", "/deals/{deal}/freeze", "reason"),
    ("ops", "POST", "/deals/{deal}/actions/cancel", "reason"),
    ("ops", "POST", "/deals/{deal}/payee-amendments", "reason"),
    ("reviewer", "POST", "/admin/configs/110000/approve", "comment"),
    ("finance", "POST", "/finance/reconciliation/exceptions/1/resolve", "reason"),
    ("finance", "POST", "/finance/callback-alerts/1/resolve", "resolution"),
    ("ops", "GET", "/admin/deals/", "search"),
]


def _counts(rt: Runtime) -> tuple[int, int]:
    with rt.db.uow() as uow:
        return (
            uow.session.scalar(select(func.count()).select_from(Deal)) or 0,
            uow.session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )


def test_an_over_long_value_is_a_400_in_chinese_and_stores_nothing(login: Login, rt: Runtime) -> None:
    deal_id = confirmed_deal(rt)  # one deal for every box: each refusal must leave it and the audit log alone
    for who, method, path, field in BOXES:
        client = login(who)
        before = _counts(rt), load_deal(rt, deal_id).frozen_reason
        url = path.format(deal=deal_id)
        if method == "GET":
            answer = client.get(url, query_string={field: HUGE})
        else:
            token = csrf_token(client.get(f"/deals/{deal_id}" if who != "reviewer" else "/admin/configs/").text)
            answer = client.post(url, data={"csrf_token": token, field: HUGE})
        assert answer.status_code == 400, (path, answer.text[:300])
        assert "输入内容过长" in answer.text and f"{field} 不能超过" in answer.text, path
        assert (_counts(rt), load_deal(rt, deal_id).frozen_reason) == before, path


def test_a_reason_just_over_its_column_is_refused_not_a_database_error(login: Login, rt: Runtime) -> None:
    deal_id = confirmed_deal(rt)
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    answer = ops.post(f"/deals/{deal_id}/freeze", data={"csrf_token": token, "reason": "冻" * 257})
    assert answer.status_code == 400 and "reason 不能超过 256 个字符" in answer.text
    assert load_deal(rt, deal_id).frozen_reason is None
    fits = ops.post(f"/deals/{deal_id}/freeze", data={"csrf_token": token, "reason": "冻" * 256})
    assert fits.status_code == 302 and load_deal(rt, deal_id).frozen_reason == "冻" * 256


def test_a_contract_file_too_large_or_too_long_is_refused_whole(rt: Runtime, users: dict[str, int]) -> None:
    before = _counts(rt)[0]
    with pytest.raises(ImportFileError, match="文件过大"):
        import_contracts(rt, "agent", "big.csv", b"city_code\n" + b"x" * MAX_FILE_BYTES)
    with pytest.raises(ImportFileError, match="行数过多"):
        import_contracts(rt, "agent", "long.csv", b"city_code\n" + b"110000\n" * (MAX_RECORDS + 1))
    assert _counts(rt)[0] == before
