"""PII masks, normal forms and the log filter: exact display formats, and free text where only ID numbers,
phones and account numbers are masked (amounts, dates, digests and ids stay readable)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from app.domain.pii_mask import (
    mask_card,
    mask_id_number,
    mask_ip,
    mask_phone,
    mask_pii_in_text,
    normalize_card,
    normalize_id_number,
    normalize_phone,
)
from app.platform.logs import JsonFormatter, PiiMaskingFilter

BUYER_ID = "11010519491231002X"
SELLER_ID = "110101198001010053"


def test_masks_are_exactly_the_issue_formats() -> None:
    assert mask_id_number(BUYER_ID) == "110***********002X"
    assert mask_id_number("11010519491231002x") == "110***********002X"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("+86 138-1234-1234") == "138****1234"
    assert mask_card("6222 0202 0011 2233 445") == "**** 3445"
    assert (mask_card("12"), mask_id_number("123"), mask_phone("")) == ("****", "***", "")


def test_an_address_keeps_its_network_only() -> None:
    assert mask_ip("203.0.113.45") == "203.0.113.*"
    assert mask_ip("2001:db8:1:2::5") == "2001:db8:1::*" and mask_ip("::1") == "::*"
    assert (mask_ip("-"), mask_ip("")) == ("*", "*"), "no address: nothing to show"


def test_normal_forms_for_the_blind_index() -> None:
    assert normalize_id_number(" 11010519491231002x ") == BUYER_ID
    assert normalize_phone("+86 138 1234 1234") == normalize_phone("0086-13812341234") == "13812341234"
    assert normalize_card("6222-0202 0011") == "622202020011"


def test_free_text_masks_pii_but_not_amounts_dates_or_digests() -> None:
    text = (
        f"deal for {BUYER_ID} and {SELLER_ID}, phone 13812341234 / +86 139 0000 1111, "
        "card 6222 0202 0011 2233 445, account 6226620012345678; "
        "amount_fen=123456789 at 2026-11-23T10:00:00 ts=1763884800123 sm3=ab13812341234cd "
        "id 110101198001010054 has a wrong check digit"
    )
    masked = mask_pii_in_text(text)
    for raw in (BUYER_ID, SELLER_ID, "phone 13812341234", "1390000", "0011 2233", "6226620012345678"):
        assert raw not in masked, raw
    for kept in ("110***********002X", "110***********0053", "138****1234", "**** 3445", "**** 5678"):
        assert kept in masked, kept
    for kept in ("amount_fen=123456789", "2026-11-23T10:00:00", "ts=1763884800123", "sm3=ab13812341234cd"):
        assert kept in masked, kept
    assert "110101198001010054" not in masked, "18 digits without a valid check are masked as an account"


def _emit(**kwargs: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PiiMaskingFilter())
    logger = logging.getLogger("tests.pii_filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        message = kwargs.pop("message", "x")
        args = kwargs.pop("args", ())
        if kwargs.pop("raise_", False):
            try:
                raise ValueError(f"bad id {BUYER_ID}")
            except ValueError:
                logger.exception(message, *args, extra=kwargs)  # type: ignore[arg-type]
        else:
            logger.warning(message, *args, extra=kwargs)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert BUYER_ID not in line and "13812341234" not in line and "6226620012345678" not in line, line
    return json.loads(line)


def test_log_filter_masks_message_arguments_extra_fields_and_tracebacks() -> None:
    entry = _emit(message="created for %s", args=(BUYER_ID,))
    assert entry["message"] == "created for 110***********002X"
    entry = _emit(buyer_phone="13812341234", payload={"seller_bank_account": "6226620012345678", "n": 5})
    assert entry["buyer_phone"] == "138****1234"
    assert entry["payload"] == {"seller_bank_account": "**** 5678", "n": 5}
    entry = _emit(message="failed", raise_=True)
    assert "ValueError: bad id 110***********002X" in str(entry["exception"])


@pytest.mark.parametrize("amount", ["123456789", "1234567.89", "¥1,234,567.89", "100000000000"])
def test_amounts_are_left_alone(amount: str) -> None:
    assert mask_pii_in_text(f"paid {amount}") == f"paid {amount}"
