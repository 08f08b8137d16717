"""One outcome of a reconciliation run (a statement line, a ledger posting the statement lacks, the balance
gap), shared by the statement side (`reconciliation`) and the ledger side (`reconciliation_ledger`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.domain.statements import BANK_TIMEZONE, StatementLine

CHUNK = 500  # values per IN (...) list


@dataclass
class Item:
    status: str
    detail: str
    row_no: int | None = None
    line: StatementLine | None = None
    our_amount_fen: int | None = None
    payout_id: str | None = None
    deal_no: str | None = None
    amount_fen: int | None = None  # as the statement says, for an item with no line (the closing balance)
    bank_reference: str | None = None  # for an item with no line (a ledger posting of an arrival)
    key: str | None = None  # the exception's identity, for an item with no line


def chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of an Asia/Shanghai day in UTC: the end is the day's cut-off (日切)."""
    start = datetime(day.year, day.month, day.day, tzinfo=BANK_TIMEZONE).astimezone(UTC)
    return start, start + timedelta(days=1)
