"""Builders for tests: a valid intake form, deals in a given state, signed bank callbacks."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.banks.protocol import BANK_PREFIX, sign_headers
from app.db.models import Deal, Payout, User, VirtualAccount
from app.deals import service as deals
from app.deals.service import Actor
from app.domain.cities import CitySource, FormSpec, merge_patch
from app.domain.forms.products import deal_fields
from app.domain.forms.schema_form import build_form, load_base_schema
from app.payouts.approvals import approve, refusal
from app.payouts.status import PayoutStatus
from app.payouts.submission import mark_sent, mark_submitted
from app.platform.runtime import Runtime
from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.keys import bank_private_key_path, provision_simulated_banks

RESALE_FORM = {
    "city_code": "110000",
    "product": "resale_escrow",
    "contract_no": "2026-BJ-0012345",
    "contract_signed_on": "2026-11-20",
    "contract_buyer_name": "张三",
    "contract_seller_name": "李四",
    "contract_property_address": "北京市朝阳区建国路1号1单元101",
    "payment_method": "全款",
    "buyer_name": "张三",
    "buyer_id_number": "11010519491231002X",
    "buyer_bank_name": "中国光大银行北京分行",
    "buyer_bank_account": "6226620012345678",
    "seller_name": "李四",
    "seller_id_number": "110101198001010053",
    "seller_bank_name": "中国工商银行北京分行",
    "seller_bank_account": "6222020200112233445",
    "property_address": "北京市朝阳区建国路1号1单元101",
    "certificate_no": "京(2024)朝阳区不动产权第0001234号",
    "price": "3500000",
    "custody_amount": "1234567.89",
}
# the parties and house of a rent-custody intake form (北京); tests add the lease fields they need
RENT_PARTIES = {
    "landlord_name": "李四",
    "landlord_id_number": "110101198001010053",
    "landlord_phone": "13812345678",
    "landlord_bank_card": "6222600260001072444",
    "tenant_name": "张三",
    "tenant_id_number": "11010519491231002X",
    "tenant_phone": "13912345678",
    "property_address": "北京市朝阳区建国路1号1单元101",
    "lease_starts_on": "2026-12-01",
    "lease_contract_no": "BJZL-2026-0001",
}
INTENT_FORM = {
    "buyer_name": "张三",
    "buyer_id_number": "11010519491231002X",
    "buyer_phone": "13912345678",
    "developer_name": "上海示例置业有限公司",
    "developer_uscc": "91350100M000100Y43",
    "developer_bank_account": "6222600260001072444",
    "property_address": "上海市浦东新区世纪大道1号",
    "deposit_amount": "20000",
    "signed_on": "2026-11-20",
    "expires_on": "2026-12-20",
}
CUSTODY_FEN = 123_456_789
HAPPY_PATH_EVENTS = [
    "create",
    "confirm",
    "account_opened",
    "funds_arrived",
    "funds_arrived",
    "title_transferred",
    "payout_succeeded",
]


def actor(rt: Runtime, username: str) -> Actor:
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        assert user is not None
        return Actor(user.id, user.username, user.role)


def colleague(rt: Runtime, role: str, password: str) -> str:
    """A second user of `role` (named `<role>2`, set up directly like the `users` fixture's): four eyes need
    two people of one role. Returns the username."""
    from app.users.service import create_user

    username = f"{role}2"
    create_user(rt, username, password, role, f"第二位{role}")
    return username


def confirmed_deal(rt: Runtime, agent: str = "agent", city: str = "110000") -> int:
    """A deal whose agreement is signed and whose account opening was requested."""
    who = actor(rt, agent)
    deal_id = deals.create_deal(rt, who, city, "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, who, deal_id)
    return deal_id


def load_deal(rt: Runtime, deal_id: int) -> Deal:
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        assert deal is not None
        _ = (deal.virtual_account, deal.payouts, deal.agreement, deal.events)
        return deal


def virtual_account(rt: Runtime, deal_id: int) -> VirtualAccount:
    with rt.db.uow() as uow:
        account = uow.session.scalar(select(VirtualAccount).where(VirtualAccount.deal_id == deal_id))
        assert account is not None
        return account


def notification(kind: str, **fields: Any) -> dict[str, Any]:
    return {"notification_id": f"N-{uuid.uuid4().hex}", "type": kind, **fields}


SIMULATED_BANK_KEYS: dict[Path, Path] = {}  # a platform key folder -> its simulated banks' own folder (conftest)


SEALS_VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)  # before every fake clock of the tests (signing times are checked)


def provision_key_folders(keys_dir: Path, bank_keys_dir: Path, bank_codes: Iterable[str] = SIMULATED_BANKS) -> None:
    """A platform key folder and its simulated banks' own (app.tools.banksim.keys.provision_simulated_banks),
    paired so that the helpers below find the banks' keys from the platform's folder."""
    provision_simulated_banks(keys_dir, bank_keys_dir, bank_codes, certificate_valid_from=SEALS_VALID_FROM)
    SIMULATED_BANK_KEYS[Path(keys_dir)] = Path(bank_keys_dir)


def simulated_banks_folder(keys_dir: Path) -> Path:
    """The simulated banks' own key folder paired with the platform key folder `keys_dir` (what a simulator
    for that platform is started with)."""
    return SIMULATED_BANK_KEYS[Path(keys_dir)]


def bank_signing_key(keys_dir: Path, bank: str = "ceb") -> bytes:
    """`bank`'s private key, as its simulator holds it, for the platform whose key folder is `keys_dir` (the
    platform's folder has the banks' certificates only): tests that speak as the bank sign with it."""
    return bank_private_key_path(simulated_banks_folder(keys_dir), bank).read_bytes()


def approved_by_others(rt: Runtime, payout_id: str) -> None:
    """A payout awaiting approval gets the approvals it needs from the test's ops and finance users that may
    give one (never its requester), through the approval service, so it goes to the bank."""
    for username in ("ops", "finance", "ops2", "finance2"):
        with rt.db.uow() as uow:
            payout = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id))
            user = uow.session.scalar(select(User).where(User.username == username))
            assert payout is not None, payout_id
            if payout.status != PayoutStatus.AWAITING_APPROVAL:
                return
            who = None if user is None else Actor(user.id, user.username, user.role)
            if who is None or refusal(who, payout, payout.deal) is not None:
                continue
        approve(rt, who, payout_id)
    assert load_payout_status(rt, payout_id) == PayoutStatus.PENDING, "not enough approvers for this payout"


def load_payout_status(rt: Runtime, payout_id: str) -> str:
    with rt.db.uow() as uow:
        status = uow.session.scalar(select(Payout.status).where(Payout.payout_id == payout_id))
        assert status is not None, payout_id
        return status


def bank_accepted(rt: Runtime, payout_id: str, bank_reference: str = "BANK-REF-1") -> None:
    """The bank accepted the payout: what people (approvals it awaits, `approved_by_others`) and the
    `submit_payout` job do: record that it is sent, before the bank call, and that the bank has it (the
    platform refuses a result for a payout never sent). For tests that send the bank's result themselves; a
    payout submitted already is left as it is."""
    approved_by_others(rt, payout_id)
    with rt.db.uow() as uow:
        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id).with_for_update())
        assert payout is not None, payout_id
        if payout.status == PayoutStatus.PENDING:
            mark_sent(payout, rt.clock())
        mark_submitted(uow.session, payout, bank_reference, rt.clock())
        uow.commit()


def post_callback(
    client: FlaskClient,
    keys_dir: Path,
    body: dict[str, Any] | bytes,
    *,
    bank: str = "ceb",
    signing_key: bytes | None = None,
    now: float | None = None,
    nonce: str | None = None,
) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    key = signing_key or bank_signing_key(keys_dir, bank)
    headers = sign_headers(BANK_PREFIX, key, raw, now=now, nonce=nonce)
    answer = client.post(f"/api/banks/{bank}/notifications", data=raw, headers=headers, content_type="application/json")
    return answer.status_code, answer.get_json()


def open_account(client: FlaskClient, keys_dir: Path, rt: Runtime, deal_id: int, account_no: str) -> None:
    account = virtual_account(rt, deal_id)
    body = notification("account_opened", request_id=account.request_id, account_no=account_no, account_name="存管")
    status, answer = post_callback(client, keys_dir, body)
    assert (status, answer["code"]) == (200, "OK"), answer


def arrive(
    client: FlaskClient,
    keys_dir: Path,
    account_no: str,
    amount_fen: int,
    reference: str,
    **extra: Any,
) -> dict[str, Any]:
    body = notification(
        "funds_arrived",
        bank_reference=reference,
        account_no=account_no,
        amount_fen=amount_fen,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
        **extra,
    )
    status, answer = post_callback(client, keys_dir, body)
    assert status == 200, answer
    return body


@dataclass(frozen=True)
class _PatchedSource:
    """The runtime's city source, with one config merged with a patch (RFC 7396) as a publication would."""

    base: CitySource
    stem: str
    patch: dict[str, Any]

    def read(self, stem: str) -> bytes | None:
        raw = self.base.read(stem)
        if stem != self.stem or raw is None:
            return raw
        return json.dumps(merge_patch(json.loads(raw), self.patch), ensure_ascii=False).encode()

    def stems(self) -> list[str]:
        return self.base.stems()


