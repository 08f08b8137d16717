"""One registry of banks (app.domain.banks): the city checks, the runtime's bank endpoints, the bank simulator and
the reconciliation layouts all know the same banks, and every bank a shipped city config names is among them."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from app.domain.banks import KNOWN_BANKS
from app.domain.city_checks import validate_file
from app.domain.problems import CityConfigInvalid
from app.domain.statements import STATEMENT_LAYOUTS
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, load_workflows
from app.platform.config import DEFAULT_BANKS, Config
from app.tools.banksim.banks import SIMULATED_BANKS

WORKFLOWS = load_workflows()
SHIPPED = sorted(CITY_CONFIGS_DIR.glob("*.json"))


def _banks_named(path: Path) -> dict[str, list[str]]:
    """Bank code -> the products of the resolved (inheriting) config at `path` that name it."""
    city = validate_file(path, WORKFLOWS, TEMPLATES_DIR)
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
        assert code in KNOWN_BANKS, where
        assert code in runtime_banks, f"{where} has no bank endpoint in the runtime"
        assert code in SIMULATED_BANKS, f"{where} is not served by the bank simulator"
        assert code in STATEMENT_LAYOUTS, f"{where} has no statement layout for reconciliation"


def test_the_cities_that_named_unknown_banks_resolve_to_their_banks() -> None:
    assert _banks_named(CITY_CONFIGS_DIR / "330100.json") == {code: ["gov_escrow"] for code in ("icbc", "abc", "ccb")}
    assert _banks_named(CITY_CONFIGS_DIR / "370100.json")["ccb"] == ["provident_fund_rent"]
    assert _banks_named(CITY_CONFIGS_DIR / "370200.json")["boc"] == ["resale_escrow", "guarantee_release"]


def test_runtime_simulator_and_reconciliation_know_exactly_the_registry() -> None:
    assert list(DEFAULT_BANKS) == list(KNOWN_BANKS) == list(SIMULATED_BANKS)
    assert set(STATEMENT_LAYOUTS) == set(KNOWN_BANKS)
    for code, bank in KNOWN_BANKS.items():
        assert DEFAULT_BANKS[code][0] == SIMULATED_BANKS[code].name == STATEMENT_LAYOUTS[code].bank_name == bank.name


def test_runtime_paces_to_the_limits_the_simulated_bank_enforces() -> None:
    for code, (_, per_second, per_day) in DEFAULT_BANKS.items():
        limits = SIMULATED_BANKS[code].limits
        assert (per_second, per_day) == (limits.per_second, limits.per_day), code
    assert len({(bank.limits.per_second, bank.limits.per_day) for bank in SIMULATED_BANKS.values()}) == len(
        SIMULATED_BANKS
    ), "each bank has its own contract"


@pytest.mark.parametrize("code", sorted(KNOWN_BANKS))
def test_the_platform_layout_describes_what_the_simulated_bank_writes(code: str) -> None:
    written, read = SIMULATED_BANKS[code].statement, STATEMENT_LAYOUTS[code]
    assert written.columns == read.columns and written.amount_unit == read.amount_unit
    assert written.summaries == read.summaries
    if any(field == "direction" for _, field in read.columns):
        assert {text: direction for direction, text in written.directions.items()} == read.directions
    if any(field == "datetime" for _, field in read.columns):
        assert written.datetime_format == read.datetime_format
    else:
        assert (written.date_format, written.time_format) == (read.date_format, read.time_format)
    plain = {"utf-8-sig": "utf-8"}  # the platform also accepts a byte-order mark
    assert (
        plain.get(codecs.lookup(read.encoding).name, codecs.lookup(read.encoding).name)
        == codecs.lookup(written.encoding).name
    )


def test_statement_layouts_differ_between_banks() -> None:
    headers = [layout.headers for layout in STATEMENT_LAYOUTS.values()]
    assert len(set(headers)) == len(headers)
    formats = {(bank.account_format.prefix, bank.account_format.length) for bank in SIMULATED_BANKS.values()}
    assert len(formats) == len(SIMULATED_BANKS)


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
        validate_file(tmp_path / "370200.json", WORKFLOWS, TEMPLATES_DIR)
    bank_problems = [problem for problem in caught.value.problems if "银行" in problem.message]
    assert [(problem.pointer, problem.message) for problem in bank_problems] == [
        ("/products/resale_escrow/banks/1", "未知银行 cmb")
    ]
