"""Alembic environment: the URL comes from the caller (flask db upgrade) or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from app.db.base import Base
from app.db.models import User  # noqa: F401 - registers every model on Base.metadata
from app.db.session import make_engine

config = context.config


def _url() -> str:
    return config.attributes.get("database_url") or os.environ["DATABASE_URL"]


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
