"""`flask contracts import`: stock rental contracts become rent-custody deals waiting for their accounts,
bad rows are reported (row, field, reason) while the good ones are imported once, and the accounts are
opened no faster than the bank allows."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.banks import settings as bank_settings
from app.db.audit_models import AuditEntry
from app.db.ledger_models import LedgerAccount
from app.db.models import Deal, DealEvent, ImportedContract, Job, VirtualAccount
from app.deals import service as deals
from app.deals.workflow import DealContext, fire
from app.domain import ledger
from app.domain.identity import id_check_char
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from tests.factories import actor, load_deal, open_account
from tests.integration.test_products_in_services import RENT_FORM
from tests.integration.test_worker_jobs import FakeBank

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
COLUMNS = [
    "city_code",
    "lease_contract_no",
    "landlord_name",
    "landlord_id_number",
    "landlord_phone",
    "landlord_bank_card",
    "tenant_name",
    "tenant_id_number",
    "tenant_phone",
    "property_address",
    "lease_starts_on",
    "monthly_rent_fen",
    "lease_months",
    "months_per_installment",
    "deposit_fen",
]
CHINESE_HEADER = [
    "城市代码",
    "租赁合同编号",
    "出租人姓名",
    "出租人身份证号",
    "出租人手机号",
    "出租人收租银行卡号",
    "承租人姓名",
    "承租人身份证号",
    "承租人手机号",
    "房屋坐落",
    "起租日",
    "月租金",
    "租期（月）",
    "付款周期（月）",
    "押金",
]


def _resident_id(n: int, year: int) -> str:
    first17 = f"110105{year}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return first17 + id_check_char(first17)


def _bank_card(n: int) -> str:
    """16 digits passing the Luhn check."""
    body = f"622260{n:09d}"
    total = 0
    for index, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def contract_row(n: int, city_code: str = "110000") -> list[str]:
    """A valid stock contract (row values in COLUMNS order), different for every n."""
    return [
        city_code,
        f"BJZL-2026-{n:06d}",
        "李四",
        _resident_id(n, 1970),
        f"138{n:08d}",
        _bank_card(n),
        "张三",
        _resident_id(n, 1990),
        f"139{n:08d}",
        f"北京市朝阳区建国路{n}号",
        "2026-12-01",
        f"{3000 + n % 5000}.50",
        "12",
        ["1", "3", "6", "12"][n % 4],
        "3000",
    ]


def contract_csv(rows: list[list[str]], header: list[str] = COLUMNS, encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


@pytest.fixture
def agent(rt: Runtime, users: dict[str, int]) -> str:
    rt.clock = lambda: T0
    return "agent"


def _import(app: Flask, path: Path, *extra: str, status: int = 0) -> str:
    result = app.test_cli_runner().invoke(args=["contracts", "import", str(path), "--agent", "agent", *extra])
    assert result.exit_code == status, result.output + repr(result.exception)
    return result.output


def _report(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def _count(rt: Runtime, model: type, *where: object) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _file_with_bad_rows(total: int) -> tuple[list[list[str]], list[list[str]]]:
    """`total` rows of which some are bad in known ways; returns (rows, the expected report lines)."""
    rows = [contract_row(n) for n in range(total)]
    rows[10][7] = rows[10][7][:-1] + ("0" if rows[10][7][-1] != "0" else "1")  # tenant ID: wrong check character
    rows[20][11] = "三千元"  # rent: not an amount
    rows[30][0] = "999999"  # no such city
    rows[40][1] = rows[5][1]  # the contract number of row 7 (rows[5] is on line 7: header + 1-based)
    rows[50] = rows[50][:9]  # cut short: columns missing
    rows[60][13] = "2"  # installment every 2 months: not offered
    rows[60][4] = "12345"  # and a bad phone on the same row
    rows[70][12] = "1"  # a one-month lease paid every 3 months (rows[70] pays every 3 months: 70 % 4 == 2 -> 6)
    return rows, [
        ["行号", "字段", "字段名称", "原因", "租赁合同编号"],
        ["12", "tenant_id_number", "承租人身份证号", "承租人身份证号无效（请检查位数、出生日期和校验位）", rows[10][1]],
        ["22", "monthly_rent_fen", "月租金", "金额格式不正确，请输入数字，最多两位小数", rows[20][1]],
        ["32", "city_code", "城市代码", "城市代码 999999 不可用：城市未开通", rows[30][1]],
        ["42", "lease_contract_no", "租赁合同编号", "租赁合同编号与第 7 行重复", rows[5][1]],
        ["52", "(整行)", "整行", "缺少列：本行 9 列，表头 15 列", ""],
        ["62", "landlord_phone", "出租人手机号", "出租人手机号应为 11 位手机号码，以 13–19 开头", rows[60][1]],
        ["62", "months_per_installment", "付款周期（月）", "请选择付款周期（月）", rows[60][1]],
        ["72", "months_per_installment", "付款周期（月）", "付款周期不能长于租期", rows[70][1]],
    ]


def test_imports_good_rows_once_and_reports_bad_ones(app: Flask, rt: Runtime, agent: str, tmp_path: Path) -> None:
    rows, expected_report = _file_with_bad_rows(2_400)
    path = tmp_path / "stock.csv"
    path.write_bytes(contract_csv(rows))
    output = _import(app, path, status=2)
    good = 2_400 - 7
    assert _report(tmp_path / "stock.errors.csv") == expected_report
    assert f"已导入 {good} 份合同" in output and "有误 7 行" in output
    assert "中国光大银行（ceb）" in output and "户/秒" in output, output
    assert _count(rt, Deal, Deal.state == "awaiting_account", Deal.product == "rent_custody") == good
    assert _count(rt, VirtualAccount, VirtualAccount.status == "requested") == good
    assert _count(rt, Job, Job.kind == "open_virtual_account", Job.status == "pending") == good
    assert _count(rt, DealEvent, DealEvent.event == "imported") == good
    assert _count(rt, LedgerAccount, LedgerAccount.deal_id.is_not(None)) == good
    assert _count(rt, ImportedContract) == good

    again = _import(app, path, "--report", str(tmp_path / "again.csv"), status=2)
    assert f"已导入 0 份合同；此前已导入而跳过 {good} 份" in again
    assert _report(tmp_path / "again.csv") == expected_report
    assert _count(rt, Deal) == good and _count(rt, Job) == good


def test_an_imported_deal_is_the_deal_the_intake_would_make(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path
) -> None:
    path = tmp_path / "one.csv"
    row = contract_row(3)  # pays every 12 months: 3003.50 yuan a month, deposit 3000 yuan
    path.write_bytes(contract_csv([row]))
    _import(app, path)
    with rt.db.uow() as uow:
        deal = uow.session.scalars(select(Deal)).one()
        assert deal.deal_no == "RC1100002026112300001"
        assert (deal.buyer_name, deal.buyer_id_number, deal.buyer_phone) == ("张三", row[7], row[8])
        assert (deal.seller_name, deal.seller_bank_account, deal.certificate_no) == ("李四", row[5], row[1])
        assert deal.buyer_id_bidx, "the blind index is written as the ORM would"
        assert (deal.price_fen, deal.custody_amount_fen) == (3003_50 * 12 + 3000_00, 3003_50 * 12 + 3000_00)
        assert deal.facts["custody_per_month_fen"] == 3003_50 and deal.facts["deposit_custody_fen"] == 3000_00
        assert [(e.event, e.from_state, e.to_state, e.actor) for e in deal.events] == [
            ("create", None, "created", "user:agent"),
            ("imported", "created", "awaiting_account", "user:agent"),
        ]
        assert deal.events[1].detail == {"file": "one.csv", "row": 2, "label": "存量合同导入，开立托管账户"}
        account = deal.virtual_account
        assert account is not None and account.account_name == f"存管-{deal.deal_no}"
        job = uow.session.scalars(select(Job)).one()
        assert job.payload == {"virtual_account_id": account.id}
        assert LedgerRepository(uow.session).balance(ledger.deal_custody(deal.deal_no).code) == 0
        assert check_ledger(uow.session).ok


def _values(row: object, *leave_out: str) -> dict[str, object]:
    """A mapped object's column values (plain text: the ORM decrypts), but those named."""
    return {c.key: getattr(row, c.key) for c in type(row).__table__.columns if c.key not in leave_out}  # type: ignore[attr-defined]


