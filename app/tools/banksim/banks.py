"""The banks the simulator plays: data only, so adding a bank is one more entry.

Each bank has its own virtual-account number format, account-opening limits with its own error
codes, and its own daily statement layout (column names and order, encoding, date and amount formats).
Codes and names come from the platform's one registry of banks (`app.domain.banks.KNOWN_BANKS`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from app.domain.banks import KNOWN_BANKS

AmountUnit = Literal["yuan", "fen"]
Direction = Literal["credit", "debit"]


def luhn_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit for `digits`, as used on bank card and account numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class AccountFormat:
    prefix: str
    random_digits: int
    luhn: bool = False  # one Luhn check digit at the end

    @property
    def length(self) -> int:
        return len(self.prefix) + self.random_digits + self.luhn

    def new_account_no(self) -> str:
        number = self.prefix + str(secrets.randbelow(10**self.random_digits)).zfill(self.random_digits)
        return number + luhn_digit(number) if self.luhn else number


@dataclass(frozen=True)
class LimitError:
    code: str
    message: str


@dataclass(frozen=True)
class OpeningLimits:
    """New account-opening requests accepted per second (sliding window) and per Asia/Shanghai day."""

    per_second: int
    per_day: int
    per_second_error: LimitError
    per_day_error: LimitError


@dataclass(frozen=True)
class StatementLayout:
    """How a bank writes its daily statement (对账单) CSV.

    `columns` pairs each header with a field of the statement line (see statements.RENDERERS).
    """

    columns: tuple[tuple[str, str], ...]
    encoding: str
    date_format: str
    time_format: str
    datetime_format: str
    amount_unit: AmountUnit
    directions: dict[Direction, str]
    summaries: dict[Direction, str]


@dataclass(frozen=True)
class SimulatedBank:
    code: str
    account_format: AccountFormat
    limits: OpeningLimits
    statement: StatementLayout

    @property
    def name(self) -> str:
        return KNOWN_BANKS[self.code].name

    def new_account_no(self) -> str:
        return self.account_format.new_account_no()


_BANKS = (
    SimulatedBank(
        code="ceb",
        account_format=AccountFormat(prefix="6226", random_digits=12),
        limits=OpeningLimits(
            per_second=20,
            per_day=20000,
            per_second_error=LimitError("CEB1029", "开户交易过于频繁，请稍后再试"),
            per_day_error=LimitError("CEB1030", "当日开户数量已达上限"),
        ),
        statement=StatementLayout(
            columns=(
                ("交易日期", "date"),
                ("交易时间", "time"),
                ("交易流水号", "bank_reference"),
                ("虚户账号", "account_no"),
                ("借贷标志", "direction"),
                ("交易金额", "amount"),
                ("对方户名", "counterparty_name"),
                ("对方账号", "counterparty_account"),
                ("业务编号", "payout_id"),
                ("摘要", "summary"),
            ),
            encoding="utf-8",
            date_format="%Y-%m-%d",
            time_format="%H:%M:%S",
            datetime_format="%Y-%m-%d %H:%M:%S",
            amount_unit="yuan",
            directions={"credit": "贷", "debit": "借"},
            summaries={"credit": "来账", "debit": "付款"},
        ),
    ),
    SimulatedBank(
        code="icbc",
        account_format=AccountFormat(prefix="02002901", random_digits=10, luhn=True),
        limits=OpeningLimits(
            per_second=10,
            per_day=5000,
            per_second_error=LimitError("ICBC-E4291", "请求频率超限，请降低开户频率"),
            per_day_error=LimitError("ICBC-E4292", "今日开立虚拟子账户数量已达上限"),
        ),
        statement=StatementLayout(
            columns=(
                ("账号", "account_no"),
                ("交易时间", "datetime"),
                ("借方发生额", "debit_amount"),
                ("贷方发生额", "credit_amount"),
                ("对方单位名称", "counterparty_name"),
                ("对方账号", "counterparty_account"),
                ("凭证号", "bank_reference"),
                ("客户流水号", "payout_id"),
                ("用途", "summary"),
            ),
            encoding="gbk",
            date_format="%Y%m%d",
            time_format="%H:%M:%S",
            datetime_format="%Y%m%d %H:%M:%S",
            amount_unit="yuan",
            directions={"credit": "贷", "debit": "借"},
            summaries={"credit": "转账收入", "debit": "代发付款"},
        ),
    ),
    SimulatedBank(
        code="abc",
        account_format=AccountFormat(prefix="19", random_digits=15),
        limits=OpeningLimits(
            per_second=8,
            per_day=3000,
            per_second_error=LimitError("EAB0429", "开户交易频率超限，请稍后重试"),
            per_day_error=LimitError("EAB0430", "当日虚拟账户开立数量已达上限"),
        ),
        statement=StatementLayout(
            columns=(
                ("交易日期", "date"),
                ("交易时间", "time"),
                ("账号", "account_no"),
                ("收入金额", "credit_amount"),
                ("支出金额", "debit_amount"),
                ("对方户名", "counterparty_name"),
                ("对方账号", "counterparty_account"),
                ("交易流水号", "bank_reference"),
                ("商户流水号", "payout_id"),
                ("交易用途", "summary"),
            ),
            encoding="gb18030",
            date_format="%Y%m%d",
            time_format="%H%M%S",
            datetime_format="%Y%m%d%H%M%S",
            amount_unit="yuan",
            directions={"credit": "收入", "debit": "支出"},
            summaries={"credit": "转账存入", "debit": "代付支出"},
        ),
    ),
    SimulatedBank(
        code="ccb",
        account_format=AccountFormat(prefix="3705016", random_digits=12, luhn=True),
        limits=OpeningLimits(
            per_second=15,
            per_day=10000,
            per_second_error=LimitError("YBLA0429", "交易过于频繁，请稍后再试"),
            per_day_error=LimitError("YBLA0430", "已超过当日开立子账户限额"),
        ),
        statement=StatementLayout(
            columns=(
                ("记账时间", "datetime"),
                ("账户账号", "account_no"),
                ("交易流水号", "bank_reference"),
                ("借贷方向", "direction"),
                ("交易金额", "amount"),
                ("对方户名", "counterparty_name"),
                ("对方账号", "counterparty_account"),
                ("企业流水号", "payout_id"),
                ("摘要", "summary"),
            ),
            encoding="utf-8",
            date_format="%Y/%m/%d",
            time_format="%H:%M:%S",
            datetime_format="%Y/%m/%d %H:%M:%S",
            amount_unit="yuan",
            directions={"credit": "贷方", "debit": "借方"},
            summaries={"credit": "跨行转入", "debit": "对外支付"},
        ),
    ),
    SimulatedBank(
        code="pab",
        account_format=AccountFormat(prefix="15", random_digits=12),
        limits=OpeningLimits(
            per_second=5,
            per_day=2000,
            per_second_error=LimitError("PAB_OPEN_RATE", "开户请求超过每秒限额"),
            per_day_error=LimitError("PAB_OPEN_QUOTA", "开户请求超过当日限额"),
        ),
        statement=StatementLayout(
            columns=(
                ("TranDate", "date"),
                ("TranTime", "time"),
                ("HostSeqNo", "bank_reference"),
                ("SubAcctNo", "account_no"),
                ("DcFlag", "direction"),
                ("TranAmt", "amount"),
                ("OppAcctNo", "counterparty_account"),
                ("OppAcctName", "counterparty_name"),
                ("ThirdSeqNo", "payout_id"),
                ("Remark", "summary"),
            ),
            encoding="utf-8",
            date_format="%Y%m%d",
            time_format="%H%M%S",
            datetime_format="%Y%m%d%H%M%S",
            amount_unit="fen",
            directions={"credit": "C", "debit": "D"},
            summaries={"credit": "来账", "debit": "出金"},
        ),
    ),
    SimulatedBank(
        code="boc",
        account_format=AccountFormat(prefix="2", random_digits=11),
        limits=OpeningLimits(
            per_second=3,
            per_day=1000,
            per_second_error=LimitError("BOC_E_TPS", "每秒开户请求超过约定上限"),
            per_day_error=LimitError("BOC_E_DAILY", "当日开户请求超过约定上限"),
        ),
        statement=StatementLayout(
            columns=(
                ("Account No.", "account_no"),
                ("Transaction Date", "date"),
                ("Transaction Time", "time"),
                ("Debit Amount", "debit_amount"),
                ("Credit Amount", "credit_amount"),
                ("Payer/Payee Name", "counterparty_name"),
                ("Payer/Payee Account", "counterparty_account"),
                ("Transaction Reference", "bank_reference"),
                ("Customer Reference", "payout_id"),
                ("Remark", "summary"),
            ),
            encoding="utf-8",
            date_format="%d/%m/%Y",
            time_format="%H:%M:%S",
            datetime_format="%d/%m/%Y %H:%M:%S",
            amount_unit="fen",
            directions={"credit": "CR", "debit": "DR"},
            summaries={"credit": "汇入", "debit": "汇出"},
        ),
    ),
)

SIMULATED_BANKS: dict[str, SimulatedBank] = {bank.code: bank for bank in _BANKS}
assert set(SIMULATED_BANKS) <= set(KNOWN_BANKS), "every simulated bank is one the platform knows"
