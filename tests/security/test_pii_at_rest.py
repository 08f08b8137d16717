"""Issue 16, PII at rest: a deal run through the services and HTTP (intake, signed agreement, arrivals with
the payer's name and account, an unknown account's money in suspense, a refused callback kept as an alert,
a refund to the payer) leaves no name, address, certificate number, ID number, phone or account in plain
text in any column of any table; what was stored still reads back, the agreement PDF still downloads and
verifies, and the migration encrypts rows written before it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy import select, text
from sqlalchemy.orm import Session, load_only

from app.db.base import Base
from app.db.callback_models import CallbackAlert
from app.db.models import Agreement, BankNotification, Deal, Payout, SuspenseItem
from app.db.pii import keyring
from app.db.session import make_engine
from app.deals import service as deals
from app.domain.identity import id_check_char
from app.pdf.verify import verify_pdf
from app.platform.cli import alembic_config
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    bank_accepted,
    notification,
    open_account,
    post_callback,
    post_confirmed,
)

ACCOUNT = "6226000000000777"
BUYER_ID = "32010219870611" + "043" + id_check_char("32010219870611043")
SELLER_ID = "44030419750923" + "001" + id_check_char("44030419750923001")
PII = {
    "buyer_name": "欧阳明远",
    "seller_name": "司马青禾",
    "property_address": "北京市海淀区知春路七十七号院三单元九零二",
    "certificate_no": "京(2025)海淀区不动产权第7654321号",
    "buyer_id_number": BUYER_ID,
    "seller_id_number": SELLER_ID,
    "buyer_phone": "13698765432",
    "seller_phone": "15876543219",
    "buyer_bank_account": "6228480402564890018",
    "seller_bank_account": "6217001930012345678",
}
PAYER_NAME, PAYER_ACCOUNT = "诸葛付青", "6230580000123456789"
STRANGER_NAME, STRANGER_ACCOUNT = "上官陌生", "6214830112345670001"
FORM = {
    **RESALE_FORM,
    **PII,
    "contract_buyer_name": PII["buyer_name"],
    "contract_seller_name": PII["seller_name"],
    "contract_property_address": PII["property_address"],
}


def _arrival(
    client: FlaskClient, keys_dir: Path, account_no: str, reference: str, payer: tuple[str, str]
) -> dict[str, Any]:
    body = notification(
        "funds_arrived",
        bank_reference=reference,
        account_no=account_no,
        amount_fen=CUSTODY_FEN,
        payer_name=payer[0],
        payer_account=payer[1],
        arrived_at="2026-11-23T08:00:00Z",
    )
    status, answer = post_callback(client, keys_dir, body)
    assert status == 200, answer
    return body


def _plain_values() -> list[str]:
    return [*PII.values(), PAYER_NAME, PAYER_ACCOUNT, STRANGER_NAME, STRANGER_ACCOUNT]


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")  # byte for byte: a UTF-8 needle is searched as its bytes
    if isinstance(value, str) and value[:1] in ("{", "["):  # JSON on SQLite: read back its unicode escapes
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _needle(value: str) -> list[str]:
    """A value as text and as its UTF-8 bytes read byte for byte (how a blob holding it would read)."""
    return [value, value.encode().decode("latin-1")]


def _plain_pii_at_rest(rt: Runtime) -> list[tuple[str, str, str]]:
    """(table, column, value) for every plain PII value found in any column of any table, read raw."""
    found = []
    with rt.db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            result = connection.execute(text(f"SELECT * FROM {table.name}"))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    stored = _as_text(value)
                    found += [
                        (table.name, column, plain)
                        for plain in _plain_values()
                        if any(needle in stored for needle in _needle(plain))
                    ]
    return sorted(set(found))


def _act(client: FlaskClient, deal_id: int, event: str, reason: str) -> None:
    token = csrf_token(client.get(f"/deals/{deal_id}").text)
    answer = post_confirmed(client, f"/deals/{deal_id}/actions/{event}", {"csrf_token": token, "reason": reason})
    assert answer.status_code == 302


def _approve(client: FlaskClient, deal_id: int, payout_id: str) -> None:
    token = csrf_token(client.get(f"/deals/{deal_id}").text)
    assert post_confirmed(client, f"/payouts/{payout_id}/approve", {"csrf_token": token}).status_code == 302


def test_no_pii_is_stored_in_plain_text_anywhere_and_everything_reads_back(
    client: FlaskClient,
    rt: Runtime,
    keys_dir: Path,
    users: dict[str, int],
    login: Callable[[str], FlaskClient],
) -> None:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrival = _arrival(client, keys_dir, ACCOUNT, "REF-PII-1", (PAYER_NAME, PAYER_ACCOUNT))
    _arrival(client, keys_dir, "6226000000000999", "REF-PII-2", (STRANGER_NAME, STRANGER_ACCOUNT))  # suspense
    assert post_callback(client, keys_dir, arrival | {"amount_fen": 1})[0] == 409  # same id, other body: an alert
    _act(login("ops"), deal_id, "cancel", "买卖双方解约，申请退款")
    with rt.db.uow() as uow:
        refund = uow.session.scalars(select(Payout).where(Payout.deal_id == deal_id)).one()
    _approve(login("finance"), deal_id, refund.payout_id)
    bank_accepted(rt, refund.payout_id)
    result = notification(
        "payout_result", payout_id=refund.payout_id, bank_reference="B-PII", status="succeeded", failure_reason=None
    )
    status, answer = post_callback(client, keys_dir, result)
    assert status == 200, answer

    assert _plain_pii_at_rest(rt) == []

    with rt.db.uow() as uow:
        deal = uow.session.get_one(Deal, deal_id)
        assert {key: getattr(deal, key) for key in PII} == PII, "every column reads back as it was typed"
        assert deal.state == "refunded"
        refund = uow.session.get_one(Payout, refund.id)
        assert (refund.payee_name, refund.payee_account) == (PAYER_NAME, PAYER_ACCOUNT)
        item = uow.session.scalars(select(SuspenseItem)).one()
        assert (item.payer_name, item.payer_account) == (STRANGER_NAME, STRANGER_ACCOUNT)
        bodies = [json.loads(n.raw_body) for n in uow.session.scalars(select(BankNotification))]
        assert {"REF-PII-1", "REF-PII-2"} <= {body.get("bank_reference") for body in bodies}
        alert = uow.session.scalars(select(CallbackAlert)).one()
        assert json.loads(alert.raw_body)["payer_account"] == PAYER_ACCOUNT
        agreement = uow.session.scalars(select(Agreement)).one()
        assert PII["property_address"] in agreement.html

    pdf = login("agent").get(f"/deals/{deal_id}/agreement.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert len(PdfReader(io.BytesIO(pdf.data)).pages) >= 1
    assert verify_pdf(pdf.data, rt.keys.platform_certificate_pem).valid


def test_the_admin_still_lists_a_deals_callbacks_by_its_account(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int], login: Callable[[str], FlaskClient]
) -> None:
    """The bodies are encrypted: the list goes by the account stored beside them, not by the body's text."""
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    _arrival(client, keys_dir, ACCOUNT, "REF-ADMIN-1", (PAYER_NAME, PAYER_ACCOUNT))
    page = login("ops").get(f"/admin/deals/{deal_id}").text
    assert "REF-ADMIN-1" in page and "签章有效" in page