def test_the_import_writes_the_rows_the_single_path_writes(app: Flask, rt: Runtime, agent: str, tmp_path: Path) -> None:
    """The same contract imported, and entered at the intake then moved by the workflow's `imported`
    transition one deal at a time: the same deal, timeline, custody account, account request and job."""
    row = contract_row(3)
    path = tmp_path / "one.csv"
    path.write_bytes(contract_csv([row]))
    _import(app, path)
    form = dict(zip(COLUMNS[1:], row[1:], strict=True))
    single_id = deals.create_deal(rt, actor(rt, "agent"), row[0], "rent_custody", form)
    with rt.db.uow() as uow:
        fire(DealContext(rt, uow.session, uow.session.get(Deal, single_id), "user:agent"), "imported")  # type: ignore[arg-type]
        uow.commit()
    with rt.db.uow() as uow:
        bulk, single = uow.session.scalars(select(Deal).order_by(Deal.id)).all()
        assert single.id == single_id
        varying = ("id", "deal_no", "version", "updated_at")  # the single path updated its deal once more
        assert _values(bulk, *varying) == _values(single, *varying)
        for deal in (bulk, single):
            assert [(e.event, e.from_state, e.to_state, e.actor) for e in deal.events] == [
                ("create", None, "created", "user:agent"),
                ("imported", "created", "awaiting_account", "user:agent"),
            ]
        assert bulk.events[1].detail["label"] == single.events[1].detail["label"]
        assert (
            bulk.events[0].detail["label"] == "新建存管单（存量合同导入）"
            and single.events[0].detail["label"] == "新建存管单"
        )
        varying = ("id", "deal_id", "request_id", "account_name")
        assert _values(bulk.virtual_account, *varying) == _values(single.virtual_account, *varying)
        for deal in (bulk, single):
            assert deal.virtual_account.account_name == f"存管-{deal.deal_no}"  # type: ignore[union-attr]
        bulk_job, single_job = uow.session.scalars(select(Job).order_by(Job.id)).all()
        assert _values(bulk_job, "id", "payload") == _values(single_job, "id", "payload")
        assert bulk_job.payload == {"virtual_account_id": bulk.virtual_account.id}  # type: ignore[union-attr]
        assert single_job.payload == {"virtual_account_id": single.virtual_account.id}  # type: ignore[union-attr]
        accounts = [LedgerRepository(uow.session).account(ledger.deal_custody(d.deal_no).code) for d in (bulk, single)]
        varying = ("id", "code", "name", "deal_id", "created_at")  # ensure_account stamps the wall clock
        assert _values(accounts[0], *varying) == _values(accounts[1], *varying)


