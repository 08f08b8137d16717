"""The custodian banks the platform knows: the one registry of facts about each bank.

Everything here is a fact about the bank itself, as its contract and interface documents say: its code and
names, the format of the virtual-account numbers it assigns, its account-opening limits (and the error codes it
answers when they are exceeded), and the layout of its daily statement (对账单). Nothing here is about our
deployment (URLs, keys, overrides: `app.platform.config`) or about the bank simulator's own behaviour (random numbers,
faults, delays: `app.tools.banksim`). City configs are checked against these codes, the platform's defaults
(`app.platform.config.DEFAULT_BANKS`) and its statement parser (`app.domain.statements`) read these facts, and the bank
simulator plays exactly these banks. Pure data: no Flask, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import time
from typing import Literal

Direction = Literal["credit", "debit"]
DEFAULT_CUT_OFF = time(16, 30)  # the usual daily cut-off (日切) of a bank, Asia/Shanghai
AmountUnit = Literal["yuan", "fen"]

# The fields a statement column can carry (see StatementLayout.columns).
STATEMENT_FIELDS = frozenset(
    {
        "date",
        "time",
        "datetime",
        "bank_reference",
        "account_no",
        "direction",
        "amount",
        "credit_amount",
        "debit_amount",
        "counterparty_name",
        "counterparty_account",
        "payout_id",
        "summary",
    }
)


def luhn_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit for `digits`, as used on bank card and account numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


@dataclass(frozen=True)
class AccountFormat:
    """The bank's virtual-account numbers: a fixed prefix, `random_digits` digits the bank assigns, and with
    `luhn` one Luhn check digit at the end."""

    prefix: str
    random_digits: int
    luhn: bool = False

    @property
    def length(self) -> int:
        return len(self.prefix) + self.random_digits + self.luhn

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.prefix)}[0-9]{{{self.random_digits + self.luhn}}}$")

    def account_no(self, serial: int) -> str:
        """The account number whose assigned digits are `serial` (0 <= serial < 10**random_digits)."""
        if not 0 <= serial < 10**self.random_digits:
            raise ValueError(f"serial {serial} does not fit in {self.random_digits} digits")
        number = self.prefix + str(serial).zfill(self.random_digits)
        return number + luhn_digit(number) if self.luhn else number

    def matches(self, account_no: str) -> bool:
        if self.pattern.match(account_no) is None:
            return False
        return not self.luhn or luhn_digit(account_no[:-1]) == account_no[-1]


@dataclass(frozen=True)
class LimitError:
    """What the bank answers (HTTP 429) when a limit is exceeded: its own code and message."""

    code: str
    message: str


@dataclass(frozen=True)
class OpeningLimits:
    """New account-opening requests the bank accepts per second (sliding window) and per Asia/Shanghai day."""

    per_second: int
    per_day: int
    per_second_error: LimitError
    per_day_error: LimitError


@dataclass(frozen=True)
class StatementLayout:
    """How the bank writes its daily statement (对账单) CSV.

    `columns` pairs each header with the field it carries (STATEMENT_FIELDS). `directions` is how the bank
    writes each direction in its `direction` column (empty when credits and debits have their own amount
    columns). Times are Asia/Shanghai: `date_format` and `time_format` for separate date and time columns,
    `datetime_format` for one column. `encoding` is what the bank writes (the platform also accepts a UTF-8
    file with a byte-order mark). The file ends with the closing-balance row: `closing_label` in the first
    column, the day's closing balance of all the platform's accounts at the bank in the second (in
    `amount_unit`), the other columns empty. `bank_name` is filled from the bank the layout belongs to."""

    columns: tuple[tuple[str, str], ...]
    encoding: str
    amount_unit: AmountUnit
    summaries: dict[Direction, str]
    directions: dict[Direction, str] = field(default_factory=dict)
    date_format: str = ""
    time_format: str = ""
    datetime_format: str = ""
    closing_label: str = "期末余额"
    bank_name: str = ""

    def __post_init__(self) -> None:
        fields = self.fields
        problems = [f"unknown field {name}" for name in fields if name not in STATEMENT_FIELDS]
        if len(set(fields)) != len(fields) or len(set(self.headers)) != len(self.headers):
            problems.append("a header or field appears twice")
        if ("direction" in fields) != bool(self.directions) or ("direction" in fields) != ("amount" in fields):
            problems.append("a direction column (with its labels) goes with one amount column")
        if ("direction" in fields) == ("credit_amount" in fields and "debit_amount" in fields):
            problems.append("either a direction and an amount column, or credit and debit amount columns")
        if "datetime" in fields and not self.datetime_format:
            problems.append("a datetime column needs datetime_format")
        if "datetime" not in fields and not ({"date", "time"} <= set(fields) and self.date_format and self.time_format):
            problems.append("date and time columns need date_format and time_format")
        if set(self.summaries) != {"credit", "debit"}:
            problems.append("a summary for credits and one for debits")
        if problems:
            raise ValueError(f"statement layout: {'; '.join(problems)}")

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(header for header, _ in self.columns)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.columns)

    @property
    def direction_of(self) -> dict[str, Direction]:
        """The value in the file -> the direction it means."""
        return {text: direction for direction, text in self.directions.items()}


@dataclass(frozen=True)
class KnownBank:
    code: str
    name: str
    short_name: str
    account_format: AccountFormat
    opening_limits: OpeningLimits
    statement: StatementLayout
    # 日切: an instruction the bank receives after this local (Asia/Shanghai) time, or on a non-working day,
    # counts as received on the next working day (deadlines configured with "bank_cut_off")
    cut_off: time = DEFAULT_CUT_OFF

    def __post_init__(self) -> None:
        object.__setattr__(self, "statement", replace(self.statement, bank_name=self.name))


KNOWN_BANKS: dict[str, KnownBank] = {
    bank.code: bank
    for bank in (
        KnownBank(
            code="ceb",
            name="中国光大银行",
            short_name="光大",
            account_format=AccountFormat(prefix="6226", random_digits=12),
            opening_limits=OpeningLimits(
                per_second=20,
                per_day=20_000,
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
                amount_unit="yuan",
                summaries={"credit": "来账", "debit": "付款"},
                directions={"credit": "贷", "debit": "借"},
                date_format="%Y-%m-%d",
                time_format="%H:%M:%S",
            ),
        ),
        KnownBank(
            code="icbc",
            name="中国工商银行",
            short_name="工行",
            account_format=AccountFormat(prefix="02002901", random_digits=10, luhn=True),
            opening_limits=OpeningLimits(
                per_second=10,
                per_day=5_000,
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
                amount_unit="yuan",
                summaries={"credit": "转账收入", "debit": "代发付款"},
                datetime_format="%Y%m%d %H:%M:%S",
            ),
        ),
        KnownBank(
            code="abc",
            name="中国农业银行",
            short_name="农行",
            account_format=AccountFormat(prefix="19", random_digits=15),
            opening_limits=OpeningLimits(
                per_second=8,
                per_day=3_000,
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
                amount_unit="yuan",
                summaries={"credit": "转账存入", "debit": "代付支出"},
                date_format="%Y%m%d",
                time_format="%H%M%S",
            ),
        ),
        KnownBank(
            code="ccb",
            name="中国建设银行",
            short_name="建行",
            account_format=AccountFormat(prefix="3705016", random_digits=12, luhn=True),
            opening_limits=OpeningLimits(
                per_second=15,
                per_day=10_000,
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
                amount_unit="yuan",
                summaries={"credit": "跨行转入", "debit": "对外支付"},
                directions={"credit": "贷方", "debit": "借方"},
                datetime_format="%Y/%m/%d %H:%M:%S",
            ),
        ),
        KnownBank(
            code="pab",
            name="平安银行",
            short_name="平安",
            account_format=AccountFormat(prefix="15", random_digits=12),
            opening_limits=OpeningLimits(
                per_second=5,
                per_day=2_000,
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
                amount_unit="fen",
                summaries={"credit": "来账", "debit": "出金"},
                directions={"credit": "C", "debit": "D"},
                date_format="%Y%m%d",
                time_format="%H%M%S",
            ),
        ),
        KnownBank(
            code="boc",
            name="中国银行",
            short_name="中行",
            account_format=AccountFormat(prefix="2", random_digits=11),
            opening_limits=OpeningLimits(
                per_second=3,
                per_day=1_000,
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
                amount_unit="fen",
                summaries={"credit": "汇入", "debit": "汇出"},
                date_format="%d/%m/%Y",
                time_format="%H:%M:%S",
            ),
        ),
    )
}


def cut_off_of(bank_code: str) -> time:
    """The bank's daily cut-off; a bank the registry does not know gets the usual 16:30."""
    bank = KNOWN_BANKS.get(bank_code)
    return bank.cut_off if bank is not None else DEFAULT_CUT_OFF
