"""The custodian banks' facts as data: the dataclasses, and `banks_from_documents`, which turns bank config
documents (`bank_configs/<code>.json`, schema `app/schemas/bank.schema.json`) into them with every check.

Everything here is a fact about the bank itself, as its contract and interface documents say: its code and
names, the protocol it speaks, the deployment's default base URL and its seal certificate, the format of the
virtual-account numbers it assigns, its account-opening limits (and the error codes it answers when they are
exceeded), its daily cut-off and the layout of its daily statement (对账单). The documents are read by
`app.banks.registry` (the repository files are the seed); the platform's bank endpoints (`app.platform.config`),
the statement parser, the city checks and the bank simulator read the banks it builds. Pure: no Flask, no
database, no files but the schema.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, validators

from app.domain.forms.patterns import matches, pattern_problem
from app.domain.problems import Problem, pointer
from app.platform.errors import ConfigError

Direction = Literal["credit", "debit"]
DEFAULT_CUT_OFF = time(16, 30)  # the usual daily cut-off (日切) of a bank, Asia/Shanghai
AmountUnit = Literal["yuan", "fen"]
PROTOCOLS = frozenset({"v1"})  # the bank API protocol versions the platform speaks (docs/bank-api.md)
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "bank.schema.json"

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
    `luhn` one Luhn check digit at the end; `pattern` is the regular expression a whole number matches (run on
    the linear-time engine of config patterns, `app.domain.forms.patterns`)."""

    pattern: str
    prefix: str
    random_digits: int
    luhn: bool = False

    @property
    def length(self) -> int:
        return len(self.prefix) + self.random_digits + self.luhn

    def account_no(self, serial: int) -> str:
        """The account number whose assigned digits are `serial` (0 <= serial < 10**random_digits)."""
        if not 0 <= serial < 10**self.random_digits:
            raise ValueError(f"serial {serial} does not fit in {self.random_digits} digits")
        number = self.prefix + str(serial).zfill(self.random_digits)
        return number + luhn_digit(number) if self.luhn else number

    def matches(self, account_no: str) -> bool:
        if not matches(f"^(?:{self.pattern})$", account_no):
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
        problems = layout_problems(self)
        if problems:
            raise ValueError(f"对账单格式：{'；'.join(problems)}")

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
    cut_off: time
    protocol: str  # one of PROTOCOLS
    base_url: str  # the deployment's default; CUNGUAN_BANK_<CODE>_URL overrides it (app.platform.config)
    certificate: str  # the bank's SM2 seal certificate (PEM) when its file carries one, else ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "statement", replace(self.statement, bank_name=self.name))


_SAMPLE = datetime(2026, 11, 20, 9, 5, 7)  # a moment every date and time format must write and read back


def _format_problem(key: str, fmt: str, parts: tuple[str, ...]) -> str | None:
    """Why `fmt` cannot write and read back the `parts` of a moment (None when it can)."""
    try:
        back = datetime.strptime(_SAMPLE.strftime(fmt), fmt)
    except ValueError:
        back = None
    if back is None or any(getattr(back, part) != getattr(_SAMPLE, part) for part in parts):
        return f"{key} {fmt} 无法写出并读回完整的{'日期' if 'day' in parts else '时间'}"
    return None


def layout_problems(layout: StatementLayout) -> list[str]:
    """Why a statement layout cannot be parsed as it says (Chinese, one reason each; empty when it can)."""
    fields = layout.fields
    problems = [f"未知字段 {name}" for name in fields if name not in STATEMENT_FIELDS]
    if len(set(fields)) != len(fields) or len(set(layout.headers)) != len(layout.headers):
        problems.append("表头或字段重复")
    if ("direction" in fields) != bool(layout.directions) or ("direction" in fields) != ("amount" in fields):
        problems.append("借贷标志列（及其 directions 取值，direction）须与一个金额列 amount 同时出现")
    if ("direction" in fields) == ("credit_amount" in fields and "debit_amount" in fields):
        problems.append("须有借贷标志列与金额列，或贷方与借方两个金额列，二者取其一")
    if "datetime" in fields and not layout.datetime_format:
        problems.append("交易时间列 datetime 须有 datetime_format")
    if "datetime" not in fields and not ({"date", "time"} <= set(fields) and layout.date_format and layout.time_format):
        problems.append("须有交易日期与时间列 date、time 及 date_format、time_format")
    if set(layout.summaries) != {"credit", "debit"}:
        problems.append("须有来账与出金两种摘要")
    if len(set(layout.directions.values())) != len(layout.directions):
        problems.append("借贷标志的两个取值相同")
    for key, fmt, parts in (
        ("date_format", layout.date_format, ("year", "month", "day")),
        ("time_format", layout.time_format, ("hour", "minute", "second")),
        ("datetime_format", layout.datetime_format, ("year", "month", "day", "hour", "minute", "second")),
    ):
        problem = _format_problem(key, fmt, parts) if fmt else None
        problems += [problem] if problem else []
    try:
        codecs.lookup(layout.encoding)
    except LookupError:
        problems.append(f"未知的字符编码 {layout.encoding}")
    return problems


