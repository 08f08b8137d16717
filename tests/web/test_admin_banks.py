"""Admin 银行: each bank's endpoint, key fingerprint (SM3) and opening limits; editing the limits is validated,
audited and paces the next opening. The dashboard draws each bank's openings per hour over 24 hours."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask.testing import FlaskClient
from gmssl import sm3 as gm_sm3
from sqlalchemy import select, update

from app.db.audit_models import AuditEntry
from app.db.models import Job, VirtualAccount
from app.ops import dashboard
from app.ops.dashboard import SHANGHAI
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import confirmed_deal, load_deal
from tests.integration.test_worker_jobs import FakeBank, _run_due, bank  # noqa: F401

Login = Callable[[str], FlaskClient]


def _post(client: FlaskClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login").text)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)


def _reference_fingerprint(pem: bytes) -> str:
    """SM3 (gmssl, the reference implementation) of the DER bytes inside the PEM."""
    der = base64.b64decode("".join(line for line in pem.decode().splitlines() if not line.startswith("-----")))
    return gm_sm3.sm3_hash(list(der))


def test_admin_sees_each_bank_and_edits_its_opening_limits(
    rt: Runtime, keys_dir: Path, users: dict, login: Login
) -> None:
    admin = login("admin")
    page = admin.get("/admin/banks/").text
    for code, endpoint in rt.banks.items():
        row = re.search(rf'<tr id="bank-{code}">(.*?)</tr>', page, re.S)
        assert row, code
        assert endpoint.name in row.group(1) and endpoint.base_url in row.group(1)
        assert _reference_fingerprint((keys_dir / "banks" / f"{code}.pub.pem").read_bytes()) in row.group(1)
        assert f"{endpoint.open_per_second} / {endpoint.open_per_day}" in row.group(1) and "配置值" in row.group(1)
    configured = rt.banks["ceb"]
    for per_second, per_day, message in (
        ("0", "100", "每秒开户上限须为 1 到 1,000 之间的整数"),
        ("abc", "100", "每秒开户上限须为 1 到 1,000 之间的整数"),
        ("5", "99999999", "每日开户上限须为 1 到 10,000,000 之间的整数"),
        ("50", "10", "每日开户上限不能小于每秒开户上限"),
    ):
        assert message in _post(admin, "/admin/banks/ceb/limits", per_second=per_second, per_day=per_day).text
    assert "未知银行" in _post(admin, "/admin/banks/nobank/limits", per_second="1", per_day="1").text
    page = _post(admin, "/admin/banks/ceb/limits", per_second=" 2 ", per_day="300").text
    assert "开户限速已改为每秒 2 户、每日 300 户" in page
    row = re.search(r'<tr id="bank-ceb">(.*?)</tr>', page, re.S)
    assert row and "2 / 300" in row.group(1) and "用户 测试admin（admin）" in row.group(1)
    assert f"配置值 {configured.open_per_second} / {configured.open_per_day}" in row.group(1)
    with rt.db.uow() as uow:
        entries = list(uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "bank.opening_limits")))
    assert len(entries) == 1, "refused edits leave no audit entry"
    assert entries[0].before == {"per_second": configured.open_per_second, "per_day": configured.open_per_day}
    assert entries[0].after == {"per_second": 2, "per_day": 300} and entries[0].subject == "bank:ceb"
    auditor = login("auditor")
    assert 'id="bank-ceb"' in auditor.get("/admin/banks/").text and "保存" not in auditor.get("/admin/banks/").text


def test_the_opening_job_paces_to_the_admins_limits(
    rt: Runtime,
    users: dict,
    login: Login,
    bank: FakeBank,  # noqa: F811 - the fixture
) -> None:
    first, second = confirmed_deal(rt), confirmed_deal(rt)
    code = load_deal(rt, first).bank_code
    assert "每日 1 户" in _post(login("admin"), f"/admin/banks/{code}/limits", per_second="1", per_day="1").text
    _run_due(rt)
    assert [name for name, _ in bank.calls] == ["open"], "the day's one opening, then the bucket is empty"
    with rt.db.uow() as uow:
        waiting = uow.session.scalars(select(Job).where(Job.kind == "open_virtual_account", Job.status == "pending"))
        job = waiting.one()
    assert job.payload["virtual_account_id"] == load_deal(rt, second).virtual_account.id
    assert "开户限速" in (job.last_error or "") and job.run_after > rt.clock() + timedelta(minutes=1)


def test_raising_the_limits_brings_a_deferred_opening_forward(
    rt: Runtime,
    users: dict,
    login: Login,
    bank: FakeBank,  # noqa: F811 - the fixture
) -> None:
    first, second = confirmed_deal(rt), confirmed_deal(rt)
    code = load_deal(rt, first).bank_code
    admin = login("admin")
    _post(admin, f"/admin/banks/{code}/limits", per_second="1", per_day="1")
    _run_due(rt)  # the day's one opening; the second waits for tomorrow's quota
    with rt.db.uow() as uow:
        job = uow.session.scalars(select(Job).where(Job.kind == "open_virtual_account", Job.status == "pending")).one()
        assert job.run_after > rt.clock() + timedelta(minutes=1)
    page = _post(admin, f"/admin/banks/{code}/limits", per_second="5", per_day="100").text
    assert "开户限速已改为每秒 5 户、每日 100 户；排队中的 1 户开户已按新限速提前" in page
    with rt.db.uow() as uow:
        assert uow.session.get(Job, job.id).run_after == rt.clock()  # type: ignore[union-attr]
    _run_due(rt)  # due now, and the new limit has places free this very second
    assert [name for name, _ in bank.calls] == ["open", "open"]
    assert load_deal(rt, second).virtual_account.request_id == bank.calls[1][1]


def test_dashboard_draws_openings_per_hour_per_bank(rt: Runtime, users: dict, login: Login) -> None:
    deal_ids = [confirmed_deal(rt) for _ in range(4)]
    now = rt.clock().replace(minute=30, second=0, microsecond=0)
    rt.clock = lambda: now  # half past: a minute ago is this hour, two hours ago is the third-last
    opened = [now, now - timedelta(minutes=1), now - timedelta(hours=2), now - timedelta(hours=30)]
    with rt.db.uow() as uow:
        for deal_id, at in zip(deal_ids, opened, strict=True):
            uow.session.execute(update(VirtualAccount).where(VirtualAccount.deal_id == deal_id).values(opened_at=at))
        uow.commit()
    code = load_deal(rt, deal_ids[0]).bank_code
    figures = dashboard.compute(rt)
    assert len(figures.hours) == 24 and figures.hours[-1] == now - timedelta(minutes=30)
    rates = {rate.bank_code: rate.per_hour for rate in figures.openings}
    assert set(rates) >= set(rt.banks), "every bank has a line, even without openings"
    assert rates[code] == [0] * 21 + [1, 0, 2], "the one opened 30 hours ago is outside the window"
    assert all(sum(per_hour) == 0 for other, per_hour in rates.items() if other != code)
    page = login("ops").get("/admin/").text
    chart = re.search(r'id="opening-rate">(.*?)</div>', page, re.S)
    assert chart and "<svg" in chart.group(1) and "polyline" in chart.group(1)
    hour = f"{figures.hours[-1].astimezone(SHANGHAI):%H}时"
    assert f"{hour} {rt.banks[code].name}：2 户" in chart.group(1)
    assert f"{rt.banks[code].name} 近 24 小时 3 户" in chart.group(1)
