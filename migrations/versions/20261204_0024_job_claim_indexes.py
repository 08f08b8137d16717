"""Jobs: indexes that serve the claim's "due, oldest first" directly — (status, run_after, id) for pending jobs,
(status, locked_until, id) for expired leases — so claiming costs the same with 1,000 or 100,000 jobs queued
(issue 21). They replace the index on status alone, which the planner preferred and then sorted every due job.

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-04 12:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_status_run_after", "jobs", ["status", "run_after", "id"])
    op.create_index("ix_jobs_status_locked_until", "jobs", ["status", "locked_until", "id"])
    op.drop_index("ix_jobs_status", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.drop_index("ix_jobs_status_locked_until", table_name="jobs")
    op.drop_index("ix_jobs_status_run_after", table_name="jobs")
