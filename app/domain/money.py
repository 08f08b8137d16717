"""Money is integer fen. Parsing of yuan text, display as ¥ and as Chinese uppercase (大写)."""

from __future__ import annotations

import re

from app.platform.errors import ValidationError

MAX_AMOUNT_FEN = 10**15  # ten trillion yuan (10^13 yuan, 拾万亿元): far above any housing deal

_YUAN_PATTERN = re.compile(r"^(?P<int>\d{1,3}(,\d{3})+|\d+)(\.(?P<frac>\d{1,2}))?$")
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")


def parse_yuan(text: str) -> int:
    """Parse "1,234.56" / "1234.5" / "12" (yuan) into fen. At most two decimals, never negative."""
    cleaned = text.strip().replace("，", ",").removeprefix("¥").removeprefix("￥").strip()
    match = _YUAN_PATTERN.match(cleaned)
    if match is None:
        raise ValidationError("金额格式不正确，请输入数字，最多两位小数", code="BAD_AMOUNT", details={"value": text})
    whole = int(match.group("int").replace(",", ""))
    fraction = (match.group("frac") or "").ljust(2, "0")
    amount_fen = whole * 100 + int(fraction)
    if amount_fen >= MAX_AMOUNT_FEN:
        raise ValidationError("金额超出允许范围", code="AMOUNT_TOO_LARGE", details={"value": text})
    return amount_fen


def format_yuan(amount_fen: int, *, symbol: bool = True) -> str:
    """1234567 -> "¥12,345.67"."""
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{'¥' if symbol else ''}{whole:,}.{fen:02d}"


def _group_upper(group: int) -> str:
    """Uppercase of 0 < group < 10000, with inner zeros collapsed (e.g. 1005 -> 壹仟零伍)."""
    out = []
    digits = f"{group:04d}"
    pending_zero = False
    for position, char in enumerate(digits):
        digit = int(char)
        unit = _SMALL_UNITS[3 - position]
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_DIGITS[digit] + unit)
    return "".join(out)


def _below_yi_upper(value: int) -> str:
    """Uppercase of 0 < value < 10^8: a 万 group and a units group, with 零 for the zeros between them."""
    wan, rest = divmod(value, 10000)
    if not wan:
        return _group_upper(rest)
    text = _group_upper(wan) + "万"
    if rest:
        text += ("零" if rest < 1000 else "") + _group_upper(rest)
    return text


def _integer_upper(value: int) -> str:
    """Uppercase of 0 < value < 10^16 (e.g. 100010000 -> 壹亿零壹万, 1000100000000 -> 壹万零壹亿)."""
    yi, rest = divmod(value, 10**8)
    if not yi:
        return _below_yi_upper(rest)
    text = _below_yi_upper(yi) + "亿"
    if rest:
        text += ("零" if rest < 10**7 else "") + _below_yi_upper(rest)
    return text


def to_chinese_upper(amount_fen: int) -> str:
    """Chinese uppercase amount as written on contracts: 123456789 -> 壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分."""
    if amount_fen < 0:
        return "负" + to_chinese_upper(-amount_fen)
    if amount_fen >= MAX_AMOUNT_FEN:
        raise ValidationError("金额超出允许范围", code="AMOUNT_TOO_LARGE", details={"amount_fen": amount_fen})
    whole, fen = divmod(amount_fen, 100)
    jiao, fen_digit = divmod(fen, 10)
    if whole == 0 and fen == 0:
        return "零元整"
    text = _integer_upper(whole) + "元" if whole else ""
    if jiao == 0 and fen_digit == 0:
        return text + "整"
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif whole:
        text += "零"
    if fen_digit:
        text += _DIGITS[fen_digit] + "分"
    else:
        text += "整"
    return text
