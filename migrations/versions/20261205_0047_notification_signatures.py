"""Bank notifications keep the signature they arrived with (issue 20, the evidence pack): the `X-Bank-Timestamp`,
`X-Bank-Nonce` and `X-Bank-Signature` headers of the first delivery, so that anyone holding the bank's certificate
can check the bank signed the stored body; and the payout a `payout_result` concerns (`payout_id`, indexed with the
bank), so that a deal's payout results are found without decrypting every body. Rows received before have neither.

Revision ID: 0047
Revises: 0045
Create Date: 2026-12-05 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0047"
down_revision = "0045"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_notifications") as batch:
        batch.add_column(sa.Column("signature", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("payout_id", sa.String(64), nullable=True))
        batch.create_index("ix_bank_notifications_payout", ["bank_code", "payout_id"])


def downgrade() -> None:
    with op.batch_alter_table("bank_notifications") as batch:
        batch.drop_index("ix_bank_notifications_payout")
        batch.drop_column("payout_id")
        batch.drop_column("signature")
