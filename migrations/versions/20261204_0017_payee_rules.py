"""payee rules: where each custody credit came from (payout_origins) and payee amendments approved by a
second person (payee_amendments)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 07:30:00

Deals that kept their origins in `deals.facts` (what each account had still to get back) get origin rows:
paid = still to get back + refunds already paid to it, so nothing changes for them. The accounts are
encrypted, so this needs the keys (`flask db upgrade` loads them); without them the migration says so and
those deals' refunds are refused until the rows exist.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

log = logging.getLogger("alembic.runtime.migration")

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payout_origins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payout_origins_origin_amount_positive")),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_payout_origins_deal_id_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_origins")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_payout_origins_transfer_id")),
    )
    op.create_index(op.f("ix_payout_origins_deal_id"), "payout_origins", ["deal_id"], unique=False)
    op.create_table(
        "payee_amendments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("payee_name", sa.String(length=512), nullable=False),
        sa.Column("account", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('proposed','approved')", name=op.f("ck_payee_amendments_amendment_status_known")
        ),
        sa.CheckConstraint(
            "approved_by IS NULL OR approved_by <> proposed_by", name=op.f("ck_payee_amendments_amendment_four_eyes")
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_payee_amendments_deal_id_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payee_amendments")),
    )
    op.create_index("ix_payee_amendments_deal_status", "payee_amendments", ["deal_id", "status"], unique=False)
    _origins_from_facts()


def _origins_from_facts() -> None:
    from app.db.pii import keyring
    from app.platform.errors import ConfigError

    connection = op.get_bind()
    missed = 0
    for deal_id, facts in connection.execute(sa.text("SELECT id, facts FROM deals")).all():
        facts = json.loads(facts) if isinstance(facts, str) else facts
        left: dict[str, tuple[int, str | None]] = {}
        for origin in (facts or {}).get("origins", []):
            amount, name = left.get(origin["account"], (0, origin.get("name")))
            left[origin["account"]] = (amount + origin["amount_fen"], name)
        if not left:
            continue
        try:
            refunds = connection.execute(
                sa.text(
                    "SELECT payee_account, amount_fen FROM payouts WHERE deal_id = :deal AND purpose = 'refund'"
                    " AND status = 'succeeded'"
                ),
                {"deal": deal_id},
            ).all()
            refunded: dict[str, int] = {}
            for stored, amount in refunds:
                account = keyring.decrypt(stored)
                refunded[account] = refunded.get(account, 0) + amount
            rows = [
                {
                    "deal_id": deal_id,
                    "transfer_id": f"facts:{deal_id}:{number}",
                    "account": keyring.encrypt(account),
                    "name": keyring.encrypt(name) if name else None,
                    "amount_fen": amount + refunded.get(account, 0),
                    "arrived_at": datetime.now(UTC),
                }
                for number, (account, (amount, name)) in enumerate(left.items())
                if amount + refunded.get(account, 0) > 0
            ]
        except ConfigError:  # keys not loaded here
            missed += 1
            continue
        if rows:
            connection.execute(
                sa.text(
                    "INSERT INTO payout_origins (deal_id, transfer_id, account, name, amount_fen, arrived_at)"
                    " VALUES (:deal_id, :transfer_id, :account, :name, :amount_fen, :arrived_at)"
                ),
                rows,
            )
    if missed:
        log.warning("payout origins not recorded for %d deals (keys not loaded): run `flask db upgrade`", missed)


def downgrade() -> None:
    op.drop_index("ix_payee_amendments_deal_status", table_name="payee_amendments")
    op.drop_table("payee_amendments")
    op.drop_index(op.f("ix_payout_origins_deal_id"), table_name="payout_origins")
    op.drop_table("payout_origins")
