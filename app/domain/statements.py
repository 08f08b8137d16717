"""Bank daily statements (日对账单): a parser that turns a file in its bank's CSV layout (the layouts are
facts of each bank's config file, app.domain.banks) into lines (integer fen, UTC times) and problems (row number
and reason). Nothing in a file is silently dropped: a row that does not fit its bank's layout, or carries a
value we do not know, is a problem.

Row numbers count CSV records as a spreadsheet shows them: the header is row 1, the first line row 2. The
last row is the closing balance (期末余额, see StatementLayout.closing_label); it is not a line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from app.domain.banks import AmountUnit, Direction, StatementLayout

BANK_TIMEZONE = ZoneInfo("Asia/Shanghai")
IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ACCOUNT_NO = re.compile(r"^[0-9]{8,32}$")
_YUAN = re.compile(r"^(0|[1-9][0-9]{0,14})\.[0-9]{2}$")
_FEN = re.compile(r"^[1-9][0-9]{0,16}$")
_BALANCE_FEN = re.compile(r"^(0|[1-9][0-9]{0,16})$")
DIRECTION_LABELS: dict[str, str] = {"credit": "来账", "debit": "出金"}
# Outcomes of reconciling a line (or one of our payouts) - the first three need nobody.
STATUS_LABELS = {
    "matched": "已匹配",
    "repaired": "已补单",
    "suspense": "已挂账",
    "amount_mismatch": "金额不符",
    "mismatch": "信息不符",
    "unknown_debit": "未知出金",
    "payout_missing": "对账单无此出金",
    "invalid": "无法解析",
    "error": "处理失败",
    "ledger_only": "平台有账银行无账",
    "balance_gap": "余额不符",
}
RESOLVED_STATUSES = frozenset({"matched", "repaired", "suspense"})
T = TypeVar("T")


@dataclass(frozen=True)
class Statement:
    """A statement file as received: from the bank (signed, with its declared SM3, line count and
    completeness) or from a file someone saved (source `file:<name>`, taken as the final file)."""

    bank_code: str
    day: date
    content: bytes
    complete: bool
    source: str = "bank"
    sm3_hex: str | None = None
    line_count: int | None = None
    signature: dict[str, str] = field(default_factory=dict)  # the bank's X-Bank-* answer headers


@dataclass(frozen=True)
class StatementLine:
    row: int
    bank_reference: str
    direction: Direction
    amount_fen: int
    account_no: str
    counterparty_name: str
    counterparty_account: str
    payout_id: str | None  # our payout id on a debit
    booked_at: datetime  # UTC


@dataclass(frozen=True)
class LineProblem:
    row: int
    reason: str  # Chinese, for finance
    raw: str


@dataclass(frozen=True)
class ParsedStatement:
    lines: tuple[StatementLine, ...]
    problems: tuple[LineProblem, ...]
    data_rows: int  # rows after the header, parsed or not, the closing-balance row not counted
    closing_balance_fen: int | None = None  # the bank's closing balance of the day, when the file states it


class _RowError(Exception):
    pass


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise _RowError(reason)


def parse_amount(text: str, unit: AmountUnit) -> int:
    """Yuan with exactly two decimals ("1234567.89") or integer fen ("123456789") -> positive fen."""
    pattern = _YUAN if unit == "yuan" else _FEN
    expected = "以元为单位、两位小数" if unit == "yuan" else "以分为单位的整数"
    _check(pattern.match(text) is not None, f"金额“{text}”格式不正确（应为{expected}）")
    amount_fen = int(text.replace(".", ""))
    _check(amount_fen > 0, f"金额“{text}”必须大于零")
    return amount_fen


def parse_balance(text: str, unit: AmountUnit) -> int:
    """A balance: as an amount (`parse_amount`), zero allowed."""
    pattern = _YUAN if unit == "yuan" else _BALANCE_FEN
    expected = "以元为单位、两位小数" if unit == "yuan" else "以分为单位的整数"
    _check(pattern.match(text) is not None, f"余额“{text}”格式不正确（应为{expected}）")
    return int(text.replace(".", ""))


class _Row:
    """One data row, field by field; every failed check is collected, so a row reports all its faults."""

    def __init__(self, layout: StatementLayout, values: list[str]) -> None:
        self.layout = layout
        self.values = {name: value.strip() for (_, name), value in zip(layout.columns, values, strict=True)}
        self.headers = {name: header for header, name in layout.columns}
        self.reasons: list[str] = []

    def get(self, name: str, read: Callable[[str], T]) -> T | None:
        try:
            return read(self.values[name])
        except _RowError as error:
            self.reasons.append(f"{self.headers[name]}：{error}")
        return None

    def direction_and_amount(self) -> tuple[Direction | None, int | None]:
        layout = self.layout
        if "direction" in self.values:
            direction = self.get("direction", lambda text: _known(text, layout.direction_of))
            return direction, self.get("amount", lambda text: parse_amount(text, layout.amount_unit))
        debit, credit = self.values["debit_amount"], self.values["credit_amount"]
        if bool(debit) == bool(credit):
            self.reasons.append("借方发生额与贷方发生额应有且只有一个")
            return None, None
        name, direction = ("debit_amount", "debit") if debit else ("credit_amount", "credit")
        return direction, self.get(name, lambda text: parse_amount(text, layout.amount_unit))

    def booked_at(self, day: date) -> datetime | None:
        layout = self.layout
        if "datetime" in self.values:
            name, text, fmt = "datetime", self.values["datetime"], layout.datetime_format
        else:
            name, text = "date", f"{self.values['date']} {self.values['time']}"
            fmt = f"{layout.date_format} {layout.time_format}"
        try:
            local = datetime.strptime(text, fmt).replace(tzinfo=BANK_TIMEZONE)
        except ValueError:
            self.reasons.append(f"{self.headers[name]}：交易时间“{text}”格式不正确")
            return None
        if local.date() != day:
            self.reasons.append(f"交易日期 {local.date().isoformat()} 不是对账日 {day.isoformat()}")
            return None
        return local.astimezone(UTC)


def _known(text: str, mapping: dict[str, Direction]) -> Direction:
    _check(text in mapping, f"未知的借贷方向“{text}”")
    return mapping[text]


def _matches(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def read(text: str) -> str:
        _check(pattern.match(text) is not None, f"{what}“{text}”格式不正确")
        return text

    return read


def _not_empty(text: str) -> str:
    _check(bool(text), "不能为空")
    return text


def _parse_row(layout: StatementLayout, row_no: int, values: list[str], day: date) -> StatementLine:
    _check(len(values) == len(layout.columns), f"字段数 {len(values)}，应为 {len(layout.columns)}")
    row = _Row(layout, values)
    reference = row.get("bank_reference", _matches(IDENTIFIER, "流水号"))
    account_no = row.get("account_no", _matches(ACCOUNT_NO, "账号"))
    direction, amount_fen = row.direction_and_amount()
    counterparty_name = row.get("counterparty_name", _not_empty)
    counterparty_account = row.get("counterparty_account", _matches(ACCOUNT_NO, "对方账号"))
    payout_id = row.get("payout_id", _matches(IDENTIFIER, "付款编号")) if direction == "debit" else None
    if direction == "credit" and row.values["payout_id"]:
        row.reasons.append(f"{row.headers['payout_id']}：来账不应有付款编号“{row.values['payout_id']}”")
    if direction is not None and row.values["summary"] != layout.summaries[direction]:
        row.reasons.append(f"{row.headers['summary']}：未知的摘要“{row.values['summary']}”")
    booked_at = row.booked_at(day)
    if row.reasons:
        raise _RowError("；".join(row.reasons))
    assert reference and account_no and direction and amount_fen and counterparty_name and counterparty_account
    assert booked_at is not None
    return StatementLine(
        row=row_no,
        bank_reference=reference,
        direction=direction,
        amount_fen=amount_fen,
        account_no=account_no,
        counterparty_name=counterparty_name,
        counterparty_account=counterparty_account,
        payout_id=payout_id,
        booked_at=booked_at,
    )


def _reading_encoding(layout: StatementLayout) -> str:
    """The codec the parser reads the bank's files with: its encoding, a UTF-8 byte-order mark tolerated."""
    return "utf-8-sig" if codecs.lookup(layout.encoding).name == "utf-8" else layout.encoding


