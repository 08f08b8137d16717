"""Banks, product variants and brand-new template and clause names through the one publishing flow (issue 17):
published by two people, used by the next deal without a restart, a running deal keeps the declaration it
pinned, a broken draft is refused and a broken row affects only itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from app.agreements.service import agreement_data, render_html
from app.db.definition_models import DefinitionVersion
from app.db.models import Deal, User
from app.deals import service as deals
from app.definitions import publishing
from app.definitions.kinds import content_sha256
from app.platform.config import ROOT
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from app.studio.runtime_catalog import build_catalog
from tests.conftest import PASSWORD
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    bank_signing_key,
    colleague,
    load_deal,
    notification,
    patch_city,
    post_callback,
    virtual_account,
)
from tests.integration.test_definition_publishing import pass_simulation
from tests.integration.test_product_variants import NEW_HOME_FORM

CMBC = json.loads((ROOT / "bank_configs" / "cmbc.json").read_text(encoding="utf-8"))
NEW_HOME = json.loads((ROOT / "products" / "new_home_supervision.json").read_text(encoding="utf-8"))
NEW_HOME_TEMPLATE = (ROOT / "agreement_templates" / "new_home_supervision" / "v1" / "agreement.html.j2").read_text(
    encoding="utf-8"
)
SHANGHAI_NEW_HOME = json.loads((ROOT / "city_configs" / "310000.json").read_text(encoding="utf-8"))["products"][
    "new_home_supervision"
]
PLUS = "new_home_plus"


def published(rt: Runtime, kind: str, name: str, content: str, author: str = "ops") -> None:
    """`content` through the whole flow: draft and submission by `author`, approval and publication by reviewer."""
    publishing.save_draft(rt, kind, name, content, author)
    publishing.submit(rt, kind, name, author)
    pass_simulation(rt, kind, name)
    publishing.review(rt, kind, name, "reviewer", "同意", approve=True)
    publishing.publish(rt, kind, name, "reviewer")


def text(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


def cmbx(keys_dir: Path) -> dict[str, Any]:
    """A bank known to no file: cmbc's facts under another code, its seal certificate in the config (the
    simulated cmbc's, so the test speaks as the bank with that key)."""
    certificate = (keys_dir / "banks" / "cmbc.cert.pem").read_text()
    return CMBC | {"code": "cmbx", "name": "示例民商银行", "short_name": "民商", "certificate": certificate}


