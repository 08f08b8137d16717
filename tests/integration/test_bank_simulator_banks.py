"""Several simulated banks: account formats, opening limits with each bank's error codes, designated payers,
callbacks signed with each bank's own key, daily statements in each bank's layout (signed, SM3 digest, GBK for
ICBC, GB18030 for ABC) that the platform's reconciliation parser reads, keys from `flask keys init`, the CLI's
bank choices, and the upgrade of an old database."""

from __future__ import annotations

import base64
import csv
import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, pem
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from app import create_app
from app.banks.protocol import BANK_PREFIX, BadSignature, verify_request
from app.crypto import sm2_verify, sm3
from app.crypto.keys import public_key_pem_from_private
from app.domain.banks import luhn_digit
from app.domain.statements import parse_statement
from app.platform.config import Config
from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.cli import bank_sim
from app.tools.banksim.context import load_keys
from app.tools.banksim.store import SCHEMA_VERSION, Store
from tests.factories import SIMULATED_BANK_KEYS
from tests.integration.simulator_support import (
    NOTIFY_URL,
    PAYER_ACCOUNT,
    PAYER_NAME,
    SHANGHAI,
    FakeClock,
    InProcessSimulator,
    make_simulator,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "app" / "schemas"
PAYEE = {"payee_name": "李四", "payee_account": "6222020200998877665", "notify_url": NOTIFY_URL}
ALL_BANKS = sorted(SIMULATED_BANKS)
NEW_BANKS = ["abc", "ccb", "boc"]  # named by the shipped configs of 杭州, 济南 and 青岛


@pytest.fixture
def sim(tmp_path: Path, keys_dir: Path) -> InProcessSimulator:
    return make_simulator(tmp_path / "bank_sim.db", keys_dir)


def _notifications(sim: InProcessSimulator, bank_code: str, notification_type: str) -> list[dict[str, object]]:
    return [d["body"] for d in sim.deliveries(bank_code) if d["type"] == notification_type]


@pytest.mark.parametrize(
    ("bank_code", "prefix", "length"),
    [
        ("ceb", "6226", 16),
        ("icbc", "02002901", 19),
        ("abc", "19", 17),
        ("ccb", "3705016", 20),
        ("pab", "15", 14),
        ("boc", "2", 12),
    ],
)
def test_each_bank_opens_accounts_in_its_own_format(
    sim: InProcessSimulator, bank_code: str, prefix: str, length: int
) -> None:
    numbers = []
    for n in range(5):
        numbers.append(sim.open_account(bank_code, f"VA-{bank_code}-{n}"))
        sim.clock.advance(1.01)  # within every bank's per-second limit (中国银行: 3)
    for number in numbers:
        assert number.startswith(prefix) and len(number) == length and number.isdigit()
        if SIMULATED_BANKS[bank_code].account_format.luhn:
            assert luhn_digit(number[:-1]) == number[-1]
    assert len(set(numbers)) == 5
    opened = _notifications(sim, bank_code, "account_opened")
    assert sorted(body["account_no"] for body in opened) == sorted(numbers)
    other_banks = [code for code in SIMULATED_BANKS if code != bank_code]
    assert all(sim.state(code)["accounts"] == [] for code in other_banks)


def test_only_icbc_and_ccb_numbers_carry_a_luhn_check_digit() -> None:
    assert luhn_digit("7992739871") == "3"  # the textbook example
    luhn = {code: bank.account_format.luhn for code, bank in SIMULATED_BANKS.items()}
    assert luhn == {"ceb": False, "icbc": True, "abc": False, "ccb": True, "pab": False, "boc": False, "cmbc": True}


def test_platform_config_knows_every_bank_at_the_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for code in SIMULATED_BANKS:
        monkeypatch.delenv(f"CUNGUAN_BANK_{code.upper()}_URL", raising=False)
    monkeypatch.setenv("CUNGUAN_BANK_PAB_URL", "http://bank.example/pab-api")
    config = Config(instance_path=tmp_path, database_url="sqlite://", keys_dir=tmp_path, secret_key="x")
    assert {code: bank.base_url for code, bank in config.banks.items()} == {
        "ceb": "http://127.0.0.1:5001/ceb",
        "icbc": "http://127.0.0.1:5001/icbc",
        "abc": "http://127.0.0.1:5001/abc",
        "ccb": "http://127.0.0.1:5001/ccb",
        "pab": "http://bank.example/pab-api",
        "boc": "http://127.0.0.1:5001/boc",
        "cmbc": "http://127.0.0.1:5001/cmbc",
    }
    assert {code: bank.name for code, bank in config.banks.items()} == {
        code: bank.name for code, bank in SIMULATED_BANKS.items()
    }
    assert config.banks["boc"].name == "中国银行"


@pytest.mark.parametrize(
    ("bank_code", "per_second_code", "per_day_code"),
    [
        ("ceb", "CEB1029", "CEB1030"),
        ("icbc", "ICBC-E4291", "ICBC-E4292"),
        ("abc", "EAB0429", "EAB0430"),
        ("ccb", "YBLA0429", "YBLA0430"),
        ("pab", "PAB_OPEN_RATE", "PAB_OPEN_QUOTA"),
        ("boc", "BOC_E_TPS", "BOC_E_DAILY"),
    ],
)
def test_opening_limits_answer_the_banks_own_codes(
    sim: InProcessSimulator, bank_code: str, per_second_code: str, per_day_code: str
) -> None:
    limits = sim.client.put(f"/sim/limits/{bank_code}", json={"per_second": 2, "per_day": 3}).get_json()
    assert limits == {"bank": bank_code, "per_second": 2, "per_day": 3, "overridden": True}
    assert [sim.request_account(bank_code, f"VA-{n}").status_code for n in (1, 2)] == [202, 202]
    too_fast = sim.request_account(bank_code, "VA-3")
    assert (too_fast.status_code, too_fast.get_json()["code"]) == (429, per_second_code)
    assert too_fast.headers["Retry-After"] == "1"
    assert too_fast.get_json()["details"] == {"bank": bank_code, "limit": "per_second", "max": 2, "retry_after_s": 1}
    assert sim.request_account(bank_code, "VA-1").status_code == 202  # a repeat is not a new request
    sim.clock.advance(1.01)
    assert sim.request_account(bank_code, "VA-3").status_code == 202
    sim.clock.advance(1.01)
    over_quota = sim.request_account(bank_code, "VA-4")
    assert (over_quota.status_code, over_quota.get_json()["code"]) == (429, per_day_code)
    seconds_to_midnight = datetime(2026, 11, 21, tzinfo=SHANGHAI).timestamp() - sim.clock.now
    assert int(over_quota.headers["Retry-After"]) == pytest.approx(seconds_to_midnight, abs=1)
    assert over_quota.get_json()["message"] == SIMULATED_BANKS[bank_code].limits.per_day_error.message
    assert "VA-4" not in [account["request_id"] for account in sim.state(bank_code)["accounts"]]
    sim.clock.advance(seconds_to_midnight)  # a new day at the bank (Asia/Shanghai)
    assert sim.request_account(bank_code, "VA-4").status_code == 202


def test_default_limits_are_the_banks_data_and_can_be_reset(sim: InProcessSimulator) -> None:
    defaults = {
        bank["bank"]: (bank["per_second"], bank["per_day"]) for bank in sim.client.get("/sim/limits").json["banks"]
    }
    assert defaults == {
        "ceb": (20, 20000),
        "icbc": (10, 5000),
        "abc": (8, 3000),
        "ccb": (15, 10000),
        "pab": (5, 2000),
        "boc": (3, 1000),
        "cmbc": (6, 4000),
    }
    sim.client.put("/sim/limits/pab", json={"per_second": 0, "per_day": 0})
    assert sim.request_account("pab", "VA-blocked").get_json()["code"] == "PAB_OPEN_QUOTA"
    reset = sim.client.delete("/sim/limits/pab").get_json()
    assert reset == {"bank": "pab", "per_second": 5, "per_day": 2000, "overridden": False}
    assert sim.request_account("pab", "VA-blocked").status_code == 202
    refused = sim.client.put("/sim/limits/pab", json={"per_second": -1, "per_day": 5})
    assert (refused.status_code, refused.get_json()["code"]) == (400, "MALFORMED")
    assert sim.client.put("/sim/limits/xyz", json={"per_second": 1, "per_day": 1}).status_code == 404


@pytest.mark.parametrize("bank_code", ALL_BANKS)
def test_designated_payer_flag_on_arrivals(sim: InProcessSimulator, bank_code: str) -> None:
    designated = {"payer_name": "王五", "payer_account": "6222020200556677889"}
    account_no = sim.open_account(bank_code, "VA-designated", designated_payer=designated)
    plain_no = sim.open_account(bank_code, "VA-plain")
    matched = sim.pay_in(bank_code, account_no, 10000, payer_name=" 王五 ", payer_account="6222020200556677889")
    other = sim.pay_in(bank_code, account_no, 2500)  # 张三: not the designated payer, still credited
    plain = sim.pay_in(bank_code, plain_no, 100)
    assert other["balance_fen"] == 12500
    arrivals = {body["bank_reference"]: body for body in _notifications(sim, bank_code, "funds_arrived")}
    assert arrivals[matched["bank_reference"]]["designated_payer_matched"] is True
    unmatched = arrivals[other["bank_reference"]]
    assert (unmatched["designated_payer_matched"], unmatched["payer_name"], unmatched["payer_account"]) == (
        False,
        PAYER_NAME,
        PAYER_ACCOUNT,
    )
    assert "designated_payer_matched" not in arrivals[plain["bank_reference"]]
    validator = Draft202012Validator(json.loads((SCHEMAS / "bank-notification.schema.json").read_text("utf-8")))
    assert all(validator.is_valid(body) for body in arrivals.values())
    (account,) = [a for a in sim.state(bank_code)["accounts"] if a["request_id"] == "VA-designated"]
    assert (account["designated_payer_name"], account["designated_payer_account"]) == ("王五", "6222020200556677889")
    page = sim.client.get("/").get_data(as_text=True)
    assert "6222020200556677889" not in page and "**** 7889" in page and page.count("非指定付款人") == 1
    changed = sim.request_account(bank_code, "VA-designated", designated_payer=designated | {"payer_name": "赵六"})
    assert (changed.status_code, changed.get_json()["code"]) == (409, "CONFLICT")
    incomplete = sim.request_account(bank_code, "VA-bad", designated_payer={"payer_name": "王五"})
    assert (incomplete.status_code, incomplete.get_json()["code"]) == (400, "MALFORMED")


def _book_a_day(sim: InProcessSimulator, bank_code: str) -> dict[str, str]:
    """On 2026-11-20 (Shanghai): two arrivals, a succeeded and a failed payout; arrivals the day before and after."""
    account_no = sim.open_account(bank_code, "VA-statement")
    sim.clock.now = datetime(2026, 11, 19, 23, 59, 59, tzinfo=SHANGHAI).timestamp()
    sim.pay_in(bank_code, account_no, 1)
    sim.clock.now = datetime(2026, 11, 20, 0, 0, 0, tzinfo=SHANGHAI).timestamp()
    first = sim.pay_in(bank_code, account_no, 123456789, payer_name="孙八")
    sim.clock.now = datetime(2026, 11, 20, 9, 5, 7, tzinfo=SHANGHAI).timestamp()
    second = sim.pay_in(bank_code, account_no, 5)
    sim.clock.now = datetime(2026, 11, 20, 15, 30, 0, tzinfo=SHANGHAI).timestamp()
    assert (
        sim.call("POST", f"/{bank_code}/v1/payouts", PAYEE | _payout("PO-ok", account_no, 100000000)).status_code == 202
    )
    assert (
        sim.call("POST", f"/{bank_code}/v1/payouts", PAYEE | _payout("PO-no", account_no, 999999999)).status_code == 202
    )
    sim.parts.operations.run_due()
    paid = {p["payout_id"]: p for p in sim.state(bank_code)["payouts"]}
    assert (paid["PO-ok"]["status"], paid["PO-no"]["status"]) == ("succeeded", "failed")
    sim.clock.now = datetime(2026, 11, 21, 0, 0, 0, tzinfo=SHANGHAI).timestamp()
    sim.pay_in(bank_code, account_no, 7)
    return {
        "account_no": account_no,
        "first": first["bank_reference"],
        "second": second["bank_reference"],
        "payout": paid["PO-ok"]["bank_reference"],
    }


def _payout(payout_id: str, account_no: str, amount_fen: int) -> dict[str, object]:
    return {"payout_id": payout_id, "account_no": account_no, "amount_fen": amount_fen}


EXPECTED_STATEMENTS = {
    "ceb": (
        "utf-8",
        "交易日期,交易时间,交易流水号,虚户账号,借贷标志,交易金额,对方户名,对方账号,业务编号,摘要",
        [
            "2026-11-20,00:00:00,{first},{account_no},贷,1234567.89,孙八,6222020200112233445,,来账",
            "2026-11-20,09:05:07,{second},{account_no},贷,0.05,张三,6222020200112233445,,来账",
            "2026-11-20,15:30:00,{payout},{account_no},借,1000000.00,李四,6222020200998877665,PO-ok,付款",
        ],
    ),
    "icbc": (
        "gbk",
        "账号,交易时间,借方发生额,贷方发生额,对方单位名称,对方账号,凭证号,客户流水号,用途",
        [
            "{account_no},20261120 00:00:00,,1234567.89,孙八,6222020200112233445,{first},,转账收入",
            "{account_no},20261120 09:05:07,,0.05,张三,6222020200112233445,{second},,转账收入",
            "{account_no},20261120 15:30:00,1000000.00,,李四,6222020200998877665,{payout},PO-ok,代发付款",
        ],
    ),
    "abc": (
        "gb18030",
        "交易日期,交易时间,账号,收入金额,支出金额,对方户名,对方账号,交易流水号,商户流水号,交易用途",
        [
            "20261120,000000,{account_no},1234567.89,,孙八,6222020200112233445,{first},,转账存入",
            "20261120,090507,{account_no},0.05,,张三,6222020200112233445,{second},,转账存入",
            "20261120,153000,{account_no},,1000000.00,李四,6222020200998877665,{payout},PO-ok,代付支出",
        ],
    ),
    "ccb": (
        "utf-8",
        "记账时间,账户账号,交易流水号,借贷方向,交易金额,对方户名,对方账号,企业流水号,摘要",
        [
            "2026/11/20 00:00:00,{account_no},{first},贷方,1234567.89,孙八,6222020200112233445,,跨行转入",
            "2026/11/20 09:05:07,{account_no},{second},贷方,0.05,张三,6222020200112233445,,跨行转入",
            "2026/11/20 15:30:00,{account_no},{payout},借方,1000000.00,李四,6222020200998877665,PO-ok,对外支付",
        ],
    ),
    "boc": (
        "utf-8",
        "Account No.,Transaction Date,Transaction Time,Debit Amount,Credit Amount,Payer/Payee Name,"
        "Payer/Payee Account,Transaction Reference,Customer Reference,Remark",
        [
            "{account_no},20/11/2026,00:00:00,,123456789,孙八,6222020200112233445,{first},,汇入",
            "{account_no},20/11/2026,09:05:07,,5,张三,6222020200112233445,{second},,汇入",
            "{account_no},20/11/2026,15:30:00,100000000,,李四,6222020200998877665,{payout},PO-ok,汇出",
        ],
    ),
    "pab": (
        "utf-8",
        "TranDate,TranTime,HostSeqNo,SubAcctNo,DcFlag,TranAmt,OppAcctNo,OppAcctName,ThirdSeqNo,Remark",
        [
            "20261120,000000,{first},{account_no},C,123456789,6222020200112233445,孙八,,来账",
            "20261120,090507,{second},{account_no},C,5,6222020200112233445,张三,,来账",
            "20261120,153000,{payout},{account_no},D,100000000,6222020200998877665,李四,PO-ok,出金",
        ],
    ),
}


@pytest.mark.parametrize("bank_code", sorted(EXPECTED_STATEMENTS))
def test_statement_lists_the_days_credits_and_debits_in_the_banks_layout(
    sim: InProcessSimulator, keys_dir: Path, bank_code: str
) -> None:
    booked = _book_a_day(sim, bank_code)
    answer = sim.call("GET", f"/{bank_code}/v1/statements/2026-11-20")
    assert answer.status_code == 200, answer.data[:300]
    encoding, header, rows = EXPECTED_STATEMENTS[bank_code]
    assert answer.headers["Content-Type"] == f"text/csv; charset={encoding.upper()}"
    content = answer.data
    assert answer.headers["X-Bank-Statement-SM3"] == sm3(content).hex()
    assert answer.headers["X-Bank-Statement-Lines"] == "3"
    assert answer.headers["X-Bank-Statement-Complete"] == "true"
    if encoding != "utf-8":
        with pytest.raises(UnicodeDecodeError):
            content.decode("utf-8")
    text = content.decode(encoding)
    layout = SIMULATED_BANKS[bank_code].statement
    closing = "23456795" if layout.amount_unit == "fen" else "234567.95"  # 0.01 the day before, then this day
    closing_row = f"期末余额,{closing}" + "," * (len(layout.columns) - 2)
    assert text.splitlines() == [header, *(row.format(**booked) for row in rows), closing_row]
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == [name for name, _ in layout.columns] and len(parsed) == 5
    own_key = (keys_dir / "banks" / f"{bank_code}.pub.pem").read_bytes()
    assert verify_request(BANK_PREFIX, own_key, answer.headers, content).nonce == answer.headers["X-Bank-Nonce"]
    other_key = (keys_dir / "banks" / f"{'pab' if bank_code != 'pab' else 'ceb'}.pub.pem").read_bytes()
    with pytest.raises(BadSignature):
        verify_request(BANK_PREFIX, other_key, answer.headers, content)
    with pytest.raises(BadSignature):
        verify_request(BANK_PREFIX, own_key, answer.headers, content.replace(b"1", b"2", 1))
    _assert_the_platform_reads(bank_code, content, booked)


def _assert_the_platform_reads(bank_code: str, content: bytes, booked: dict[str, str]) -> None:
    """The reconciliation parser, given only the platform's layout for this bank, reads every line back."""
    parsed = parse_statement(SIMULATED_BANKS[bank_code].statement, content, date(2026, 11, 20))
    assert (parsed.problems, parsed.data_rows, parsed.closing_balance_fen) == ((), 3, 23456795)
    assert [
        (line.bank_reference, line.direction, line.amount_fen, line.counterparty_name, line.payout_id)
        for line in parsed.lines
    ] == [
        (booked["first"], "credit", 123456789, "孙八", None),
        (booked["second"], "credit", 5, "张三", None),
        (booked["payout"], "debit", 100000000, "李四", "PO-ok"),
    ]
    assert {line.account_no for line in parsed.lines} == {booked["account_no"]}
    assert [line.booked_at for line in parsed.lines] == [
        datetime(2026, 11, 20, hour, minute, second, tzinfo=SHANGHAI)
        for hour, minute, second in ((0, 0, 0), (9, 5, 7), (15, 30, 0))
    ]


def test_statement_of_a_quiet_day_today_and_bad_dates(sim: InProcessSimulator) -> None:
    quiet = sim.call("GET", "/pab/v1/statements/2026-11-19")
    assert quiet.status_code == 200 and quiet.headers["X-Bank-Statement-Lines"] == "0"
    columns = SIMULATED_BANKS["pab"].statement.columns
    closing_row = "期末余额,0" + "," * (len(columns) - 2)  # PAB writes fen
    assert quiet.data.decode().splitlines() == [",".join(name for name, _ in columns), closing_row]
    assert sim.call("GET", "/pab/v1/statements/2026-11-20").headers["X-Bank-Statement-Complete"] == "false"
    for bad in ("20261120", "2026-13-01", "2026-11-20x"):
        refused = sim.call("GET", f"/pab/v1/statements/{bad}")
        assert (refused.status_code, refused.get_json()["code"]) == (400, "MALFORMED"), bad
    tomorrow = sim.call("GET", "/pab/v1/statements/2026-11-21")
    assert (tomorrow.status_code, tomorrow.get_json()["code"]) == (404, "STATEMENT_NOT_READY")
    unsigned = sim.client.get("/pab/v1/statements/2026-11-19")
    assert (unsigned.status_code, unsigned.get_json()["code"]) == (401, "BAD_SIGNATURE")


def test_gbk_statement_replaces_characters_outside_gbk(sim: InProcessSimulator) -> None:
    account_no = sim.open_account("icbc", "VA-rare")
    sim.pay_in("icbc", account_no, 100, payer_name="王𠀾")  # U+2003E is not in GBK
    text = sim.call("GET", "/icbc/v1/statements/2026-11-20").data.decode("gbk")
    assert ",王?," in text


def test_gb18030_statement_keeps_characters_outside_gbk(sim: InProcessSimulator) -> None:
    account_no = sim.open_account("abc", "VA-rare")
    sim.pay_in("abc", account_no, 100, payer_name="王𠀾")  # U+2003E: GB18030 has it, GBK does not
    content = sim.call("GET", "/abc/v1/statements/2026-11-20").data
    assert ",王𠀾," in content.decode("gb18030")
    (line,) = parse_statement(SIMULATED_BANKS["abc"].statement, content, date(2026, 11, 20)).lines
    assert (line.counterparty_name, line.amount_fen) == ("王𠀾", 100)


@dataclass
class SignedCallback:
    headers: dict[str, str]
    body: bytes


class _RecordingHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.callbacks.append(SignedCallback(dict(self.headers.items()), body))  # type: ignore[attr-defined]
        payload = b'{"code":"OK"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@contextmanager
def _recording_receiver() -> Iterator[tuple[str, list[SignedCallback]]]:
    """A notify_url that keeps each callback's headers and exact bytes (to check the bank's signature)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.callbacks = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notify", server.callbacks  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("bank_code", NEW_BANKS)
def test_new_bank_opens_takes_money_and_signs_its_callbacks_with_its_own_key(
    sim: InProcessSimulator, keys_dir: Path, bank_code: str
) -> None:
    with _recording_receiver() as (notify_url, callbacks):
        account_no = sim.open_account(bank_code, f"VA-{bank_code}", notify_url=notify_url)
        paid = sim.pay_in(bank_code, account_no, 88_000_00)
        while sim.parts.worker.sender.deliver_next():
            pass
    assert paid["balance_fen"] == 88_000_00 and paid["bank_reference"].startswith(f"{bank_code.upper()}I")
    bodies = [json.loads(callback.body) for callback in callbacks]
    assert [body["type"] for body in bodies] == ["account_opened", "funds_arrived"]
    assert (bodies[0]["account_no"], bodies[1]["account_no"], bodies[1]["amount_fen"]) == (
        account_no,
        account_no,
        88_000_00,
    )
    own_key = (keys_dir / "banks" / f"{bank_code}.pub.pem").read_bytes()
    validator = Draft202012Validator(json.loads((SCHEMAS / "bank-notification.schema.json").read_text("utf-8")))
    for callback, body in zip(callbacks, bodies, strict=True):
        assert validator.is_valid(body), body
        assert verify_request(BANK_PREFIX, own_key, callback.headers, callback.body).nonce
        for other in (code for code in SIMULATED_BANKS if code != bank_code):
            with pytest.raises(BadSignature):
                verify_request(
                    BANK_PREFIX, (keys_dir / "banks" / f"{other}.pub.pem").read_bytes(), callback.headers, callback.body
                )


def test_keys_init_creates_no_bank_key_the_simulator_keeps_its_own_and_the_platform_imports_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, bank_keys = tmp_path / "keys", tmp_path / "bank-sim-keys"
    config = Config(
        instance_path=tmp_path / "instance",
        database_url=f"sqlite:///{tmp_path / 'platform.db'}",
        keys_dir=keys,
        secret_key="x",
        testing=True,
    )
    cli = create_app(config).test_cli_runner()
    done = cli.invoke(args=["keys", "init"])
    assert done.exit_code == 0, done.output
    own = ["platform.key.pem", "root.key.pem"]  # the platform's seal key and its CA's root key
    assert sorted(path.name for path in keys.rglob("*.key.pem")) == own, "no bank private key"
    assert list((keys / "banks").iterdir()) == []
    platform_key = str(keys / "platform.pub.pem")
    made = CliRunner().invoke(bank_sim, ["keys", "--keys-dir", str(bank_keys), "--platform-key", platform_key])
    assert made.exit_code == 0, made.output
    imported = cli.invoke(args=["keys", "import-bank", "--from-dir", str(bank_keys)])
    assert imported.exit_code == 0, imported.output
    for code in SIMULATED_BANKS:
        assert (keys / "banks" / f"{code}.cert.pem").read_bytes() == (bank_keys / f"{code}.cert.pem").read_bytes()
        assert (keys / "banks" / f"{code}.pub.pem").read_bytes() == public_key_pem_from_private(
            (bank_keys / f"{code}.key.pem").read_bytes()
        )
        assert not (keys / "banks" / f"{code}.key.pem").exists()
    assert set(load_keys(bank_keys).bank_private_keys) == set(SIMULATED_BANKS)
    assert sorted(path.name for path in keys.rglob("*.key.pem")) == own
    one = cli.invoke(args=["keys", "import-bank", "boc", "--cert", str(keys / "platform.pub.pem")])
    assert one.exit_code == 1 and "无法解析银行证书" in one.output, "a public key is no certificate"
    SIMULATED_BANK_KEYS[keys] = bank_keys
    make_simulator(tmp_path / "bank_sim.db", keys).open_account("boc", "VA-keys")


def test_cli_bank_choices_are_every_simulated_bank(sim: InProcessSimulator, tmp_path: Path) -> None:
    for name in ("pay", "faults", "limits"):
        (option,) = [param for param in bank_sim.commands[name].params if param.name == "bank_code"]
        assert sorted(option.type.choices) == ALL_BANKS, name  # type: ignore[attr-defined]
    db = str(tmp_path / "bank_sim.db")
    dropped = CliRunner().invoke(bank_sim, ["faults", "--bank", "boc", "--drop", "1", "--seed", "3", "--db", db])
    assert dropped.exit_code == 0 and "中国银行 boc 故障注入（种子 3）：丢弃通知 100%" in dropped.output, dropped.output
    assert sim.client.get("/sim/faults/boc").get_json()["drop"] == 1
    limited = CliRunner().invoke(bank_sim, ["limits", "--bank", "ccb", "--per-second", "2", "--db", db])
    assert limited.exit_code == 0 and "中国建设银行 ccb 开户限额：每秒 2 笔，每日 10000 笔（已调整）" in limited.output
    unknown = CliRunner().invoke(bank_sim, ["faults", "--bank", "hsbc", "--db", db])
    assert unknown.exit_code == 2 and "hsbc" in unknown.output


V1_SCHEMA = """
CREATE TABLE nonces (nonce TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE accounts (bank_code TEXT NOT NULL, request_id TEXT NOT NULL, account_name TEXT NOT NULL,
    notify_url TEXT NOT NULL, status TEXT NOT NULL, account_no TEXT UNIQUE, balance_fen INTEGER NOT NULL DEFAULT 0,
    requested_at REAL NOT NULL, due_at REAL NOT NULL, opened_at REAL, PRIMARY KEY (bank_code, request_id));
CREATE TABLE payouts (bank_code TEXT NOT NULL, payout_id TEXT NOT NULL, account_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL, payee_name TEXT NOT NULL, payee_account TEXT NOT NULL, notify_url TEXT NOT NULL,
    bank_reference TEXT NOT NULL, status TEXT NOT NULL, failure_reason TEXT, created_at REAL NOT NULL,
    due_at REAL NOT NULL, finished_at REAL, PRIMARY KEY (bank_code, payout_id));
CREATE TABLE arrivals (bank_code TEXT NOT NULL, bank_reference TEXT NOT NULL, account_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL, payer_name TEXT NOT NULL, payer_account TEXT NOT NULL, arrived_at REAL NOT NULL,
    PRIMARY KEY (bank_code, bank_reference));
CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, bank_code TEXT NOT NULL,
    notification_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, notify_url TEXT NOT NULL, body BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered')), attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, created_at REAL NOT NULL, next_attempt_at REAL NOT NULL, delivered_at REAL);
CREATE INDEX deliveries_pending ON deliveries (status, notify_url, id);
INSERT INTO accounts VALUES ('ceb', 'VA-old', '存管-旧', 'http://x/n', 'open', '6226000000000001', 500, 1, 1, 2);
INSERT INTO payouts VALUES ('ceb', 'PO-old', '6226000000000001', 100, '李四', '6222020200998877665', 'http://x/n',
    'CEBP1', 'succeeded', NULL, 3, 3, 4);
INSERT INTO deliveries (bank_code, notification_id, type, notify_url, body, status, attempts, created_at,
    next_attempt_at) VALUES ('ceb', 'n-old', 'payout_result', 'http://x/n', X'7B7D', 'pending', 2, 4, 9);
"""


def test_a_database_from_before_the_banks_issue_is_upgraded(tmp_path: Path, keys_dir: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(V1_SCHEMA)
    store = Store(path)
    with store.transaction() as tx:
        (account,) = tx.accounts("ceb")
        (payout,) = tx.payouts("ceb")
        (delivery,) = tx.deliveries("ceb")
        assert tx.next_delivery(10.0) == delivery
    assert (account.account_no, account.designated_payer_name) == ("6226000000000001", None)
    assert payout.submissions == 1
    assert (delivery.notification_id, delivery.copy, delivery.ordered, delivery.attempts) == ("n-old", 0, 1, 2)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    sim = make_simulator(path, keys_dir, FakeClock())  # and the simulator runs on it
    assert sim.pay_in("ceb", "6226000000000001", 50)["balance_fen"] == 550


@pytest.mark.parametrize("bank_code", ["icbc", "boc"])
def test_a_bank_signs_a_digest_with_its_own_seal_as_the_api_document_says(
    sim: InProcessSimulator, keys_dir: Path, bank_code: str
) -> None:
    digest = sm3(b"the agreement's signed byte ranges")
    payload = {"request_id": "SIG-1", "document_sm3": digest.hex(), "purpose": "存管银行确认 CG-1"}
    answer = sim.call("POST", f"/{bank_code}/v1/signatures", payload)
    assert answer.status_code == 200, answer.get_json()
    operation = json.loads((SCHEMAS / "bank-api.openapi.json").read_text("utf-8"))["paths"]["/v1/signatures"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert Draft202012Validator(request_schema).is_valid(payload)
    answer_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert Draft202012Validator(answer_schema).is_valid(answer.get_json()), answer.get_json()
    signed = cms.ContentInfo.load(base64.b64decode(answer.get_json()["cms"]))["content"]
    (signer,) = signed["signer_infos"]
    carried = {choice.chosen.dump() for choice in signed["certificates"]}  # a DER SET OF: in no given order
    imported = (keys_dir / "banks" / f"{bank_code}.cert.pem").read_bytes()
    platform_root = (keys_dir / "ca" / "root.cert.pem").read_bytes()
    assert carried == {pem.unarmor(imported)[2], pem.unarmor(platform_root)[2]}, "the seal imported, and its root"
    attributes = {attribute["type"].native: attribute["values"][0].native for attribute in signer["signed_attrs"]}
    assert attributes["message_digest"] == digest
    signed_bytes = b"\x31" + signer["signed_attrs"].dump()[1:]  # the DER SET OF, not its [0] tag (RFC 5652 §5.4)
    public_key = (keys_dir / "banks" / f"{bank_code}.pub.pem").read_bytes()
    assert sm2_verify(public_key, signed_bytes, signer["signature"].native)
    other = (keys_dir / "banks" / "ceb.pub.pem").read_bytes()
    assert not sm2_verify(other, signed_bytes, signer["signature"].native), "each bank its own key"

    bad = sim.call("POST", f"/{bank_code}/v1/signatures", payload | {"document_sm3": "not-a-digest"})
    assert (bad.status_code, bad.get_json()["code"]) == (400, "MALFORMED")
    unsigned = sim.client.post(f"/{bank_code}/v1/signatures", json=payload)
    assert (unsigned.status_code, unsigned.get_json()["code"]) == (401, "BAD_SIGNATURE")


def _bank_operation(path: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / "bank-api.openapi.json").read_text("utf-8"))["paths"][path]["post"]


def _answers_as_documented(operation: dict[str, Any], answer: Any) -> bool:
    schema = operation["responses"][str(answer.status_code)]["content"]["application/json"]["schema"]
    if "$ref" in schema:  # the shared Error schema
        return isinstance(answer.get_json().get("code"), str) and isinstance(answer.get_json().get("message"), str)
    return Draft202012Validator(schema).is_valid(answer.get_json())


def test_a_bank_freezes_and_unfreezes_with_receipts_signed_by_its_own_key_as_the_api_document_says(
    sim: InProcessSimulator, keys_dir: Path
) -> None:
    freezes, unfreezes = _bank_operation("/v1/freezes"), _bank_operation("/v1/unfreezes")
    payload = {"request_id": "FZ-CG-1", "account_name": "冻结-CG-1", "amount_fen": 5_000_000}
    request_schema = freezes["requestBody"]["content"]["application/json"]["schema"]
    assert Draft202012Validator(request_schema).is_valid(payload)
    frozen = sim.call("POST", "/boc/v1/freezes", payload)
    assert frozen.status_code == 200 and _answers_as_documented(freezes, frozen), frozen.get_json()
    public_key = (keys_dir / "banks" / "boc.pub.pem").read_bytes()
    verify_request(BANK_PREFIX, public_key, frozen.headers, frozen.get_data())  # the bank's own key
    other_bank = (keys_dir / "banks" / "ceb.pub.pem").read_bytes()
    with pytest.raises(BadSignature):
        verify_request(BANK_PREFIX, other_bank, frozen.headers, frozen.get_data())
    account_no = frozen.get_json()["account_no"]
    (account,) = [a for a in sim.state("boc")["accounts"] if a["account_no"] == account_no]
    assert account["balance_fen"] == 5_000_000, "the frozen money is held in the account the receipt names"
    assert sim.call("POST", "/boc/v1/freezes", payload).get_json()["account_no"] == account_no, "a repeat: same"
    other = sim.call("POST", "/boc/v1/freezes", payload | {"amount_fen": 1})
    assert (other.status_code, other.get_json()["code"]) == (409, "CONFLICT") and _answers_as_documented(freezes, other)

    release = {"request_id": "UF-CG-1", "account_no": account_no, "amount_fen": 5_000_000}
    unfrozen = sim.call("POST", "/boc/v1/unfreezes", release)
    assert unfrozen.status_code == 200 and _answers_as_documented(unfreezes, unfrozen), unfrozen.get_json()
    verify_request(BANK_PREFIX, public_key, unfrozen.headers, unfrozen.get_data())
    too_much = sim.call("POST", "/boc/v1/unfreezes", release | {"amount_fen": 5_000_001})
    assert (too_much.status_code, too_much.get_json()["code"]) == (422, "UNFREEZE_REFUSED")
    assert _answers_as_documented(unfreezes, too_much)

    assert sim.client.put("/sim/faults/boc", json={"freeze_refusal": 1.0}).status_code == 200
    refused = sim.call("POST", "/boc/v1/freezes", payload | {"request_id": "FZ-CG-2"})
    assert (refused.status_code, refused.get_json()["code"]) == (422, "FREEZE_REFUSED")
    assert _answers_as_documented(freezes, refused)
    unsigned = sim.client.post("/boc/v1/freezes", json=payload)
    assert (unsigned.status_code, unsigned.get_json()["code"]) == (401, "BAD_SIGNATURE")