def _decode(layout: StatementLayout, content: bytes) -> tuple[str, set[int]]:
    """The text, and the rows (by physical line) holding bytes that are not valid in the bank's encoding."""
    text = content.decode(_reading_encoding(layout), errors="replace")
    bad_lines = {number for number, line in enumerate(text.split("\n"), start=1) if "\ufffd" in line}
    return text, bad_lines


def _closing_balance(layout: StatementLayout, values: list[str]) -> int:
    """The closing-balance row: its label, the balance, the other columns empty."""
    _check(
        len(values) == len(layout.columns) and not any(value.strip() for value in values[2:]),
        f"{layout.closing_label}行应只有标签和余额两栏有值（共 {len(layout.columns)} 个字段）",
    )
    return parse_balance(values[1].strip(), layout.amount_unit)


def parse_statement(layout: StatementLayout, content: bytes, day: date) -> ParsedStatement:
    text, bad_lines = _decode(layout, content)
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: list[StatementLine] = []
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    header_ok = True
    row_no = 0
    closing: int | None = None
    closing_row = 0
    try:
        for values in reader:
            row_no += 1
            raw = ",".join(values)
            if closing_row:
                reason = f"{layout.closing_label}行（第 {closing_row} 行）之后不应再有内容"
                problems.append(LineProblem(row_no, reason, raw))
                continue
            if row_no > 1 and header_ok and values and values[0].strip() == layout.closing_label:
                closing_row = row_no
                try:
                    closing = _closing_balance(layout, values)
                except _RowError as error:
                    problems.append(LineProblem(row_no, str(error), raw))
                continue
            if reader.line_num in bad_lines:
                problems.append(LineProblem(row_no, f"含有无法按 {_reading_encoding(layout).upper()} 解码的字节", raw))
                header_ok = header_ok and row_no > 1  # an undecodable header is a wrong header
                continue
            if row_no == 1:
                header_ok = tuple(value.strip() for value in values) == layout.headers
                if not header_ok:
                    problems.append(
                        LineProblem(1, f"表头与{layout.bank_name}对账单格式不符，应为：{','.join(layout.headers)}", raw)
                    )
                continue
            if not header_ok:
                problems.append(LineProblem(row_no, "表头不符，本行未解析", raw))
                continue
            try:
                line = _parse_row(layout, row_no, values, day)
            except _RowError as error:
                problems.append(LineProblem(row_no, str(error), raw))
                continue
            if line.bank_reference in seen:
                problems.append(LineProblem(row_no, f"流水号与第 {seen[line.bank_reference]} 行重复", raw))
                continue
            seen[line.bank_reference] = row_no
            lines.append(line)
    except csv.Error as error:
        problems.append(LineProblem(row_no + 1, f"CSV 格式错误：{error}", ""))
    if row_no == 0:
        problems.append(LineProblem(1, "文件为空，没有表头", ""))
    data_rows = max(row_no - 1, 0) - (1 if closing_row else 0)
    return ParsedStatement(tuple(lines), tuple(problems), data_rows, closing)
