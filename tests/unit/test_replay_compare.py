"""The replay's pure parts (issue 18): synthetic accounts of a real one's masked shape, and the verdict with its
differences in yuan (tests/integration/test_city_replay.py replays real deals)."""

from __future__ import annotations

from app.domain.identity import is_valid_bank_card, luhn_ok
from app.domain.pii_mask import mask_card
from app.sandbox.replay_compare import Outcome, Payment, amount_differences, payee_differences, verdict
from app.sandbox.replay_deal import shaped

SAMPLE = "6222600260001072444"


def test_a_synthetic_account_masks_as_the_real_one_and_checks() -> None:
    for real in ("6222020200112233445", "6226620012345678", "62170000000000000019"):
        made = shaped(real, SAMPLE, (16, 19) if len(real) <= 19 else (12, 30))
        assert made != real and mask_card(made) == mask_card(real) and len(made) == len(real) and luhn_ok(made)
    assert is_valid_bank_card(shaped("6222020200112233445", SAMPLE))
    assert shaped(None, SAMPLE) == SAMPLE and shaped("12", SAMPLE) == SAMPLE


def _outcome(path: tuple[tuple[str, str, str], ...], fees: int, *payments: Payment) -> Outcome:
    return Outcome(path, ("已入金", "已结清"), path[-1][2], "已结清", fees, payments)


PATH = (("title_transferred", "funded", "releasing"), ("payout_succeeded", "releasing", "closed"))


def test_the_verdict_is_the_path_first_then_amounts_then_payees() -> None:
    paid = Payment("release", 123_456_789, 0, "卖方", "**** 3445")
    real = _outcome(PATH, 0, paid)
    assert verdict(real, _outcome(PATH, 0, paid)) == ("相同", [], [])

    with_fee = _outcome(PATH, 370_370, Payment("release", 123_086_419, 370_370, "卖方", "**** 3445"))
    found, amounts, payees = verdict(real, with_fee)
    assert found == "金额不同" and payees == []
    assert amounts == [
        "收费：¥0.00 → ¥3,703.70（+¥3,703.70）",
        "第 1 笔放款：¥1,234,567.89 → ¥1,230,864.19（-¥3,703.70）",
    ]

    to_buyer = _outcome(PATH, 0, Payment("release", 123_456_789, 0, "买方", "**** 5678"))
    assert verdict(real, to_buyer)[0] == "收款方不同"
    assert payee_differences(real, to_buyer) == ["第 1 笔放款：卖方 **** 3445 → 买方 **** 5678"]

    stopped = _outcome(PATH[:1], 0)
    assert verdict(real, stopped)[0] == "路径不同"
    assert amount_differences(real, stopped) == ["第 1 笔放款：¥1,234,567.89 → 无（-¥1,234,567.89）"]
