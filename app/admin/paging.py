"""Offset pagination for admin lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    number: int
    total: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def page_number(raw: str | None) -> int:
    return int(raw) if raw is not None and raw.isdigit() and int(raw) > 0 else 1


def paginate(session: Session, query: Select[Any], number: int, size: int = PAGE_SIZE) -> Page:
    """Rows of one page of an ordered query (scalars when it selects one entity), and the total."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    result = session.execute(query.limit(size).offset((number - 1) * size))
    one_entity = len(query.column_descriptions) == 1
    rows = list(result.scalars()) if one_entity else list(result.all())
    return Page(rows, number, int(total), size)