def test_a_contract_already_in_custody_at_the_intake_is_reported(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path
) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "rent_custody", RENT_FORM)
    row = contract_row(1)
    row[1] = RENT_FORM["lease_contract_no"]
    path = tmp_path / "taken.csv"
    path.write_bytes(contract_csv([row, contract_row(2)]))
    output = _import(app, path, status=2)
    assert "已导入 1 份合同" in output
    with rt.db.uow() as uow:
        deal_no = uow.session.get(Deal, deal_id).deal_no  # type: ignore[union-attr]
    assert _report(tmp_path / "taken.errors.csv")[1:] == [
        ["2", "lease_contract_no", "租赁合同编号", f"该合同已有租金托管存管单 {deal_no}", row[1]]
    ]
    assert _count(rt, Deal) == 2
    assert _count(rt, Deal, Deal.deal_no == "RC1100002026112300002"), "numbers continue after the intake's"


def test_the_exit_status_says_whether_rows_were_rejected(app: Flask, rt: Runtime, agent: str, tmp_path: Path) -> None:
    """0: all imported; 2: the good rows imported, the bad ones reported; 1: nothing imported."""
    clean = tmp_path / "clean.csv"
    clean.write_bytes(contract_csv([contract_row(n) for n in range(3)]))
    output = _import(app, clean)
    assert "已导入 3 份合同" in output and "有误 0 行" in output and "退出码" not in output
    assert _report(tmp_path / "clean.errors.csv") == [["行号", "字段", "字段名称", "原因", "租赁合同编号"]]

    rows = [contract_row(n) for n in range(10, 14)]
    rows[2][11] = "三千元"  # rent: not an amount
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(contract_csv(rows))
    output = _import(app, mixed, status=2)
    assert "已导入 3 份合同" in output and "有误 1 行" in output
    assert f"部分导入：1 行有误未导入（明细见 {tmp_path / 'mixed.errors.csv'}），其余合同已导入" in output
    assert "退出码 2" in output
    assert [line[:2] for line in _report(tmp_path / "mixed.errors.csv")[1:]] == [["4", "monthly_rent_fen"]]
    assert _count(rt, Deal) == 6 and _count(rt, Job, Job.kind == "open_virtual_account") == 6
    assert _count(rt, ImportedContract, ImportedContract.contract_no == rows[2][1]) == 0

    all_bad = tmp_path / "all-bad.csv"
    all_bad.write_bytes(contract_csv([rows[2]]))
    output = _import(app, all_bad, status=1)
    assert "导入失败：1 行全部有误，未导入任何合同" in output and "退出码 1" in output
    assert _count(rt, Deal) == 6


