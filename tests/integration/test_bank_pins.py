"""A deal pins its bank's config (issue 17): a later published change of the bank - its name, account-number format
and daily cut-off, what the agreement states and the deadlines count with - does not change running deals; the
next deal takes it. (URL, keys, opening limits and the statement's layout are operational: they follow the bank
as published, see test_definition_kinds_publishing.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from flask.testing import FlaskClient

from app.agreements.service import agreement_data
from app.db.models import Deal
from app.deals import service as deals
from app.deals.sample_forms import sample_form
from app.definitions.kinds import content_sha256
from app.domain.banks import bank_from_document
from app.platform.config import ROOT, BankEndpoint
from app.platform.runtime import Runtime
from tests.factories import actor, bank_signing_key, load_deal, notification, patch_city, post_callback, virtual_account
from tests.integration.test_definition_kinds_publishing import published, text

CMBC_FILE = (ROOT / "bank_configs" / "cmbc.json").read_text(encoding="utf-8")
CMBC = json.loads(CMBC_FILE)
RENAMED = "中国民生银行股份有限公司"
CHANGED = CMBC | {
    "name": RENAMED,
    "cut_off": "16:00",
    "account_number": CMBC["account_number"] | {"pattern": "^6217[0-9]{13}$", "prefix": "6217"},
}
# Wed 30 Sep 2026, 16:30 in Shanghai: before cmbc's 17:00 cut-off (the 3 working days of 杭州's funding deadline are
# Thu 8, Fri 9 and Sat 10 Oct, 调休), after the 16:00 it is changed to (Fri 9, Sat 10, Mon 12 Oct)
OPENED_AT = datetime(2026, 9, 30, 8, 30, tzinfo=UTC)
DUE_AT_17 = datetime(2026, 10, 10, 16, 0, tzinfo=UTC)
DUE_AT_16 = datetime(2026, 10, 12, 16, 0, tzinfo=UTC)


def _gov_deal(rt: Runtime) -> int:
    """A 杭州 government-escrow deal (funding deadline: 3 working days after the bank's cut-off) at cmbc."""
    form = sample_form(rt.cities.get("330100").product("gov_escrow"), rt.products.get("gov_escrow"))
    return deals.create_deal(rt, actor(rt, "agent"), "330100", "gov_escrow", form | {"custody_bank": "cmbc"})


def _opened(client: FlaskClient, keys_dir: Path, rt: Runtime, deal_id: int, account_no: str) -> tuple[int, str]:
    body = notification(
        "account_opened", request_id=virtual_account(rt, deal_id).request_id, account_no=account_no, account_name="存管"
    )
    status, answer = post_callback(client, keys_dir, body, bank="cmbc", signing_key=bank_signing_key(keys_dir, "cmbc"))
    return status, answer["code"]


def _deadline(rt: Runtime, deal_id: int) -> datetime | None:
    (deadline,) = deals.deal_view(rt, actor(rt, "agent"), deal_id).deadlines
    return deadline.due_at


def _bank_name(rt: Runtime, deal_id: int) -> str:
    with rt.db.uow() as uow:
        return agreement_data(rt, uow.session.get_one(Deal, deal_id)).bank_name


def test_a_running_deal_keeps_the_bank_config_it_started_with(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    rt.banks.setdefault("cmbc", BankEndpoint("cmbc", "中国民生银行", "http://127.0.0.1:9"))
    patch_city(rt, "330100", {"products": {"gov_escrow": {"banks": ["cmbc"]}}})
    rt.clock = lambda: OPENED_AT
    running = _gov_deal(rt)
    assert load_deal(rt, running).definitions["bank:cmbc"] == content_sha256(CMBC_FILE), "the file is the seed"

    published(rt, "bank", "cmbc", text(CHANGED))
    assert rt.known_banks["cmbc"].cut_off.isoformat() == "16:00:00" and rt.known_banks["cmbc"].name == RENAMED
    fresh = _gov_deal(rt)
    assert load_deal(rt, fresh).definitions["bank:cmbc"] == content_sha256(text(CHANGED))
    for deal_id in (running, fresh):
        deals.confirm_agreement(rt, actor(rt, "agent"), deal_id)
    assert (_bank_name(rt, running), _bank_name(rt, fresh)) == ("中国民生银行", RENAMED)
    agent = actor(rt, "agent")
    shown = (deals.deal_view(rt, agent, running).bank_name, deals.deal_view(rt, agent, fresh).bank_name)
    assert shown == ("中国民生银行", RENAMED), "the deal page names the bank as its agreement does"

    old_format = bank_from_document(CMBC, "cmbc.json").account_format.account_no(117)  # 6216…, as the file says
    assert _opened(client, keys_dir, rt, fresh, old_format) == (409, "ACCOUNT_NUMBER_INVALID"), "the new format"
    assert _opened(client, keys_dir, rt, running, old_format) == (200, "OK"), "the format it started with"
    new_format = rt.known_banks["cmbc"].account_format.account_no(118)
    assert new_format.startswith("6217") and _opened(client, keys_dir, rt, fresh, new_format) == (200, "OK")
    assert (load_deal(rt, running).state, load_deal(rt, fresh).state) == ("awaiting_funds", "awaiting_funds")
    assert (_deadline(rt, running), _deadline(rt, fresh)) == (DUE_AT_17, DUE_AT_16), "each counts with its cut-off"