def test_migration_encrypts_rows_written_before_it(database_url: str, keys_dir: Path) -> None:
    keyring.configure_from_folder(keys_dir)  # as `flask db upgrade` does
    config = alembic_config(database_url)
    command.upgrade(config, "0025")  # (0027's rows: the test below)
    engine = make_engine(database_url)
    name, address, certificate = PII["buyer_name"], PII["property_address"], PII["certificate_no"]
    body = json.dumps({"notification_id": "N-OLD", "account_no": ACCOUNT, "payer_account": PAYER_ACCOUNT})
    pdf = b"%PDF-1.7 old agreement"
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
                    " seller_name, property_address, certificate_no, price_fen, custody_amount_fen, facts,"
                    " created_by_id, created_at, updated_at) VALUES (1, 'D1', '110000', 'resale_escrow', 'ceb',"
                    " 'w', 1, 'h', 't', 'draft', 1, :name, :id_number, :name, :address, :certificate, 100, 100,"
                    " '{}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"name": name, "id_number": keyring.encrypt(BUYER_ID), "address": address, "certificate": certificate},
            )
            connection.execute(
                text(
                    "INSERT INTO agreements (deal_id, template, html, pdf, pdf_sm3, signed_at)"
                    " VALUES (1, 't', :html, :pdf, 'x', CURRENT_TIMESTAMP)"
                ),
                {"html": f"<p>{address}</p>", "pdf": pdf},
            )
            connection.execute(
                text(
                    "INSERT INTO bank_notifications (bank_code, notification_id, type, raw_body, received_at)"
                    " VALUES ('ceb', 'N-OLD', 'funds_arrived', :body, CURRENT_TIMESTAMP)"
                ),
                {"body": body},
            )
        command.upgrade(config, "0026")
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT buyer_name, property_address, certificate_no FROM deals")).one()
            raw = connection.execute(text("SELECT raw_body, account_no FROM bank_notifications")).one()
            html, stored_pdf = connection.execute(text("SELECT html, pdf FROM agreements")).one()
        assert all(value.startswith("k1$") for value in (*stored, raw.raw_body, html))
        assert bytes(stored_pdf).startswith(b"k1$") and pdf not in bytes(stored_pdf)
        assert raw.account_no == ACCOUNT, "the account a callback concerns is kept beside its encrypted body"
        with Session(engine) as session:
            # the columns 0026 knew (later migrations add others to the model)
            columns = load_only(Deal.buyer_name, Deal.property_address, Deal.certificate_no, Deal.certificate_bidx)
            deal = session.scalars(select(Deal).options(columns)).one()
            assert (deal.buyer_name, deal.property_address, deal.certificate_no) == (name, address, certificate)
            assert deal.certificate_bidx == keyring.blind_index("cert", certificate)
            agreement = session.scalars(select(Agreement)).one()
            assert (agreement.html, agreement.pdf) == (f"<p>{address}</p>", pdf)
            inbox = session.scalars(select(BankNotification).options(load_only(BankNotification.raw_body))).one()
            assert inbox.raw_body == body
        command.downgrade(config, "0025")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT buyer_name FROM deals")).scalar_one() == name
            assert bytes(connection.execute(text("SELECT pdf FROM agreements")).scalar_one()) == pdf
    finally:
        engine.dispose()


