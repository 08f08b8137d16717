"""The deal page's account box: a custody sub-account, or a guarantee's frozen account."""

from __future__ import annotations

import pytest

from app.domain.deal_account import AccountBox, account_box


@pytest.mark.parametrize(
    ("by_freeze", "number", "requested", "signed", "ended", "expected"),
    [
        (False, None, False, False, False, AccountBox("存管虚户", None, "确认协议后开立")),
        (False, None, True, True, False, AccountBox("存管虚户", None, "开户申请已提交，等待银行回执")),
        (False, "6226000000000042", True, True, False, AccountBox("存管虚户", "6226000000000042", "")),
        (False, None, False, False, True, AccountBox("存管虚户", None, "未开立")),
        (True, None, False, False, False, AccountBox("冻结账户", None, "确认协议后申请冻结")),
        (True, None, False, True, False, AccountBox("冻结账户", None, "冻结申请已提交，等待银行回执")),
        (True, "6217000000000007", True, True, False, AccountBox("冻结账户", "6217000000000007", "")),
        (True, None, False, True, True, AccountBox("冻结账户", None, "未冻结")),
    ],
)
def test_the_account_box_says_what_the_deal_has_or_waits_for(
    by_freeze: bool, number: str | None, requested: bool, signed: bool, ended: bool, expected: AccountBox
) -> None:
    assert account_box(by_freeze=by_freeze, number=number, requested=requested, signed=signed, ended=ended) == expected
