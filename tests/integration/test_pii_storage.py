"""PII at rest: authenticated SM4 values carrying their key id, rotation (new key encrypts, old values stay
readable, re-encryption), keyed SM3 blind indexes written on insert/update, search by ID/phone, the
migration's backfill and `flask pii reindex`, audited unmasked views."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select, text

from app import create_app
from app.db.audit_models import AuditEntry
from app.db.models import Deal
from app.db.pii import keyring, read_pii_keys, rotate_pii_key
from app.db.session import make_engine
from app.deals import service as deals
from app.domain.identity import id_check_char
from app.pii.service import find_deals_by_party, reencrypt, reindex, unmask_deal_parties
from app.platform.cli import alembic_config
from app.platform.errors import ConfigError, CryptoError, ValidationError
from app.platform.runtime import Runtime
from tests.conftest import csrf_token, make_config
from tests.factories import RESALE_FORM, actor

BUYER_PHONE, SELLER_PHONE = "13812341234", "13912345678"
FORM = {**RESALE_FORM, "buyer_phone": BUYER_PHONE, "seller_phone": SELLER_PHONE}


def _id(prefix17: str) -> str:
    return prefix17 + id_check_char(prefix17)


OTHER_BUYER = _id("11010119900307123")
OTHER_SELLER = _id("31010419850101004")


@pytest.fixture
def own_keys(tmp_path: Path, keys_dir: Path) -> Iterator[Path]:
    """A copy of the key folder this test may rotate; the shared keyring is restored afterwards."""
    folder = tmp_path / "keys"
    shutil.copytree(keys_dir, folder)
    keyring.configure_from_folder(folder)
    yield folder
    keyring.configure_from_folder(keys_dir)


def _stored(rt: Runtime, column: str, deal_id: int) -> str:
    with rt.db.engine.connect() as connection:
        return connection.execute(text(f"SELECT {column} FROM deals WHERE id = :id"), {"id": deal_id}).scalar_one()


def _two_deals(rt: Runtime) -> tuple[int, int]:
    agent = actor(rt, "agent")
    first = deals.create_deal(rt, agent, "110000", "resale_escrow", FORM)
    other = {**RESALE_FORM, "buyer_id_number": OTHER_BUYER, "seller_id_number": OTHER_SELLER}
    second = deals.create_deal(rt, agent, "110000", "resale_escrow", {**other, "buyer_phone": SELLER_PHONE})
    return first, second


def test_values_are_authenticated_and_rotation_keeps_old_ones_readable(
    rt: Runtime, users: dict, own_keys: Path
) -> None:
    first, _ = _two_deals(rt)
    stored = _stored(rt, "buyer_id_number", first)
    assert stored.startswith("k1$") and RESALE_FORM["buyer_id_number"] not in stored
    token = bytearray(base64.b64decode(stored[3:]))
    token[20] ^= 1
    with pytest.raises(CryptoError):
        keyring.decrypt("k1$" + base64.b64encode(bytes(token)).decode())

    assert rotate_pii_key(own_keys) == "k2" and (own_keys / "pii.k2.key").stat().st_mode & 0o777 == 0o600
    keyring.configure_from_folder(own_keys)
    assert keyring.active_key_id == "k2" and set(read_pii_keys(own_keys)) == {"k1", "k2"}
    newer = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", FORM)
    assert _stored(rt, "buyer_id_number", newer).startswith("k2$")
    assert [d.id for d in find_deals_by_party(rt, id_number=RESALE_FORM["buyer_id_number"])] == [newer, first]
    with rt.db.uow() as uow:
        old = uow.session.get(Deal, first)
        assert old is not None and old.buyer_id_number == RESALE_FORM["buyer_id_number"], "k1 still decrypts"

    changed = reencrypt(rt)
    assert changed["deals"] == 2
    assert all(_stored(rt, "seller_bank_account", d).startswith("k2$") for d in (first, newer))
    (own_keys / "pii.key").unlink()
    keyring.configure_from_folder(own_keys)
    with rt.db.uow() as uow:
        assert uow.session.get(Deal, first).seller_phone == SELLER_PHONE  # type: ignore[union-attr]
    keyring.configure({"k2": b"\0" * 16}, "k2", None)
    with pytest.raises(ConfigError) as caught:
        keyring.decrypt("k1$" + stored[3:])
    assert caught.value.code == "PII_KEY_MISSING", "a retired key id is named, not guessed"


def test_blind_index_is_written_on_insert_and_update_and_finds_either_party(rt: Runtime, users: dict) -> None:
    first, second = _two_deals(rt)
    digest = _stored(rt, "buyer_id_bidx", first)
    assert len(digest) == 64 and digest != _stored(rt, "seller_id_bidx", first)
    assert _stored(rt, "buyer_phone_bidx", second) == _stored(rt, "seller_phone_bidx", first), "same phone"
    assert _stored(rt, "seller_phone_bidx", second) is None

    by_id = find_deals_by_party(rt, id_number=RESALE_FORM["buyer_id_number"].lower())
    assert [d.id for d in by_id] == [first]
    assert [d.id for d in find_deals_by_party(rt, id_number=f" {OTHER_SELLER} ")] == [second]
    assert [d.id for d in find_deals_by_party(rt, phone="+86 139-1234-5678")] == [second, first]
    assert [d.id for d in find_deals_by_party(rt, id_number=OTHER_BUYER, phone=SELLER_PHONE)] == [second]
    assert find_deals_by_party(rt, phone="13912345679") == []
    with pytest.raises(ValidationError):
        find_deals_by_party(rt)

    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, first)
        assert deal is not None
        deal.buyer_phone = "13700001111"
        uow.commit()
    assert [d.id for d in find_deals_by_party(rt, phone=BUYER_PHONE)] == []
    assert [d.id for d in find_deals_by_party(rt, phone="137 0000 1111")] == [first]


def test_migration_backfills_indexes_and_reindex_fills_what_it_could_not(
    database_url: str, own_keys: Path, tmp_path: Path
) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0009")
    engine = make_engine(database_url)
    columns = (
        "id, deal_no, city_code, product, bank_code, workflow_id, workflow_version, city_config_sha256,"
        " agreement_template, state, version, buyer_name, buyer_id_number, buyer_bank_name, buyer_bank_account,"
        " seller_name, seller_id_number, seller_bank_name, seller_bank_account, property_address, certificate_no,"
        " price_fen, custody_amount_fen, created_by_id, created_at, updated_at"
    )
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, username, display_name, role, password_hash, active, created_at)"
                    " VALUES (1, 'agent', 'a', 'agent', 'x', true, CURRENT_TIMESTAMP)"
                )
            )
            for deal_id, id_number in ((1, RESALE_FORM["buyer_id_number"]), (2, OTHER_BUYER)):
                connection.execute(
                    text(
                        f"INSERT INTO deals ({columns}) VALUES (:id, :no, '110000', 'resale_escrow', 'ceb', 'w', 1,"
                        " 'h', 't', 'draft', 1, '张三', :bid, 'b', :acct, '李四', :sid, 'b', :acct, 'addr', 'c',"
                        " 100, 100, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {
                        "id": deal_id,
                        "no": f"D{deal_id}",
                        "bid": keyring.encrypt(id_number),
                        "sid": keyring.encrypt(OTHER_SELLER),
                        "acct": keyring.encrypt("6226620012345678"),
                    },
                )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            filled = dict(connection.execute(text("SELECT id, buyer_id_bidx FROM deals")).all())
        assert filled[1] == keyring.blind_index("id", RESALE_FORM["buyer_id_number"])
        assert filled[2] == keyring.blind_index("id", OTHER_BUYER)

        with engine.begin() as connection:
            connection.execute(text("UPDATE deals SET buyer_id_bidx = NULL, seller_id_bidx = NULL"))
        migrated_rt: Runtime = create_app(make_config(tmp_path / "i", database_url, own_keys)).extensions[
            "cunguan.runtime"
        ]
        assert reindex(migrated_rt) == 2
        assert [d.deal_no for d in find_deals_by_party(migrated_rt, id_number=OTHER_SELLER)] == ["D2", "D1"]
        migrated_rt.db.dispose()
        command.downgrade(config, "0009")
        with engine.connect() as connection:
            assert "buyer_id_bidx" not in {column["name"] for column in inspect(connection).get_columns("deals")}
    finally:
        engine.dispose()


def test_migration_without_keys_leaves_indexes_for_reindex(database_url: str, own_keys: Path) -> None:
    saved = (dict(keyring._keys), keyring._active, keyring._index_key)
    config = alembic_config(database_url)
    command.upgrade(config, "0009")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, username, display_name, role, password_hash, active, created_at)"
                    " VALUES (1, 'agent', 'a', 'agent', 'x', true, CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO deals (id, deal_no, city_code, product, bank_code, workflow_id, workflow_version,"
                    " city_config_sha256, agreement_template, state, version, buyer_name, buyer_id_number,"
                    " buyer_bank_name, buyer_bank_account, seller_name, seller_id_number, seller_bank_name,"
                    " seller_bank_account, property_address, certificate_no, price_fen, custody_amount_fen,"
                    " created_by_id, created_at, updated_at) VALUES (1, 'D1', '110000', 'resale_escrow', 'ceb',"
                    " 'w', 1, 'h', 't', 'draft', 1, 'n', :v, 'b', :v, 'n', :v, 'b', :v, 'a', 'c', 100, 100, 1,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"v": keyring.encrypt(OTHER_BUYER)},
            )
        keyring._keys, keyring._active, keyring._index_key = {}, None, None
        command.upgrade(config, "0010")  # no keys in this process: columns added, rows left for reindex
        with engine.connect() as connection:
            assert connection.execute(text("SELECT buyer_id_bidx FROM deals")).scalar_one() is None
    finally:
        keyring._keys, keyring._active, keyring._index_key = saved
        engine.dispose()


def test_flask_keys_rotate_pii_and_pii_reindex(app: Flask, own_keys: Path) -> None:
    app.extensions["cunguan.config"].keys_dir = own_keys  # type: ignore[misc]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["keys", "rotate-pii"])
    assert result.exit_code == 0 and "k2" in result.output, result.output
    assert (own_keys / "pii.k2.key").exists() and keyring.active_key_id == "k2"
    result = runner.invoke(args=["pii", "reindex"])
    assert result.exit_code == 0 and "0 笔" in result.output, result.output


Login = Callable[[str], FlaskClient]


def test_admin_search_by_id_and_phone_shows_masks_and_unmasking_is_audited(
    rt: Runtime, login: Login, users: dict
) -> None:
    first, second = _two_deals(rt)
    ops = login("ops")
    page = ops.get("/admin/deals/", query_string={"party_phone": "139 1234 5678"}).text
    assert len(re.findall(r'href="/admin/deals/\d+"', page)) == 2
    page = ops.get("/admin/deals/", query_string={"party_id": OTHER_SELLER}).text
    assert f'href="/admin/deals/{second}"' in page and f'href="/admin/deals/{first}"' not in page
    assert OTHER_SELLER not in page.replace(f'value="{OTHER_SELLER}"', ""), "only the search box echoes it"
    assert OTHER_SELLER[:3] + "*" * 11 + OTHER_SELLER[-4:] in page
    detail = ops.get(f"/admin/deals/{first}").text
    assert "110***********002X" in detail and "138****1234" in detail and "**** 5678" in detail
    assert RESALE_FORM["buyer_id_number"] not in detail and "显示完整信息" not in detail, "ops only sees masks"
    token = csrf_token(detail)
    assert ops.post(f"/admin/deals/{first}/unmask", data={"csrf_token": token, "reason": "核对"}).status_code == 403
    with pytest.raises(ValidationError):
        unmask_deal_parties(rt, actor(rt, "auditor"), first, "核对身份")

    finance = login("finance")
    detail = finance.get(f"/admin/deals/{first}").text
    assert "显示完整信息" in detail and RESALE_FORM["buyer_id_number"] not in detail
    refused = finance.post(f"/admin/deals/{first}/unmask", data={"csrf_token": csrf_token(detail), "reason": ""})
    assert refused.status_code == 302
    shown = finance.post(
        f"/admin/deals/{first}/unmask", data={"csrf_token": csrf_token(detail), "reason": "客户来电核对收款账户"}
    )
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    for full in (RESALE_FORM["buyer_id_number"], BUYER_PHONE, RESALE_FORM["seller_bank_account"], SELLER_PHONE):
        assert full in shown.text, full
    with rt.db.uow() as uow:
        entries = list(uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "pii.unmask")))
    assert len(entries) == 1, "the refused attempt wrote nothing"
    assert entries[0].actor == "user:finance" and entries[0].subject.startswith("deal:")
    assert entries[0].detail["reason"] == "客户来电核对收款账户"
    assert RESALE_FORM["buyer_id_number"] not in str(entries[0].detail)