def test_migration_encrypts_imported_contract_numbers_and_statement_names(database_url: str, keys_dir: Path) -> None:
    keyring.configure_from_folder(keys_dir)  # as `flask db upgrade` does
    config = alembic_config(database_url)
    command.upgrade(config, "0026")
    engine = make_engine(database_url)
    number = "BJZL-2025-PII-0042"
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
                    " price_fen, custody_amount_fen, facts, created_by_id, created_at, updated_at) VALUES (1, 'D1',"
                    " '110000', 'rent_custody', 'ceb', 'w', 1, 'h', 't', 'draft', 1, :name, :name, 100, 100, '{}',"
                    " 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"name": keyring.encrypt(PII["buyer_name"])},
            )
            connection.execute(
                text(
                    "INSERT INTO imported_contracts (city_code, contract_no, deal_id, source_name, row_no,"
                    " imported_by, imported_at) VALUES ('110000', :number, 1, 'f.csv', 2, 'x', CURRENT_TIMESTAMP)"
                ),
                {"number": number},
            )
            connection.execute(
                text(
                    "INSERT INTO reconciliation_runs (id, bank_code, statement_date, source, statement_sm3, complete,"
                    " line_count, counts, unresolved, actor, started_at, finished_at) VALUES (1, 'ceb',"
                    " '2026-11-23', 'bank', 'h', true, 1, '{}', 0, 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO reconciliation_items (run_id, status, resolved, counterparty_name, detail)"
                    " VALUES (1, 'matched', true, :name, '')"
                ),
                {"name": PAYER_NAME},
            )
        command.upgrade(config, "0027")
        with engine.connect() as connection:
            contract = text("SELECT contract_no, contract_bidx FROM imported_contracts")
            stored_number, digest = connection.execute(contract).one()
            stored_name = connection.execute(text("SELECT counterparty_name FROM reconciliation_items")).scalar_one()
        assert stored_number.startswith("k1$") and number not in stored_number
        assert keyring.decrypt(stored_number) == number
        assert digest == keyring.blind_index("cert", number)
        assert stored_name.startswith("k1$") and keyring.decrypt(stored_name) == PAYER_NAME
        command.downgrade(config, "0026")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT contract_no FROM imported_contracts")).scalar_one() == number
    finally:
        engine.dispose()
