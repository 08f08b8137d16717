"""Go-live is a step of the review flow (issue 18): `city_launches` holds whether agents see a city, set by a
reviewer's 上线 / 下线 after publishing; `city_config_versions.copied_from` records the city a new city's first
draft was copied from (its plain diff compares with that city). Cities published before keep what their published
config's `status` said (the key no longer decides anything afterwards).

Revision ID: 0044
Revises: 0038
Create Date: 2026-12-05 19:00:00
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0038"
branch_labels = None
depends_on = None


def _status(contents: dict[str, dict[str, Any]], stem: str) -> str | None:
    """The `status` a published config resolves to along its `extends` chain (as the catalog resolved it)."""
    seen: set[str] = set()
    while stem in contents and stem not in seen:
        seen.add(stem)
        data = contents[stem]
        if "status" in data:
            return str(data["status"])
        stem = str(data.get("extends", ""))
    return None


def upgrade() -> None:
    with op.batch_alter_table("city_config_versions") as batch:
        batch.add_column(sa.Column("copied_from", sa.String(16), nullable=True))
    launches = op.create_table(
        "city_launches",
        sa.Column("city_code", sa.String(16), primary_key=True),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    rows = op.get_bind().execute(
        sa.text("SELECT city_code, content FROM city_config_versions WHERE status = 'published'")
    )
    contents = {}
    for code, content in rows:
        try:
            data = json.loads(content)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            contents[code] = data
    now = datetime.now(UTC)
    op.bulk_insert(
        launches,
        [
            {"city_code": code, "live": _status(contents, code) == "live", "changed_by": "system", "changed_at": now}
            for code in sorted(contents)
            if code.isdigit()
        ],
    )


def downgrade() -> None:
    op.drop_table("city_launches")
    with op.batch_alter_table("city_config_versions") as batch:
        batch.drop_column("copied_from")
