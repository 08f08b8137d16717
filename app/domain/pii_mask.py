"""Personal financial information (个人金融信息): normal forms for the blind index, display masks, and
finding ID numbers, phones and account numbers inside free text (for the log filter). Pure, no I/O."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Literal

from app.domain.identity import id_check_char

PiiKind = Literal["id", "phone", "card", "cert"]


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def normalize_id_number(value: str) -> str:
    """Resident ID as it is compared: no spaces, upper-case check character."""
    return re.sub(r"\s", "", value).upper()


def normalize_phone(value: str) -> str:
    """Digits only, without the +86 / 0086 country code."""
    digits = _digits(value)
    for prefix in ("0086", "86"):
        if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
            return digits[len(prefix) :]
    return digits


def normalize_card(value: str) -> str:
    """Bank card or account number: digits only."""
    return _digits(value)


def normalize_certificate_no(value: str) -> str:
    """Property certificate or contract number as it is compared: no spaces, full-width brackets half-width."""
    return re.sub(r"\s", "", value).replace("（", "(").replace("）", ")")


NORMALIZERS: dict[PiiKind, Callable[[str], str]] = {
    "id": normalize_id_number,
    "phone": normalize_phone,
    "card": normalize_card,
    "cert": normalize_certificate_no,
}


def mask_id_number(value: str) -> str:
    """11010519491231002X -> 110***********002X (first three and last four kept)."""
    compact = normalize_id_number(value)
    if len(compact) <= 7:
        return "*" * len(compact)
    return compact[:3] + "*" * (len(compact) - 7) + compact[-4:]


def mask_phone(value: str) -> str:
    """13812341234 -> 138****1234."""
    digits = normalize_phone(value)
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_ip(address: str) -> str:
    """203.0.113.45 -> 203.0.113.*; an IPv6 address keeps its first three groups (its /48): 2001:db8:1::*."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return "*"
    if parsed.version == 4:
        return ".".join(str(parsed).split(".")[:3]) + ".*"
    return f"{ipaddress.ip_network((parsed, 48), strict=False).network_address}*"


def mask_card(value: str) -> str:
    """6222020200112233445 -> **** 3445 (only the last four digits)."""
    digits = normalize_card(value)
    return "****" if len(digits) <= 4 else f"**** {digits[-4:]}"


def mask_name(value: str) -> str:
    """张三 -> 张*, 张小三 -> 张*三, 欧阳小明 -> 欧**明 (first and, from three characters on, last kept)."""
    name = value.strip()
    if len(name) <= 1:
        return "*" * len(name)
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


MASKS: dict[PiiKind, Callable[[str], str]] = {"id": mask_id_number, "phone": mask_phone, "card": mask_card}


def mask_or_empty(kind: PiiKind, value: str | None) -> str:
    return "" if not value else MASKS[kind](value)


# --- free text ----------------------------------------------------------------------------------------
# Candidates stand alone (no letter or digit next to them), so hex digests, UUIDs and words are left alone.
_EDGE_BEFORE = r"(?<![0-9A-Za-z])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"
_ID_IN_TEXT = re.compile(_EDGE_BEFORE + r"(\d{17}[\dXx])" + _EDGE_AFTER)
# 16 to 30 digits (cards and bank accounts, also written in groups of four): an amount in fen never has
# that many digits, so no check digit is needed here (accounts are not always Luhn).
_ACCOUNT_IN_TEXT = re.compile(_EDGE_BEFORE + r"(\d{4}(?:[ -]?\d{4}){3}(?:[ -]?\d{1,14})?)" + _EDGE_AFTER)
_PHONE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z+])((?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4})" + _EDGE_AFTER)


def _is_resident_id(candidate: str) -> bool:
    """GB 11643 check character and a plausible birth date: a random 18-digit number passes 1 in ~20."""
    candidate = candidate.upper()
    month, day = int(candidate[10:12]), int(candidate[12:14])
    return 1 <= month <= 12 and 1 <= day <= 31 and id_check_char(candidate[:17]) == candidate[17]


def mask_pii_in_text(text: str) -> str:
    """Every ID number (with a valid check character), account number (16–30 digits) and mainland mobile
    number in `text`, masked; everything else (amounts, dates, ids) unchanged."""
    if not any(char.isdigit() for char in text):
        return text
    text = _ID_IN_TEXT.sub(lambda m: mask_id_number(m[1]) if _is_resident_id(m[1]) else m[0], text)
    text = _ACCOUNT_IN_TEXT.sub(lambda m: mask_card(m[1]) if 16 <= len(_digits(m[1])) <= 30 else m[0], text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m[1]), text)


# Field names whose values are PII whatever they look like (structured log fields, payloads).
_KEY_KINDS: tuple[tuple[str, PiiKind], ...] = (
    ("id_number", "id"),
    ("id_no", "id"),
    ("phone", "phone"),
    ("mobile", "phone"),
    ("bank_account", "card"),
    ("payee_account", "card"),
    ("payer_account", "card"),
    ("card", "card"),
)


# Field names whose values are people's names (an account's own name, a bank's or a file's name are not).
_NAME_KEYS = ("payer_name", "payee_name", "buyer_name", "seller_name", "applicant_name", "holder_name", "full_name")


def kind_of_key(key: str) -> PiiKind | None:
    lowered = key.lower()
    return next((kind for part, kind in _KEY_KINDS if part in lowered), None)


def is_name_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _NAME_KEYS)


def mask_pii_in_data(key: str, value: object) -> object:
    """`value` (found under `key`) with PII masked all the way down: fields named like PII are masked whatever
    they hold (a person's name, ID number, phone, account), other text has what looks like PII masked."""
    kind = kind_of_key(key)
    if isinstance(value, str):
        if value and is_name_key(key):
            return mask_name(value)
        return MASKS[kind](value) if kind and value else mask_pii_in_text(value)
    if isinstance(value, dict):
        return {k: mask_pii_in_data(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_pii_in_data(key, item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and kind:
        return MASKS[kind](str(value))
    return value