def test_usage_errors_exit_1_not_2(app: Flask, agent: str, tmp_path: Path) -> None:
    """Exit status 2 is kept for "some rows rejected": click's usage errors (status 2) become 1."""
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["contracts", "import", str(tmp_path / "none.csv"), "--agent", "agent"])
    assert missing.exit_code == 1 and "none.csv" in missing.output
    path = tmp_path / "one.csv"
    path.write_bytes(contract_csv([contract_row(1)]))
    assert runner.invoke(args=["contracts", "import", str(path)]).exit_code == 1  # no --agent
    help_text = runner.invoke(args=["contracts", "import", "--help"])
    assert help_text.exit_code == 0 and "Exit status" in help_text.output and "some rows rejected" in help_text.output


def test_a_gbk_file_with_chinese_headers(app: Flask, rt: Runtime, agent: str, tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(contract_csv([contract_row(n) for n in range(30)], CHINESE_HEADER, encoding="gbk"))
    output = _import(app, path)
    assert "GBK" in output and "已导入 30 份合同" in output
    with rt.db.uow() as uow:
        addresses = set(uow.session.scalars(select(Deal.property_address)))
        assert addresses == {f"北京市朝阳区建国路{n}号" for n in range(30)}


def test_a_wrong_header_imports_nothing(app: Flask, rt: Runtime, agent: str, tmp_path: Path) -> None:
    path = tmp_path / "bad-header.csv"
    path.write_bytes(contract_csv([contract_row(1)[1:]], [*COLUMNS[1:-1], "备注"]))
    result = app.test_cli_runner().invoke(args=["contracts", "import", str(path), "--agent", "agent"])
    assert result.exit_code == 1
    assert "无法识别的列：备注" in result.output and "缺少必需的列：city_code" in result.output
    assert _count(rt, Deal) == 0


def test_only_an_agent_can_own_imported_deals(app: Flask, rt: Runtime, agent: str, tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_bytes(contract_csv([contract_row(1)]))
    result = app.test_cli_runner().invoke(args=["contracts", "import", str(path), "--agent", "ops"])
    assert result.exit_code == 1 and "--agent" in result.output
    assert _count(rt, Deal) == 0


@pytest.fixture
def bank(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> FakeBank:
    fake = FakeBank()
    monkeypatch.setattr(rt, "gateway", lambda bank_code: fake)
    return fake


def _run_due(rt: Runtime, at: datetime) -> int:
    rt.clock = lambda: at
    ran = 0
    while run_one(rt, "test-worker"):
        ran += 1
    return ran


def test_imported_accounts_open_at_the_banks_pace_and_never_faster(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path, bank: FakeBank
) -> None:
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=3, open_per_day=20)
    path = tmp_path / "stock.csv"
    path.write_bytes(contract_csv([contract_row(n) for n in range(25)]))
    output = _import(app, path)
    assert "按银行限速 3 户/秒（窗口可达 2.9 户/秒）、20 户/日" in output and "跨 2 个自然日" in output, output
    opened_per_second = []
    for tick in range(12):  # the clock stands still while due jobs run, then moves on a second (+ the margin)
        _run_due(rt, T0 + timedelta(seconds=tick * 1.005))
        opened_per_second.append(len(bank.calls) - sum(opened_per_second))
    # the jobs are spread at the pace the window achieves (a little under three a second): one is due at once,
    # then at most three a second until the day's 20 are used; none past the daily quota
    assert opened_per_second[0] == 1 and max(opened_per_second) == 3, opened_per_second
    assert sum(opened_per_second[:9]) == 20 and opened_per_second[9:] == [0, 0, 0], opened_per_second
    _run_due(rt, T0 + timedelta(hours=14))  # midnight in Shanghai: a new day's quota
    _run_due(rt, T0 + timedelta(hours=14, seconds=1.005))
    _run_due(rt, T0 + timedelta(hours=14, seconds=2.01))
    assert len(bank.calls) == 25
    assert len({request_id for _, request_id in bank.calls}) == 25, "each account asked for once"


def test_openings_stay_within_the_limit_when_jobs_are_all_due_at_once(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path, bank: FakeBank
) -> None:
    """The schedule only spreads the jobs; the window of sends is the guard: workers running late (every job
    due) still open no more than the per-second limit."""
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=4, open_per_day=1000)
    path = tmp_path / "stock.csv"
    path.write_bytes(contract_csv([contract_row(n) for n in range(30)]))
    _import(app, path)
    late = T0 + timedelta(minutes=10)
    counts = []
    for tick in range(10):
        before = len(bank.calls)
        _run_due(rt, late + timedelta(seconds=tick * 1.005))  # a second after the answers, plus the margin
        counts.append(len(bank.calls) - before)
    assert max(counts) <= 4 and sum(counts) == 30, counts


def _opening_jobs(rt: Runtime) -> list[Job]:
    with rt.db.uow() as uow:
        query = select(Job).where(Job.kind == "open_virtual_account", Job.status == "pending")
        return list(uow.session.scalars(query.order_by(Job.run_after, Job.id)))


def test_raised_limits_pull_the_queued_openings_forward(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path, bank: FakeBank
) -> None:
    """An import queued under a low limit waits days; raising the limit reschedules the queue at the new
    pace at once (nothing left waiting for the old slots), and the openings then go at the new rate, no
    faster."""
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=1, open_per_day=5)
    path = tmp_path / "stock.csv"
    path.write_bytes(contract_csv([contract_row(n) for n in range(25)]))
    _import(app, path)
    assert _run_due(rt, T0) == 1 and len(bank.calls) == 1  # the one due job opens under the old limit
    assert max(job.run_after for job in _opening_jobs(rt)) > T0 + timedelta(days=3), "queued over 5 days"

    raised_at = T0 + timedelta(seconds=1)
    rt.clock = lambda: raised_at
    saved = bank_settings.set_opening_limits(rt, "user:admin", "ceb", "4", "1000")
    # all 24 waiting move: the old schedule put even the queue's head a little over a second after the first
    assert saved == bank_settings.SavedLimits(4, 1000, rescheduled=24)
    waiting = _opening_jobs(rt)
    gaps = {(later.run_after - earlier.run_after).total_seconds() for earlier, later in itertools.pairwise(waiting)}
    assert waiting[0].run_after == raised_at and len(gaps) == 1, "evenly spread from the change on"
    assert 0.25 <= gaps.pop() <= 0.26, "at the pace the window achieves under 4/s: the limit less its margin"
    assert [job.payload["virtual_account_id"] for job in waiting] == sorted(
        job.payload["virtual_account_id"] for job in waiting
    ), "the queue keeps its order"
    with rt.db.uow() as uow:
        entry = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "bank.opening_limits")).one()
        assert entry.detail == {"rescheduled_openings": 24}

    opened_per_second = []
    for tick in range(10):  # the clock stands still while due jobs run, then moves on a second (+ the margin)
        _run_due(rt, raised_at + timedelta(seconds=tick * 1.005))
        opened_per_second.append(len(bank.calls) - 1 - sum(opened_per_second))
    assert max(opened_per_second) == 4 and sum(opened_per_second[:7]) == 24, "four a second, never more"
    assert len({request_id for _, request_id in bank.calls}) == 25 and not _opening_jobs(rt)


