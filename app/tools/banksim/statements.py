"""Daily statement files (对账单): every credit and debit a bank booked on one Asia/Shanghai day, as CSV
in the bank's own layout, ending with the day's closing balance (期末余额) of all the platform's accounts at
the bank, with an SM3 digest of the exact bytes."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.crypto import sm3
from app.domain.banks import Direction, StatementLayout

BANK_TIMEZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class StatementLine:
    bank_reference: str
    booked_at: float  # Unix seconds
    direction: Direction
    amount_fen: int
    account_no: str
    counterparty_name: str
    counterparty_account: str
    payout_id: str  # the platform's payout id on a debit, "" on a credit


@dataclass(frozen=True)
class StatementFile:
    content: bytes
    sm3_hex: str
    line_count: int


def day_bounds(day: date) -> tuple[float, float]:
    """[start, end) of an Asia/Shanghai calendar day, in Unix seconds."""
    start = datetime.combine(day, time(), BANK_TIMEZONE)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def bank_day(timestamp: float) -> date:
    return datetime.fromtimestamp(timestamp, BANK_TIMEZONE).date()


def _local(line: StatementLine) -> datetime:
    return datetime.fromtimestamp(line.booked_at, BANK_TIMEZONE)


def _amount(amount_fen: int, layout: StatementLayout) -> str:
    return str(amount_fen) if layout.amount_unit == "fen" else f"{amount_fen // 100}.{amount_fen % 100:02d}"


def _amount_if(direction: Direction) -> Callable[[StatementLine, StatementLayout], str]:
    return lambda line, layout: _amount(line.amount_fen, layout) if line.direction == direction else ""


RENDERERS: dict[str, Callable[[StatementLine, StatementLayout], str]] = {
    "bank_reference": lambda line, _: line.bank_reference,
    "account_no": lambda line, _: line.account_no,
    "counterparty_name": lambda line, _: line.counterparty_name,
    "counterparty_account": lambda line, _: line.counterparty_account,
    "payout_id": lambda line, _: line.payout_id,
    "date": lambda line, layout: _local(line).strftime(layout.date_format),
    "time": lambda line, layout: _local(line).strftime(layout.time_format),
    "datetime": lambda line, layout: _local(line).strftime(layout.datetime_format),
    "direction": lambda line, layout: layout.directions[line.direction],
    "amount": lambda line, layout: _amount(line.amount_fen, layout),
    "credit_amount": _amount_if("credit"),
    "debit_amount": _amount_if("debit"),
    "summary": lambda line, layout: layout.summaries[line.direction],
}


def render_statement(
    layout: StatementLayout, lines: Iterable[StatementLine], closing_balance_fen: int
) -> StatementFile:
    """Header row, one row per line in booking order, then the closing-balance row (not a line: the line
    count leaves it out). Characters the encoding lacks become `?`."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([header for header, _ in layout.columns])
    ordered = sorted(lines, key=lambda line: (line.booked_at, line.bank_reference))
    for line in ordered:
        writer.writerow([RENDERERS[field](line, layout) for _, field in layout.columns])
    closing = [layout.closing_label, _amount(closing_balance_fen, layout)]
    writer.writerow(closing + [""] * (len(layout.columns) - len(closing)))
    content = text.getvalue().encode(layout.encoding, errors="replace")
    return StatementFile(content=content, sm3_hex=sm3(content).hex(), line_count=len(ordered))
