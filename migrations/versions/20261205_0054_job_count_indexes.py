"""The console's capped job counts read along partial indexes (issue 21): jobs retrying (pending after a failed
attempt) and jobs queued by kind (account openings waiting), so that the home page costs the same at 100,000
queued jobs as at 1,000.

Revision ID: 0054
Revises: 0053
Create Date: 2026-12-05 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0054"
down_revision = "0053"
branch_labels = None
depends_on = None

RETRYING = "status = 'pending' AND attempts > 0"
QUEUED = "status IN ('pending', 'running')"


def upgrade() -> None:
    op.create_index(
        "ix_jobs_retrying", "jobs", ["id"], postgresql_where=sa.text(RETRYING), sqlite_where=sa.text(RETRYING)
    )
    op.create_index(
        "ix_jobs_queued_kind", "jobs", ["kind", "id"], postgresql_where=sa.text(QUEUED), sqlite_where=sa.text(QUEUED)
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_queued_kind", table_name="jobs")
    op.drop_index("ix_jobs_retrying", table_name="jobs")