def test_limits_lowered_or_saved_again_postpone_nothing(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path, bank: FakeBank
) -> None:
    """Rescheduling only pulls jobs forward; a lower limit is kept by the window of sends, the workers running
    the jobs as they come due and deferring what is too fast."""
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=4, open_per_day=1000)
    path = tmp_path / "stock.csv"
    path.write_bytes(contract_csv([contract_row(n) for n in range(12)]))
    _import(app, path)
    before = [job.run_after for job in _opening_jobs(rt)]
    assert bank_settings.set_opening_limits(rt, "user:admin", "ceb", "4", "1000").rescheduled == 0
    assert bank_settings.set_opening_limits(rt, "user:admin", "ceb", "2", "1000").rescheduled == 0
    assert [job.run_after for job in _opening_jobs(rt)] == before
    late = T0 + timedelta(minutes=10)
    counts = []
    for tick in range(8):
        before_tick = len(bank.calls)
        _run_due(rt, late + timedelta(seconds=tick * 1.005))
        counts.append(len(bank.calls) - before_tick)
    assert max(counts) <= 2 and sum(counts) == 12, counts


def test_an_imported_deal_goes_on_like_any_other_once_its_account_opens(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path, bank: FakeBank, keys_dir: Path
) -> None:
    path = tmp_path / "one.csv"
    path.write_bytes(contract_csv([contract_row(1)]))
    _import(app, path)
    assert _run_due(rt, T0) == 1 and [name for name, _ in bank.calls] == ["open"]
    with rt.db.uow() as uow:
        deal_id = uow.session.scalars(select(Deal.id)).one()
    open_account(app.test_client(), keys_dir, rt, deal_id, "6226000000000001")
    deal = load_deal(rt, deal_id)
    assert deal.state == "awaiting_move_in"
    assert deal.virtual_account is not None and deal.virtual_account.account_no == "6226000000000001"


