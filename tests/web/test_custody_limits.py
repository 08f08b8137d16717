"""The city's custody limits (products.*.custody.min_fen / max_fen) hold wherever a deal is made: the intake
form over HTTP and the contract import, each at its boundary (one fen outside refused in Chinese naming the
limit in yuan, the limit itself accepted); and changing the limit in the config changes the outcome."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.db.models import Deal
from app.deals import service as deals
from app.deals.sample_forms import sample_form
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.factories import INTENT_FORM, RESALE_FORM, actor, load_deal, patch_city
from tests.integration.test_contract_import import _import, _report, agent, contract_csv, contract_row
from tests.web.test_intake_forms import _post

__all__ = ["agent"]  # the contract import's fixture, used here as it is there

Login = Callable[[str], FlaskClient]

RENOVATION_FORM = {
    "owner_name": "张三",
    "owner_id_number": "11010519491231002X",
    "owner_phone": "13912345678",
    "property_address": "上海市浦东新区世纪大道1号",
    "contractor_name": "上海美家装饰工程有限公司",
    "contractor_uscc": "91350100M000100Y43",
    "contractor_bank_account": "6222600260001072444",
    "contract_no": "ZX-2026-001",
    "contract_amount": "100000",
}


def _deals(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(Deal)) or 0


@pytest.mark.parametrize(
    ("choice", "form", "outside", "limit", "message"),
    [
        # 上海 renovation escrow: the virtual city's minimum of ¥10,000.00
        (
            "310000:renovation_escrow",
            {**RENOVATION_FORM, "custody_amount": ""},
            "9999.99",
            "10000",
            "不得低于 ¥10,000.00",
        ),
        # 上海 intent deposit: the virtual city's maximum of ¥50,000.00
        ("310000:intent_deposit", {**INTENT_FORM, "deposit_amount": ""}, "50000.01", "50000.00", "不得高于 ¥50,000.00"),
    ],
    ids=["minimum", "maximum"],
)
def test_intake_over_http_refuses_one_fen_outside_the_limit_and_accepts_the_limit(
    login: Login, rt: Runtime, choice: str, form: dict[str, str], outside: str, limit: str, message: str
) -> None:
    city_code, product = choice.split(":")
    field = "custody_amount" if product == "renovation_escrow" else "deposit_amount"
    client = login("agent")
    base = {**form, "city_code": city_code, "product": product}
    refused = _post(client, {**base, field: outside})
    assert refused.status_code == 422
    assert f"托管金额{message}" in refused.text and _deals(rt) == 0
    accepted = _post(client, {**base, field: limit})
    assert accepted.status_code == 302 and _deals(rt) == 1


@pytest.mark.parametrize(
    ("custody", "code"),
    [({"min_fen": 123_456_790}, "CUSTODY_BELOW_MINIMUM"), ({"max_fen": 123_456_788}, "CUSTODY_ABOVE_MAXIMUM")],
    ids=["min_fen", "max_fen"],
)
def test_the_limit_is_read_from_the_config(
    rt: Runtime, users: dict[str, int], custody: dict[str, int], code: str
) -> None:
    """The same form (¥1,234,567.89 in custody) is created, then refused once the city's config sets a limit
    one fen beyond it: the intake reads the key, not a constant."""
    deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", dict(RESALE_FORM))
    patch_city(rt, "110000", {"products": {"resale_escrow": {"custody": custody}}})
    with pytest.raises(ValidationError) as caught:
        deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", dict(RESALE_FORM))
    assert caught.value.code == code and caught.value.details == {"custody_amount": caught.value.message}
    assert _deals(rt) == 1


def _monthly(n: int, monthly_rent: str) -> list[str]:
    """Stock contract n paying `monthly_rent` yuan every month, deposit ¥3,000: ¥3,000 + one month in custody."""
    row = contract_row(n)
    row[11], row[13] = monthly_rent, "1"
    return row


def test_the_contract_import_applies_the_same_limits(app: Flask, rt: Runtime, agent: str, tmp_path: Path) -> None:
    patch_city(rt, "110000", {"products": {"rent_custody": {"custody": {"min_fen": 600_000, "max_fen": 700_000}}}})
    rows = [_monthly(1, "2999.99"), _monthly(2, "3000.00"), _monthly(3, "4000.00"), _monthly(4, "4000.01")]
    path = tmp_path / "stock.csv"
    path.write_bytes(contract_csv(rows))
    output = _import(app, path, status=2)
    assert "已导入 2 份合同" in output and "有误 2 行" in output, output
    report = _report(tmp_path / "stock.errors.csv")
    problems = {(line[0], line[1], line[3]) for line in report[1:]}
    assert problems == {
        ("2", "monthly_rent_fen", "托管金额不得低于 ¥6,000.00"),
        ("5", "monthly_rent_fen", "托管金额不得高于 ¥7,000.00"),
    }, report
    assert _deals(rt) == 2


@pytest.mark.parametrize(
    ("city_code", "product", "custody", "expected_fen"),
    [
        ("110000", "resale_escrow", {"min_fen": 500_000_000}, 500_000_000),  # above the sample's price too
        ("310000", "intent_deposit", {"max_fen": 1_000_000}, 1_000_000),
    ],
    ids=["min_fen", "max_fen"],
)
def test_the_simulations_sample_form_keeps_inside_the_citys_limits(
    rt: Runtime, users: dict[str, int], city_code: str, product: str, custody: dict[str, int], expected_fen: int
) -> None:
    """A city whose limits the hand-written sample falls outside can still be simulated (and so published)."""
    patch_city(rt, city_code, {"products": {product: {"custody": custody}}})
    form = sample_form(rt.cities.get(city_code).product(product), rt.products.get(product))
    deal_id = deals.create_deal(rt, actor(rt, "agent"), city_code, product, form)
    deal = load_deal(rt, deal_id)
    assert deal.custody_amount_fen == expected_fen and deal.price_fen >= expected_fen