# --- bank config documents --------------------------------------------------------------------------


class BankConfigInvalid(ConfigError):
    """Bank config documents that must not be used; `problems` lists every problem found."""

    code = "BANK_CONFIG_INVALID"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"银行配置有 {len(problems)} 处错误", details=[problem.to_dict() for problem in problems])
        self.problems = problems


@cache
def _validator() -> Draft202012Validator:
    strict_types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=strict_types)
    return strict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _account_format(spec: Mapping[str, Any]) -> tuple[AccountFormat | None, list[tuple[tuple[str, ...], str, str]]]:
    """The account format of a schema-valid `account_number`, or None and why (path, Chinese, English)."""
    why = pattern_problem(spec["pattern"])
    if why is not None:
        return None, [(("pattern",), f"账号格式正则无效：{why}", f"invalid account number pattern: {why}")]
    account_format = AccountFormat(spec["pattern"], spec["prefix"], spec["assigned_digits"], spec["luhn_check_digit"])
    samples = [account_format.account_no(0), account_format.account_no(10**account_format.random_digits - 1)]
    unmatched = [number for number in samples if not account_format.matches(number)]
    if unmatched:
        zh = f"账号格式正则与前缀、位数不符：银行分配的账号 {unmatched[0]} 不匹配"
        return None, [(("pattern",), zh, f"pattern refuses the assigned number {unmatched[0]}")]
    return account_format, []


def _statement(spec: Mapping[str, Any]) -> StatementLayout:
    keys = ("directions", "date_format", "time_format", "datetime_format", "closing_label")
    return StatementLayout(
        columns=tuple((column["header"], column["field"]) for column in spec["columns"]),
        encoding=spec["encoding"],
        amount_unit=spec["amount_unit"],
        summaries=dict(spec["summaries"]),
        **{key: spec[key] for key in keys if key in spec},
    )


def _bank(doc: Mapping[str, Any], source: str) -> tuple[KnownBank | None, list[Problem]]:
    """The bank of a schema-valid document, or None and why."""
    problems: list[tuple[tuple[str, ...], str, str]] = []
    if doc["protocol"] not in PROTOCOLS:
        zh = f"不支持的银行接口协议 {doc['protocol']}（支持：{'、'.join(sorted(PROTOCOLS))}）"
        problems.append((("protocol",), zh, f"unsupported protocol {doc['protocol']!r}"))
    account_format, account_problems = _account_format(doc["account_number"])
    problems += [(("account_number", *path), zh, en) for path, zh, en in account_problems]
    try:
        statement = _statement(doc["statement"])
    except ValueError as error:
        problems.append((("statement",), str(error), "invalid statement layout"))
    if problems or account_format is None:
        return None, [Problem(source, pointer(*path), zh, en) for path, zh, en in problems]
    limits = doc["opening_limits"]
    refusals = (LimitError(**limits["per_second_refusal"]), LimitError(**limits["per_day_refusal"]))
    hour, minute = (int(part) for part in doc["cut_off"].split(":"))
    bank = KnownBank(
        code=doc["code"],
        name=doc["name"],
        short_name=doc["short_name"],
        account_format=account_format,
        opening_limits=OpeningLimits(limits["per_second"], limits["per_day"], *refusals),
        statement=statement,
        cut_off=time(hour, minute),
        protocol=doc["protocol"],
        base_url=doc["base_url"],
        certificate=doc.get("certificate", ""),
    )
    return bank, []


def bank_from_document(doc: Any, source: str) -> KnownBank:
    """The bank a config document describes (`source` names it in problems); BankConfigInvalid lists every
    problem, in Chinese, when it is not one."""
    problems = [
        Problem(source, pointer(*error.absolute_path), "不符合银行配置结构定义", error.message)
        for error in _validator().iter_errors(doc)
    ]
    bank, found = (None, []) if problems else _bank(doc, source)
    if bank is None:
        raise BankConfigInvalid(problems + found)
    return bank


def banks_from_documents(documents: Sequence[tuple[str, Any]]) -> dict[str, KnownBank]:
    """The banks of (source, document) pairs, in order: every document checked, each code once; BankConfigInvalid
    lists every problem of every document. The one entry point for files (the seed) and published versions."""
    banks: dict[str, KnownBank] = {}
    problems: list[Problem] = []
    for source, doc in documents:
        try:
            bank = bank_from_document(doc, source)
        except BankConfigInvalid as error:
            problems += error.problems
            continue
        if bank.code in banks:
            problems.append(Problem(source, "/code", f"银行代码 {bank.code} 重复", f"bank {bank.code!r} twice"))
        banks.setdefault(bank.code, bank)
    if problems:
        raise BankConfigInvalid(problems)
    return banks
