"""One registry of banks (the files in bank_configs/, read by app.banks.registry): the city checks, the runtime's
bank endpoints, the bank simulator and the reconciliation layouts all know the same banks and read each bank's
facts (name, account-number format, opening limits, statement layout) from it rather than from a copy; every bank
a shipped city config names is among them."""

from __future__ import annotations

import ast
import codecs
import itertools
import json
import random
from dataclasses import astuple, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import app
from app.banks.registry import configured_banks
from app.domain.banks import luhn_digit
from app.domain.city_checks import validate_file
from app.domain.identity import luhn_ok
from app.domain.problems import CityConfigInvalid
from app.domain.statements import ACCOUNT_NO as STATEMENT_ACCOUNT_NO
from app.domain.statements import BANK_TIMEZONE, parse_statement
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, load_workflows
from app.platform.config import DEFAULT_BANKS, Config
from app.products.loader import repository_products
from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.statements import StatementLine, render_statement
from app.tools.vopr.fake_bank import FakeBank, Faults

WORKFLOWS = load_workflows()
SHIPPED = sorted(CITY_CONFIGS_DIR.glob("*.json"))
BANKS = configured_banks()
APP = Path(app.__file__).resolve().parent

PRODUCTS = repository_products()


def _banks_named(path: Path) -> dict[str, list[str]]:
    """Bank code -> the products of the resolved (inheriting) config at `path` that name it."""
    city = validate_file(path, WORKFLOWS, TEMPLATES_DIR, BANKS, PRODUCTS)
    named: dict[str, list[str]] = {}
    for product_name, product in city.products.items():
        for code in product.banks:
            named.setdefault(code, []).append(product_name)
    return named


def test_the_shipped_configs_are_there() -> None:
    stems = {path.stem for path in SHIPPED}
    assert {"_virtual", "330100", "370100", "370200"} <= stems


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_every_bank_a_shipped_city_names_is_known_served_and_reconcilable(path: Path, tmp_path: Path) -> None:
    runtime_banks = Config(instance_path=tmp_path, database_url="sqlite://", keys_dir=tmp_path, secret_key="x").banks
    named = _banks_named(path)
    assert named, f"{path.name} names no bank"
    for code, products in named.items():
        where = f"{path.name} {products}: {code}"
        assert code in BANKS, where
        assert code in runtime_banks, f"{where} has no bank endpoint in the runtime"
        assert code in SIMULATED_BANKS, f"{where} is not served by the bank simulator"
        assert BANKS[code].statement.columns, f"{where} has no statement layout for reconciliation"


def test_the_cities_that_named_unknown_banks_resolve_to_their_banks() -> None:
    assert _banks_named(CITY_CONFIGS_DIR / "330100.json") == {code: ["gov_escrow"] for code in ("icbc", "abc", "ccb")}
    assert _banks_named(CITY_CONFIGS_DIR / "370100.json")["ccb"] == ["provident_fund_rent"]
    assert _banks_named(CITY_CONFIGS_DIR / "370200.json")["boc"] == ["resale_escrow", "guarantee_release"]


def test_runtime_simulator_and_reconciliation_read_the_registry_not_a_copy() -> None:
    assert list(DEFAULT_BANKS) == list(BANKS) == list(SIMULATED_BANKS)
    for code, bank in BANKS.items():
        limits = bank.opening_limits
        assert DEFAULT_BANKS[code] == (bank.name, limits.per_second, limits.per_day), code
        simulated = SIMULATED_BANKS[code]
        assert simulated.bank is bank and simulated.code == code and simulated.name == bank.name, code
        assert simulated.account_format is bank.account_format, code
        assert simulated.limits is limits, code
        assert simulated.statement is bank.statement, code
        assert bank.statement.bank_name == bank.name, code


def test_runtime_paces_to_the_registry_limits_unless_the_deployment_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for code in BANKS:
        for suffix in ("OPEN_PER_SECOND", "OPEN_PER_DAY"):
            monkeypatch.delenv(f"CUNGUAN_BANK_{code.upper()}_{suffix}", raising=False)
    monkeypatch.setenv("CUNGUAN_BANK_PAB_OPEN_PER_SECOND", "2")
    banks = Config(instance_path=tmp_path, database_url="sqlite://", keys_dir=tmp_path, secret_key="x").banks
    for code, bank in BANKS.items():
        limits = bank.opening_limits
        expected = (2 if code == "pab" else limits.per_second, limits.per_day)
        assert (banks[code].name, banks[code].open_per_second, banks[code].open_per_day) == (bank.name, *expected)
    pairs = {(bank.opening_limits.per_second, bank.opening_limits.per_day) for bank in BANKS.values()}
    assert len(pairs) == len(BANKS), "each bank has its own contract"


def test_account_formats() -> None:
    assert luhn_digit("7992739871") == "3"  # the textbook example
    icbc = BANKS["icbc"].account_format
    assert icbc.account_no(42) == "0200290100000000425" and icbc.length == 19
    assert luhn_ok("0200290100000000425")  # the platform's own Luhn check agrees
    assert icbc.matches("0200290100000000425") and not icbc.matches("0200290100000000426")
    ceb = BANKS["ceb"].account_format
    assert ceb.account_no(7) == "6226000000000007" and ceb.matches("6226000000000007")
    assert not ceb.matches("62260000000000070") and not ceb.matches("7226000000000007")
    with pytest.raises(ValueError):
        ceb.account_no(10**12)


