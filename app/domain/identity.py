"""Checks of Chinese identity and account numbers."""

from __future__ import annotations

import re
from datetime import date

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_PATTERN = re.compile(r"^\d{17}[\dX]$")


def id_check_char(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def is_valid_resident_id(value: str) -> bool:
    """18-digit resident identity number (GB 11643): format, birth date and check character."""
    value = value.strip().upper()
    if not _ID_PATTERN.match(value):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > date.today():
        return False
    return id_check_char(value[:17]) == value[17]


def is_plausible_bank_account(value: str) -> bool:
    """Personal cards and company settlement accounts: 12 to 30 digits (cards are not always Luhn)."""
    return bool(re.fullmatch(r"\d{12,30}", value))


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: the 31 characters (no I, O, Z, S, V)
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_PATTERN = re.compile(rf"^[1-9A-GY][1-9A-Z][0-9]{{6}}[{_USCC_CHARS}]{{10}}$")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(char) * weight for char, weight in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[-total % 31]


def organization_code_check_char(first8: str) -> str:
    """GB 11714: the check character of the 9-character organization code (digits, then A=10 … Z=35)."""
    total = sum(int(char, 36) * weight for char, weight in zip(first8, _ORG_WEIGHTS, strict=True))
    remainder = -total % 11
    return {10: "X"}.get(remainder, str(remainder))


def is_valid_uscc(value: str) -> bool:
    """统一社会信用代码 (GB 32100): 18 characters, region digits, the embedded organization code's check
    character (GB 11714) and the final check character."""
    value = value.strip().upper()
    if not _USCC_PATTERN.match(value):
        return False
    return organization_code_check_char(value[8:16]) == value[16] and uscc_check_char(value[:17]) == value[17]


def is_cn_mobile(value: str) -> bool:
    """Mainland mobile number: 11 digits starting 13–19."""
    return bool(re.fullmatch(r"1[3-9]\d{9}", value))


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def is_valid_bank_card(value: str) -> bool:
    """Bank card number (UnionPay and others): 16 to 19 digits with a Luhn check digit."""
    return bool(re.fullmatch(r"\d{16,19}", value)) and luhn_ok(value)
