"""Issue 15 case 5: the platform holds no bank's private key, so it cannot speak as a bank. An arrival signed
with any key the platform holds (or any other key that is not the bank's) is refused through HTTP and books
nothing; `flask keys init` creates no bank key; the bank's own key is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.crypto.keys import generate_sm2_private_key_pem
from app.db.models import BankNotification
from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime
from tests.factories import (
    CUSTODY_FEN,
    bank_signing_key,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    provision_key_folders,
)
from tests.factories import post_callback as post

ACCOUNT = "6226000000000005"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's own platform key folder (paired with its own banks' folder): what the platform holds is
    judged on a folder no other test of the process has written into."""
    platform, banks = tmp_path_factory.mktemp("own-keys"), tmp_path_factory.mktemp("own-bank-sim-keys")
    provision_key_folders(platform, banks)
    return platform


def _custody_fen(rt: Runtime, deal_no: str) -> int:
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(f"custody:{deal_no}")


def _notifications(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(BankNotification)) or 0


def _arrival(reference: str) -> dict:
    return notification(
        "funds_arrived",
        bank_reference=reference,
        account_no=ACCOUNT,
        amount_fen=CUSTODY_FEN,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
    )


def test_an_arrival_signed_with_a_key_that_is_not_the_banks_is_refused_and_books_nothing(
    app: Flask, client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    keys_init = app.test_cli_runner().invoke(args=["keys", "init"])
    assert keys_init.exit_code == 0 and "警告" not in keys_init.output, keys_init.output
    held = sorted(keys_dir.rglob("*.key.pem"))
    own = ["root.key.pem", "platform.key.pem"]  # the platform CA's root key (ca/) and the seal key
    assert [path.name for path in held] == own, "the platform holds no bank's private key"
    imported = {path.name for path in (keys_dir / "banks").iterdir()}
    assert {"ceb.cert.pem", "ceb.pub.pem", "ceb.seal.der"} <= imported, "the bank's certificate, public key, seal"
    assert all(name.endswith((".cert.pem", ".pub.pem", ".seal.der")) for name in imported), imported

    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    deal_no = load_deal(rt, deal_id).deal_no
    before = _notifications(rt)
    forgers = {"the platform's own key": held[0].read_bytes(), "a stranger's key": generate_sm2_private_key_pem()}
    for who, key in forgers.items():
        status, answer = post(client, keys_dir, _arrival(f"REF-FORGED-{len(who)}"), signing_key=key)
        assert (status, answer["code"]) == (401, "BAD_SIGNATURE"), who
    deal = load_deal(rt, deal_id)
    assert deal.state == "awaiting_funds" and _custody_fen(rt, deal_no) == 0, "nothing booked, no 已入金"
    assert _notifications(rt) == before, "a forged notification is not even kept"

    status, answer = post(client, keys_dir, _arrival("REF-REAL"), signing_key=bank_signing_key(keys_dir, "ceb"))
    assert (status, answer["code"]) == (200, "OK"), "signed by the bank itself, with the key only it holds"
    assert load_deal(rt, deal_id).state == "funded" and _custody_fen(rt, deal_no) == CUSTODY_FEN