def test_a_bank_published_in_the_flow_serves_the_next_deal_without_a_restart(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    bank = cmbx(keys_dir)
    broken = bank | {"protocol": "v2"}
    publishing.save_draft(rt, "bank", "cmbx", text(broken), "ops")
    with pytest.raises(publishing.DefinitionInvalid) as refused:
        publishing.submit(rt, "bank", "cmbx", "ops")
    assert any("不支持的银行接口协议 v2" in problem for problem in refused.value.details)
    assert "cmbx" not in rt.banks and "cmbx" not in rt.known_banks

    running = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", dict(RESALE_FORM))
    published(rt, "bank", "cmbx", text(bank))
    assert rt.banks["cmbx"].name == "示例民商银行" and rt.banks["cmbx"].open_per_second == 6
    assert "ceb" in rt.banks, "the configured banks stay"
    catalog = build_catalog(rt.products, rt.workflows, rt.known_banks)
    assert catalog.banks["cmbx"] == "民商", "the config studio offers it"
    patch_city(rt, "110000", {"products": {"resale_escrow": {"banks": ["cmbx"]}}})
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", dict(RESALE_FORM))
    assert (load_deal(rt, deal_id).bank_code, load_deal(rt, running).bank_code) == ("cmbx", "ceb")
    deals.confirm_agreement(rt, agent, deal_id)
    with rt.db.uow() as uow:
        assert "示例民商银行" in render_html(rt, uow.session.get(Deal, deal_id))
    assert not (keys_dir / "banks" / "cmbx.pub.pem").exists(), "verified with the config's certificate"
    account_no = rt.known_banks["cmbx"].account_format.account_no(42)  # in the published number format
    opened = notification(
        "account_opened", request_id=virtual_account(rt, deal_id).request_id, account_no=account_no, account_name="存管"
    )
    status, answer = post_callback(client, keys_dir, opened, bank="cmbx", signing_key=cmbc_key(keys_dir))
    assert (status, answer["code"]) == (200, "OK"), answer
    arrive_at(client, keys_dir, account_no)
    assert load_deal(rt, deal_id).state == "funded"
    assert load_deal(rt, running).state == "created", "the running deal is untouched"


def cmbc_key(keys_dir: Path) -> bytes:
    return bank_signing_key(keys_dir, "cmbc")


def arrive_at(client: FlaskClient, keys_dir: Path, account_no: str) -> None:
    body = notification(
        "funds_arrived",
        account_no=account_no,
        amount_fen=CUSTODY_FEN,
        bank_reference="REF-CMBX-1",
        payer_name=RESALE_FORM["buyer_name"],
        payer_account=RESALE_FORM["buyer_bank_account"],
        arrived_at="2026-11-23T08:00:00Z",
    )
    status, answer = post_callback(client, keys_dir, body, bank="cmbx", signing_key=cmbc_key(keys_dir))
    assert (status, answer["code"]) == (200, "OK"), answer


def test_a_variant_with_a_new_template_and_clause_is_published_and_a_running_deal_keeps_its_declaration(
    rt: Runtime, users: dict[str, int]
) -> None:
    template = NEW_HOME_TEMPLATE.replace("协议</h1>", '协议</h1><p class="edition">增强版模板</p>')
    assert template != NEW_HOME_TEMPLATE
    variant = NEW_HOME | {"code": PLUS, "name": "新房资金监管（增强版）", "deal_prefix": "NP"}
    variant["agreement"] = {"template": f"{PLUS}/v1"}
    publishing.save_draft(rt, "product", PLUS, text(variant), "ops")
    with pytest.raises(publishing.DefinitionInvalid) as no_template:
        publishing.submit(rt, "product", PLUS, "ops")
    assert no_template.value.details == [f"/agreement/template：协议模板 {PLUS}/v1 不存在"]

    published(rt, "template", f"{PLUS}/v1/agreement.html.j2", template)  # a name no repository file has
    notice = '<section class="article"><h2>{{ clause_no }}　监管提示</h2><p>资金仅用于本项目。</p></section>'
    published(rt, "clause", "escrow_notice", notice)  # a clause name no repository file has
    published(rt, "product", PLUS, text(variant))
    assert PLUS in rt.products and rt.products.get(PLUS).deal_prefix == "NP"

    city = SHANGHAI_NEW_HOME | {"agreement": {"template": f"{PLUS}/v1", "clauses": ["dispute", "escrow_notice"]}}
    patch_city(rt, "310000", {"products": {PLUS: city}})
    agent = actor(rt, "agent")
    running = deals.create_deal(rt, agent, "310000", PLUS, dict(NEW_HOME_FORM))
    deal = load_deal(rt, running)
    assert deal.deal_no.startswith("NP310000") and deal.definitions is not None
    assert deal.definitions[f"product:{PLUS}"] == content_sha256(text(variant))
    with rt.db.uow() as uow:
        html = render_html(rt, uow.session.get(Deal, running))
    assert (
        '<h1>新房资金监管（增强版）协议</h1><p class="edition">增强版模板</p>' in html
        and "监管提示</h2><p>资金仅用于本项目。" in html
    )

    renamed = variant | {"name": "新房资金监管（第二版）", "parties": variant["parties"] | {"payee": "开发商"}}
    published(rt, "product", PLUS, text(renamed))
    fresh = deals.create_deal(rt, agent, "310000", PLUS, dict(NEW_HOME_FORM))
    with rt.db.uow() as uow:
        names = [agreement_data(rt, uow.session.get(Deal, i)).product_name for i in (running, fresh)]
    assert names == ["新房资金监管（增强版）", "新房资金监管（第二版）"], "the running deal keeps its declaration"

    moved = renamed | {"deal_prefix": "NQ", "base": "gov_escrow"}
    publishing.save_draft(rt, "product", PLUS, text(moved), "ops")
    with pytest.raises(publishing.DefinitionInvalid) as fixed:
        publishing.submit(rt, "product", PLUS, "ops")
    assert any("编号前缀不能再改" in p for p in fixed.value.details)
    assert any("基础业务不能再改" in p for p in fixed.value.details)


def test_the_author_never_approves_their_own_variant_and_a_broken_row_affects_only_itself(
    rt: Runtime, users: dict[str, int]
) -> None:
    variant = NEW_HOME | {"code": PLUS, "name": "新房资金监管（增强版）", "deal_prefix": "NP"}
    publishing.save_draft(rt, "product", PLUS, text(variant), "ops")
    publishing.submit(rt, "product", PLUS, "ops")
    pass_simulation(rt, "product", PLUS)
    with rt.db.uow() as uow:  # the author has since become a reviewer
        uow.session.execute(update(User).where(User.username == "ops").values(role="reviewer"))
        uow.commit()
    with pytest.raises(ValidationError) as own:
        publishing.review(rt, "product", PLUS, "ops", "同意", approve=True)
    assert own.value.code == "SELF_REVIEW"
    second = colleague(rt, "reviewer", PASSWORD)
    publishing.review(rt, "product", PLUS, second, "同意", approve=True)
    assert PLUS not in rt.products, "approved is not published"

    with rt.db.uow() as uow:  # only a hand-edited row could be this: a prefix twice, a bank that is not JSON
        for kind, name, content in (
            ("product", "shadow", text(NEW_HOME | {"code": "shadow", "deal_prefix": "RE"})),
            ("bank", "zzz", "{not json"),
        ):
            row = DefinitionVersion(kind=kind, name=name, version=1, status="published", content=content)
            row.content_sha256, row.author, row.reviewer = content_sha256(content), "ops", "reviewer"
            uow.session.add(row)
        uow.commit()
    rt.definitions.forget()  # a hand edit is read within FRESH_S; at once here
    assert "shadow" not in rt.products and "zzz" not in rt.banks and "zzz" not in rt.known_banks
    assert rt.products.get("resale_escrow").deal_prefix == "RE" and "new_home_supervision" in rt.products
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", dict(RESALE_FORM))
    assert load_deal(rt, deal_id).deal_no.startswith("RE110000")
