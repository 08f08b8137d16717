"""Fee rules (app.domain.fees): rates rounded half up to the fen and clamped, fixed fees, pro-rata shares of
several releases, who may pay when, the agreement's figures, and the city checks that refuse what cannot be
charged."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.banks.registry import configured_banks
from app.domain.city_checks import validate_file
from app.domain.fees import FeeRule, agreement_fees, arrival_fees, fee_problem, release_fees, release_share
from app.platform.bootstrap import TEMPLATES_DIR
from tests.unit.test_city_checks import PRODUCTS, WORKFLOWS, _city, _problems, _write, folder

__all__ = ["folder"]

SELLER_RATE = FeeRule("服务费", "seller", "rate", bps=30, min_fen=50_000)  # 0.3 %, at least ¥500


@pytest.mark.parametrize(
    ("rule", "base", "fee"),
    [
        (SELLER_RATE, 123_456_789, 370_370),  # 370,370.367 → 370,370
        (FeeRule("费", "seller", "rate", bps=30), 50, 0),  # 0.15 fen → 0
        (FeeRule("费", "seller", "rate", bps=30), 5_000, 15),  # 15.0
        (FeeRule("费", "seller", "rate", bps=25), 1_000_002, 2_500),  # 2,500.005 → 2,500 (half up: .5 → up only)
        (FeeRule("费", "seller", "rate", bps=25), 1_000_200, 2_501),  # 2,500.5 → 2,501 (half up)
        (SELLER_RATE, 1_000_000, 50_000),  # 3,000 → the minimum
        (FeeRule("费", "seller", "rate", bps=30, max_fen=100_000), 100_000_000, 100_000),  # 300,000 → the maximum
        (FeeRule("费", "seller", "fixed", amount_fen=30_000), 123_456_789, 30_000),
        (FeeRule("费", "seller", "fixed", amount_fen=30_000), 10_000, 10_000),  # never above its base
    ],
)
def test_a_rate_is_rounded_half_up_and_clamped_a_fixed_fee_is_its_amount(rule: FeeRule, base: int, fee: int) -> None:
    assert rule.fee_fen(base) == fee


def test_shares_of_several_releases_add_up_to_the_fee_exactly() -> None:
    base, total = 1_000_001, 50_000
    releases = [900_001, 99_999, 1]  # 90 %, then nearly all the rest, then one fen
    shares, before = [], 0
    for gross in releases:
        shares.append(release_share(total, base, before, gross))
        before += gross
    assert sum(shares) == total
    assert shares[0] == 45_000  # 45,000.0405 → rounded
    assert release_share(total, base, 0, base) == total, "one release pays the whole fee"


def test_release_fees_name_the_rules_charged_on_release_only() -> None:
    rules = (SELLER_RATE, FeeRule("开户费", "buyer", "fixed", amount_fen=20_000, charge_on="arrival"))
    assert release_fees(rules, 10_000_000, 0, 9_000_000) == {0: 45_000}
    assert arrival_fees(rules, 10_000_000) == {1: 20_000}


@pytest.mark.parametrize(
    ("rule", "workflow", "zh"),
    [
        (SELLER_RATE, "resale_escrow", None),
        (FeeRule("费", "landlord", "fixed", amount_fen=1), "rent_custody", None),
        (FeeRule("费", "buyer", "fixed", amount_fen=1, charge_on="arrival", on_failure="keep"), "gov_escrow", None),
        (FeeRule("费", "buyer", "fixed", amount_fen=1), "resale_escrow", "只能由卖方承担"),
        (FeeRule("费", "seller", "fixed", amount_fen=1, charge_on="arrival"), "resale_escrow", "只能由买方承担"),
        (FeeRule("费", "platform", "fixed", amount_fen=1), "resale_escrow", "只能由卖方承担"),
        (FeeRule("费", "owner", "fixed", amount_fen=1), "renovation_escrow", "本业务不支持"),
        (
            FeeRule("费", "seller", "fixed", amount_fen=1, on_failure="keep"),
            "resale_escrow",
            "on_failure 只能为 refund",
        ),
        (FeeRule("费", "seller", "rate", bps=1, min_fen=2, max_fen=1), "resale_escrow", "下限高于上限"),
    ],
)
def test_who_pays_when(rule: FeeRule, workflow: str, zh: str | None) -> None:
    problem = fee_problem(rule, workflow)
    assert (problem is None) if zh is None else (problem is not None and zh in problem[0])


def test_the_agreement_shows_each_fee_in_figures_and_upper_case_and_what_the_buyer_pays_in() -> None:
    rules = (SELLER_RATE, FeeRule("开户费", "buyer", "fixed", amount_fen=20_000, charge_on="arrival"))
    terms = agreement_fees(rules, 123_456_789)
    first, second = terms["items"]
    assert first["payer"] == "卖方" and first["rule"] == "按存管金额的0.30%计收，最低¥500.00"
    assert first["amount"] == {"figure": "¥3,703.70", "upper": "叁仟柒佰零叁元柒角整"}
    assert second["payer"] == "买方" and "存入" in second["when"]
    assert terms["pay_in"]["figure"] == "¥1,234,767.89"
    assert agreement_fees((SELLER_RATE,), 1)["pay_in"] is None


def test_a_seller_fee_on_resale_validates_and_a_fee_the_workflow_cannot_charge_is_refused(folder: Path) -> None:
    _write(
        folder,
        "999901",
        _city(
            resale_escrow={
                "fees": [{"name": "服务费", "payer": "seller", "kind": "rate", "bps": 30, "min_fen": 50_000}]
            }
        ),
    )
    city = validate_file(folder / "999901.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
    assert city.product("resale_escrow").fees == (SELLER_RATE,), "charge_on release, on_failure refund by default"
    fee = {"name": "服务费", "payer": "owner", "kind": "fixed", "amount_fen": 100}
    _write(folder, "999901", _city(renovation_escrow={"fees": [fee]}))
    problems = _problems(folder, "999901")
    assert [p.pointer for p in problems] == ["/products/renovation_escrow/fees/0"]
    assert "本业务不支持资金释放时收取的费用" in problems[0].message