def patch_city(rt: Runtime, stem: str, patch: dict[str, Any]) -> None:
    """From now on `rt` reads config `stem` merged with `patch` (the other configs as before)."""
    rt.cities.source = _PatchedSource(rt.cities.source, stem, patch)


HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def confirmation_fields(page: str) -> MultiDict[str, str]:
    """The hidden fields of a money-moving step's confirmation form (CSRF, confirmation token, inputs; a batch's
    rows are one field each)."""
    form = page.split('id="money-confirmation"', 1)[1]
    return MultiDict([(name, html.unescape(value)) for name, value in HIDDEN_FIELD.findall(form)])


def post_confirmed(client: FlaskClient, url: str, data: dict[str, str], **options: Any) -> Any:
    """POST a deal or payout action as a person does: when it moves money the first answer is its confirmation
    page (nothing done yet), whose form is then submitted; other actions answer the first POST."""
    first = client.post(url, data=data)
    if first.status_code != 200 or 'name="confirm_token"' not in first.text:
        if options.get("follow_redirects") and first.status_code == 302:
            return client.get(first.headers["Location"])
        return first
    return client.post(url, data=confirmation_fields(first.text), **options)


def resale_columns(form: dict[str, str], city_form: FormSpec | None = None) -> dict[str, Any]:
    """A resale intake form validated and mapped to the deal's columns as `create_deal` does (no database)."""
    clean = build_form("resale_escrow", load_base_schema("resale_escrow"), city_form).validate(form)
    return deal_fields("resale_escrow", clean, {}, city_form).columns
