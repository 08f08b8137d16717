"""Stock rental contracts from a CSV file, free of storage: decoding, the header, rows, and the schedule
at which the bank's limits let the accounts be opened.

The file: UTF-8 (with or without BOM) or GBK/GB18030 (detected); a header row naming the columns by the
intake form's field names (`tenant_name`, `monthly_rent_fen` …) plus `city_code`, or by their Chinese
titles (承租人姓名, 月租金 …, 城市代码); amounts in yuan as typed in the form. Rows are numbered as a
spreadsheet shows them: the header is row 1, the first contract row 2 (a quoted field spanning lines is
still one row).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.rate_limit import Limits
from app.domain.timezone import SHANGHAI
from app.platform.errors import ValidationError

CITY_COLUMN = "city_code"
BANK_COLUMN = "custody_bank"
CITY_ALIASES = ("城市代码", "城市编码", "行政区划代码", "城市")
BANK_ALIASES = ("存管银行", "托管银行")
ROW_FIELD = "(整行)"  # the report's field for a problem of the whole row
MAX_FIELD_CHARS = 1000
MAX_FILE_BYTES = 20 * 1024 * 1024  # some 50,000 contracts of a few hundred bytes each
MAX_RECORDS = 50_000  # data rows per file: a larger stock is imported in several files


@dataclass(frozen=True)
class BadRow:
    row_no: int
    field: str  # a column name, or ROW_FIELD
    reason: str  # Chinese, for the person fixing the file
    contract_no: str = ""


@dataclass(frozen=True)
class Row:
    row_no: int
    values: dict[str, str]  # column name -> stripped text


class ImportFileError(ValidationError):
    """The file as a whole cannot be imported (encoding, header); nothing is imported."""

    code = "IMPORT_FILE_INVALID"


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name): UTF-8 with or without BOM, else GB18030 (a superset of GBK); a file over
    MAX_FILE_BYTES is refused before it is read."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(f"文件过大：不能超过 {MAX_FILE_BYTES // (1024 * 1024)} MB，请拆分为多个文件导入")
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "UTF-8 (BOM)"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "GBK/GB18030"
    except UnicodeDecodeError as error:
        raise ImportFileError(f"文件编码无法识别（应为 UTF-8 或 GBK）：第 {error.start} 字节附近") from error


def column_names(labels: Mapping[str, str]) -> dict[str, str]:
    """Every accepted header text -> column name: the field names, their Chinese titles (`labels`: field
    name -> title) and the city and bank columns' aliases."""
    names = {name: name for name in labels}
    names.update({label: name for name, label in labels.items()})
    names.update({alias: CITY_COLUMN for alias in (CITY_COLUMN, *CITY_ALIASES)})
    names.update({alias: BANK_COLUMN for alias in (BANK_COLUMN, *BANK_ALIASES)})
    return names


def read_header(header: list[str], accepted: Mapping[str, str], required: Iterable[str]) -> list[str]:
    """The column names of the header's cells; ImportFileError naming unknown, repeated or missing ones."""
    columns = [accepted.get(cell.strip(), "") for cell in header]
    unknown = [cell.strip() for cell, column in zip(header, columns, strict=True) if not column]
    repeated = sorted({column for column in columns if column and columns.count(column) > 1})
    missing = [name for name in required if name not in columns]
    problems = []
    if unknown:
        problems.append("无法识别的列：" + "、".join(unknown))
    if repeated:
        problems.append("重复的列：" + "、".join(repeated))
    if missing:
        problems.append("缺少必需的列：" + "、".join(missing))
    if problems:
        raise ImportFileError("表头有误（第 1 行）：" + "；".join(problems))
    return columns


def split_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """The header's cells and the data rows' cells (blank lines skipped by the csv module); more than
    MAX_RECORDS data rows are refused (nothing is imported)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise ImportFileError("文件为空：第 1 行应为表头")
    records = list(itertools.islice(reader, MAX_RECORDS + 1))
    if len(records) > MAX_RECORDS:
        raise ImportFileError(f"行数过多：一个文件最多 {MAX_RECORDS} 行数据，请拆分为多个文件导入")
    return header, records


def rows(columns: list[str], records: Iterable[list[str]]) -> Iterator[Row | BadRow]:
    """Each data record as a Row (column -> stripped text), or a BadRow when its cells do not match the
    header. Row numbers count records: header = 1."""
    width = len(columns)
    for row_no, cells in enumerate(records, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            more_or_less = "缺少列" if len(cells) < width else "多出列"
            yield BadRow(row_no, ROW_FIELD, f"{more_or_less}：本行 {len(cells)} 列，表头 {width} 列")
            continue
        if any(len(cell) > MAX_FIELD_CHARS for cell in cells):
            yield BadRow(row_no, ROW_FIELD, f"单元格内容过长（超过 {MAX_FIELD_CHARS} 字）")
            continue
        yield Row(row_no, {column: cell.strip() for column, cell in zip(columns, cells, strict=True)})


# --- account opening at the bank's pace --------------------------------------------------------------


def _next_midnight(at: datetime, days: int) -> datetime:
    local = at.astimezone(SHANGHAI).date() + timedelta(days=days)
    return datetime.combine(local, datetime.min.time(), tzinfo=SHANGHAI)


def opening_slot(
    limits: Limits, now: datetime, opened_today: int, position: int, pace_per_s: float | None = None
) -> datetime:
    """When the account at `position` (0-based) of a bank's queue can be opened: at `pace_per_s` (the pace the
    window achieves, `rate_limit.achievable_per_second`; the limit itself when not given) while today's quota
    (`limits.per_day` less `opened_today`) lasts, then from each Shanghai midnight on, a day's quota at a time.
    A plan for spreading the jobs and for the estimate, not the guard: the window of sends still refuses anything
    faster."""
    pace = min(float(limits.per_second), pace_per_s or float(limits.per_second))
    left_today = max(0, limits.per_day - opened_today)
    if position < left_today:
        return now + timedelta(seconds=position / pace)
    later = position - left_today
    day, within = divmod(later, limits.per_day)
    return _next_midnight(now, day + 1) + timedelta(seconds=within / pace)


@dataclass(frozen=True)
class OpeningEstimate:
    bank_code: str
    queued: int  # accounts waiting at this bank, the new ones included
    limits: Limits
    last_at: datetime  # when the last of them can be opened at the achievable pace
    pace_per_s: float  # that pace (rate_limit.achievable_per_second)

    @property
    def days(self) -> int:
        """Calendar days (Shanghai) the openings span, today included."""
        return math.ceil(self.queued / self.limits.per_day) if self.queued else 0


def duration_text(seconds: float) -> str:
    """A duration in Chinese: 3 天 4 小时, 2 小时 5 分, 12 分 30 秒, 8 秒."""
    whole = max(0, round(seconds))
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时"
    if hours:
        return f"{hours} 小时 {minutes} 分"
    if minutes:
        return f"{minutes} 分 {secs} 秒"
    return f"{secs} 秒"
