"""What the deal page says about the deal's account at the bank: a custody sub-account (虚户) the bank opens, or,
for a product that holds money by freezing it in the payer's own account (a guarantee), the frozen account the
bank's receipt names - never "opened after confirmation" for a deal that will have no such account."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountBox:
    title: str
    number: str | None  # shown as the account number when the bank has named it
    text: str  # otherwise what is under way


def account_box(*, by_freeze: bool, number: str | None, requested: bool, signed: bool, ended: bool) -> AccountBox:
    """`requested`: an opening was asked of the bank; `signed`: the agreement is signed (a freeze is asked
    then); `ended`: the deal is in a final state."""
    if by_freeze:
        title = "冻结账户"
        if number:
            return AccountBox(title, number, "")
        if ended:
            return AccountBox(title, None, "未冻结")
        return AccountBox(title, None, "冻结申请已提交，等待银行回执" if signed else "确认协议后申请冻结")
    title = "存管虚户"
    if number:
        return AccountBox(title, number, "")
    if requested:
        return AccountBox(title, None, "开户申请已提交，等待银行回执")
    return AccountBox(title, None, "未开立" if ended else "确认协议后开立")
