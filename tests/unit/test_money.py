"""Money: parsing yuan text into fen, ¥ display and contract uppercase (大写) with its zero rules."""

from __future__ import annotations

import pytest

from app.domain.money import MAX_AMOUNT_FEN, format_yuan, parse_yuan, to_chinese_upper
from app.platform.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1,234.56", 123456),
        ("1234.5", 123450),
        ("12", 1200),
        ("0", 0),
        ("0.05", 5),
        (" ¥1,234 ", 123400),
        ("￥ 88.8", 8880),
        ("1，234，567.89", 123456789),
        ("9999999999999.99", MAX_AMOUNT_FEN - 1),
    ],
)
def test_parse_yuan(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["", "  ", "abc", "-5", "1.234", "1,23", "12,34.5", "1.", ".5", "1 234", "1e5", "¥"])
def test_parse_yuan_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_yuan(text)
    assert caught.value.code == "BAD_AMOUNT"
    assert caught.value.details == {"value": text}
    assert "金额格式不正确" in caught.value.message


def test_parse_yuan_rejects_amounts_over_the_limit() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_yuan("10000000000000")
    assert caught.value.code == "AMOUNT_TOO_LARGE"


@pytest.mark.parametrize(
    ("fen", "text"),
    [(123456789, "¥1,234,567.89"), (5, "¥0.05"), (0, "¥0.00"), (100000, "¥1,000.00"), (-150, "-¥1.50")],
)
def test_format_yuan(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


def test_format_yuan_without_symbol() -> None:
    assert format_yuan(123456789, symbol=False) == "1,234,567.89"


@pytest.mark.parametrize("fen", [0, 7, 1005, 100001, 123456789, MAX_AMOUNT_FEN - 1])
def test_format_then_parse_round_trips(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen


@pytest.mark.parametrize(
    ("fen", "upper"),
    [
        (0, "零元整"),
        (10, "壹角整"),
        (5, "伍分"),
        (150, "壹元伍角整"),
        (1005, "壹拾元零伍分"),
        (10100, "壹佰零壹元整"),
        (101000, "壹仟零壹拾元整"),
        (100001, "壹仟元零壹分"),
        (1000500, "壹万零伍元整"),
        (2000000, "贰万元整"),
        (123456789, "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"),
        (1000010000, "壹仟万零壹佰元整"),
        (10000000000, "壹亿元整"),
        (10001000000, "壹亿零壹万元整"),
        (11000000000, "壹亿壹仟万元整"),
        (100000000100, "壹拾亿零壹元整"),
        (100010000000000, "壹万零壹亿元整"),
        (100000000010000, "壹万亿零壹佰元整"),
        (MAX_AMOUNT_FEN - 1, "玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
        (-150, "负壹元伍角整"),
    ],
)
def test_to_chinese_upper(fen: int, upper: str) -> None:
    assert to_chinese_upper(fen) == upper


def test_to_chinese_upper_rejects_amounts_over_the_limit() -> None:
    with pytest.raises(ValidationError) as caught:
        to_chinese_upper(MAX_AMOUNT_FEN)
    assert caught.value.code == "AMOUNT_TOO_LARGE"
