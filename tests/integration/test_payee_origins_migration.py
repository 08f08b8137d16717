"""Migration 0017: deals that kept their origins in `deals.facts` (what each account had still to get back)
get origin rows that leave their refund capacity as it was."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from app.db.models import Deal, Payout
from app.db.payee_models import PayoutOrigin
from app.deals import service as deals
from app.payouts import origins
from app.platform.cli import alembic_config
from app.platform.runtime import Runtime
from tests.factories import RESALE_FORM, actor

ACCOUNT_A, ACCOUNT_B = "6217000000000000001", "6217000000000000002"


def test_origins_kept_in_facts_become_rows_with_what_was_refunded_added_back(
    rt: Runtime, database_url: str, users: dict[str, int]
) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    with rt.db.uow() as uow:
        deal = uow.session.get_one(Deal, deal_id)
        deal.facts = {
            **(deal.facts or {}),
            "origins": [
                {"account": ACCOUNT_A, "amount_fen": 300, "name": "张三"},
                {"account": ACCOUNT_B, "amount_fen": 50},
                {"account": ACCOUNT_A, "amount_fen": 100},
            ],
        }
        for number, (status, amount) in enumerate((("succeeded", 200), ("failed", 999))):
            uow.session.add(
                Payout(
                    payout_id=f"PO-{number}",
                    deal_id=deal_id,
                    bank_code="ceb",
                    amount_fen=amount,
                    payee_name="张三",
                    payee_account=ACCOUNT_A,
                    purpose="refund",
                    status=status,
                )
            )
        uow.commit()
    with rt.db.engine.begin() as connection:
        connection.execute(text("DROP TABLE payee_amendments"))
        connection.execute(text("DROP TABLE payout_origins"))
    config = alembic_config(database_url)
    command.stamp(config, "0016")
    command.upgrade(config, "0017")
    with rt.db.uow() as uow:
        found = {(o.account, o.name, o.paid_fen, o.refunded_fen) for o in origins.of_deal(uow.session, deal_id)}
        assert uow.session.query(PayoutOrigin).count() == 2
    assert found == {(ACCOUNT_A, "张三", 600, 200), (ACCOUNT_B, None, 50, 0)}
