"""A product variant declared by configuration alone: 新房资金监管 (products/new_home_supervision.json), built on
the resale workflow, enabled in 上海 by its city config, runs a deal through the services: its own intake form,
its own agreement, the account, the buyer's money, the release to the developer the agreement names, closed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.models import Agreement, Payout
from app.deals import service as deals
from app.deals.sample_forms import SAMPLE_FORMS
from app.platform.runtime import Runtime
from tests.factories import actor, arrive, bank_accepted, load_deal, notification, open_account, post_callback

DEVELOPER = "上海示例房地产开发有限公司"
DEVELOPER_ACCOUNT = "6222020200112233445"
NEW_HOME_FORM = {
    **SAMPLE_FORMS["new_home_supervision"],
    "contract_seller_name": DEVELOPER,
    "seller_name": DEVELOPER,
    "seller_bank_account": DEVELOPER_ACCOUNT,
    "contract_property_address": "上海市浦东新区世纪大道100号1201室",
    "property_address": "上海市浦东新区世纪大道100号1201室",
    "price": "4000000",
    "custody_amount": "4000000",
}
CUSTODY_FEN = 400_000_000


def test_new_home_supervision_runs_from_intake_to_the_developer_by_configuration_alone(
    rt: Runtime, client: FlaskClient, keys_dir: Path, login: Callable[[str], FlaskClient]
) -> None:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "310000", "new_home_supervision", NEW_HOME_FORM)
    deal = load_deal(rt, deal_id)
    assert deal.deal_no.startswith("NH310000"), deal.deal_no
    assert (deal.product, deal.workflow_id, deal.agreement_template) == (
        "new_home_supervision",
        "resale_escrow",
        "new_home_supervision/v1",
    )
    assert (deal.seller_name, deal.seller_id_number) == (DEVELOPER, "91350100M000100Y43")
    deals.confirm_agreement(rt, agent, deal_id)
    with rt.db.uow() as uow:
        signed = uow.session.scalars(select(Agreement).where(Agreement.deal_id == deal_id)).one()
        assert signed.template == "new_home_supervision/v1" and signed.pdf.startswith(b"%PDF")
        assert "<h1>新房资金监管协议</h1>" in signed.html and "乙方（开发企业）" in signed.html
        assert "二手房" not in signed.html
    open_account(client, keys_dir, rt, deal_id, "6226000000000777")
    arrive(client, keys_dir, "6226000000000777", CUSTODY_FEN, "REF-NH-1")
    assert load_deal(rt, deal_id).state == "funded"
    page = login("agent").get(f"/deals/{deal_id}").text
    assert '<span id="product-name">新房资金监管</span> · 上海' in page and "开发企业" in page and "买受人" in page
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    with rt.db.uow() as uow:
        (release,) = uow.session.scalars(select(Payout).where(Payout.deal_id == deal_id))
        assert (release.purpose, release.payee_name, release.payee_account, release.amount_fen) == (
            "release",
            DEVELOPER,
            DEVELOPER_ACCOUNT,
            CUSTODY_FEN,
        )
        payout_id = release.payout_id
    bank_accepted(rt, payout_id)
    body = notification(
        "payout_result", payout_id=payout_id, status="succeeded", bank_reference="B-NH-1", failure_reason=None
    )
    assert post_callback(client, keys_dir, body)[0] == 200
    assert load_deal(rt, deal_id).state == "closed"