def test_the_openings_progress_shows_opened_of_imported_what_waits_and_when_the_last_goes(
    app: Flask, rt: Runtime, agent: str, tmp_path: Path, bank: FakeBank, login: Callable[[str], FlaskClient]
) -> None:
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=2, open_per_day=1000)
    path = tmp_path / "stock.csv"
    path.write_bytes(contract_csv([contract_row(n) for n in range(5)]))
    _import(app, path)
    assert _run_due(rt, T0) == 1, "the first opening is due at once"
    with rt.db.uow() as uow:  # the bank's account_opened for it came
        first = VirtualAccount.request_id == bank.calls[0][1]
        uow.session.execute(update(VirtualAccount).where(first).values(status="opened", opened_at=T0))
        uow.commit()
    output = app.test_cli_runner().invoke(args=["contracts", "openings"]).output
    # four wait; the fake bank answers at once, so the window achieves 2 per 1.005 s, but the last minute saw one
    # account opened: at that pace the last of the four goes three minutes on
    assert "中国光大银行（ceb）：已开户 1/5（20.0%），排队 4 户，" in output, output
    assert "近一分钟 0.0 户/秒（窗口可达 2.0 户/秒）" in output, output
    assert "预计 2026-11-23 10:03:00 开完（北京时间）" in output, output
    page = login("admin").get("/admin/banks/").text
    row = re.search(r'<tr id="opening-ceb">(.*?)</tr>', page, re.S)
    assert row and "1 / 5（20.0%）" in row.group(1) and "2026-11-23 10:03:00" in row.group(1), page
