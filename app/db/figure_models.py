"""The console's running totals (issue 21): folded totals and the deltas appended since (database triggers,
`app.db.figure_triggers`). A figure's exact value is its total plus its unfolded deltas."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from app.db import figure_triggers
from app.db.base import Base


class FigureTotal(Base):
    """One figure's folded value per key (`figure_triggers` names the figures and their keys)."""

    __tablename__ = "figure_totals"
    figure: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class FigureDelta(Base):
    """A change appended by a trigger in the changing transaction; folded into FigureTotal by the worker. Only
    ever inserted and deleted: no row is updated, so no two writers queue on one."""

    __tablename__ = "figure_deltas"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    figure: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    delta: Mapped[int] = mapped_column(BigInteger)


@event.listens_for(Base.metadata, "after_create")
def _create_figure_triggers(_metadata: Any, connection: Any, **_: Any) -> None:
    """Tables made by create_all (tests) get the triggers migration 0045 installs (once deals, ledger accounts
    and the figure tables exist)."""
    for statement in figure_triggers.statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


@event.listens_for(Base.metadata, "after_drop")
def _drop_figure_functions(_metadata: Any, connection: Any, **_: Any) -> None:
    """Dropping the tables dropped their triggers; on PostgreSQL the trigger functions outlive them."""
    if connection.dialect.name == "postgresql":
        for statement in figure_triggers.FUNCTIONS_DROP:
            connection.exec_driver_sql(statement)