@pytest.mark.parametrize("code", list(BANKS))
def test_every_account_number_the_simulated_and_the_fake_bank_assign_has_the_registrys_format(code: str) -> None:
    numbers = {SIMULATED_BANKS[code].new_account_no() for _ in range(300)}
    fake = FakeBank(code, random.Random(1), lambda: datetime(2026, 11, 20, tzinfo=UTC), Faults.none())
    for n in range(3):
        fake.open_virtual_account(f"VA-{n}", "测试", "http://127.0.0.1:9/callback")
    numbers |= {account.account_no for account in fake.accounts.values()}
    for number in numbers:
        owners = [other for other, bank in BANKS.items() if bank.account_format.matches(number)]
        assert owners == [code], number
        assert STATEMENT_ACCOUNT_NO.match(number), "the platform's statement parser accepts it"


DAY = date(2026, 11, 20)


def _booked(hour: int, minute: int, second: int) -> float:
    return datetime(2026, 11, 20, hour, minute, second, tzinfo=BANK_TIMEZONE).timestamp()


@pytest.mark.parametrize("code", list(BANKS))
def test_statements_the_simulated_bank_writes_round_trip_through_the_platforms_parser(code: str) -> None:
    bank = BANKS[code]
    account_no = bank.account_format.account_no(123)
    written = [
        StatementLine(
            f"{code.upper()}I1", _booked(0, 0, 0), "credit", 123456789, account_no, "孙八", "6222020200112233445", ""
        ),
        StatementLine(
            f"{code.upper()}I2", _booked(9, 5, 7), "credit", 5, account_no, "张三", "6222020200112233445", ""
        ),
        StatementLine(
            f"{code.upper()}P1", _booked(23, 59, 59), "debit", 100, account_no, "李四", "62220202009988", "PO-1"
        ),
    ]
    statement = render_statement(SIMULATED_BANKS[code].statement, reversed(written), 123456694)
    contents = [statement.content]
    if codecs.lookup(bank.statement.encoding).name == "utf-8":
        contents.append(codecs.BOM_UTF8 + statement.content)  # the platform also accepts a byte-order mark
    for content in contents:
        parsed = parse_statement(bank.statement, content, DAY)
        assert (parsed.problems, parsed.data_rows, parsed.closing_balance_fen) == ((), 3, 123456694)
        assert [
            (
                line.bank_reference,
                line.booked_at.timestamp(),
                line.direction,
                line.amount_fen,
                line.account_no,
                line.counterparty_name,
                line.counterparty_account,
                line.payout_id or "",
            )
            for line in parsed.lines
        ] == [astuple(line) for line in written]
    header = statement.content.decode(bank.statement.encoding).splitlines()[0]
    assert header == ",".join(bank.statement.headers)


def test_a_layout_that_contradicts_itself_is_refused() -> None:
    ceb = BANKS["ceb"].statement
    with pytest.raises(ValueError, match="direction"):
        replace(ceb, directions={})
    with pytest.raises(ValueError, match="未知字段 remark"):
        replace(ceb, columns=(*ceb.columns, ("备注", "remark")))
    with pytest.raises(ValueError, match="date_format"):
        replace(ceb, time_format="")


def test_statement_layouts_differ_between_banks() -> None:
    headers = [bank.statement.headers for bank in BANKS.values()]
    assert len(set(headers)) == len(headers)
    formats = {(bank.account_format.prefix, bank.account_format.length) for bank in BANKS.values()}
    assert len(formats) == len(BANKS)


def _restated_facts() -> dict[object, str]:
    """Values that say which bank they belong to: its name, its limit errors' codes and messages, a long
    account prefix, its pair of opening limits."""
    facts: dict[object, str] = {}
    for code, bank in BANKS.items():
        limits = bank.opening_limits
        for error in (limits.per_second_error, limits.per_day_error):
            facts[error.code] = facts[error.message] = code
        facts[bank.name] = code
        if len(bank.account_format.prefix) >= 4:
            facts[bank.account_format.prefix] = code
        facts[(limits.per_second, limits.per_day)] = code
    return facts


def test_no_module_keeps_its_own_copy_of_a_banks_facts() -> None:
    """Only the bank files state a bank's facts; every module reads them from the registry."""
    facts, found = _restated_facts(), []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[object] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                values.append(node.value)
            elements = node.args if isinstance(node, ast.Call) else getattr(node, "elts", None)
            if isinstance(elements, list):  # neighbouring whole numbers: a (per second, per day) pair
                numbers = [e.value if isinstance(e, ast.Constant) and type(e.value) is int else None for e in elements]
                values += list(itertools.pairwise(numbers))
            found += [
                f"{path.relative_to(APP.parent)}:{node.lineno} {value!r} ({facts[value]})"
                for value in values
                if value in facts
            ]
    assert found == []


def test_a_city_naming_a_bank_outside_the_registry_is_refused(tmp_path: Path) -> None:
    virtual = (CITY_CONFIGS_DIR / "_virtual.json").read_text(encoding="utf-8")
    (tmp_path / "_virtual.json").write_text(virtual, encoding="utf-8")
    city = {
        "extends": "_virtual",
        "admin_code": "370200",
        "name": "青岛市",
        "status": "draft",
        "products": {"resale_escrow": {"banks": ["boc", "cmb"]}},
    }
    (tmp_path / "370200.json").write_text(json.dumps(city, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CityConfigInvalid) as caught:
        validate_file(tmp_path / "370200.json", WORKFLOWS, TEMPLATES_DIR, BANKS, PRODUCTS)
    bank_problems = [problem for problem in caught.value.problems if "银行" in problem.message]
    assert [(problem.pointer, problem.message) for problem in bank_problems] == [
        ("/products/resale_escrow/banks/1", "未知银行 cmb")
    ]
