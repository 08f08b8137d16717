"""Issue 16, logs never carry PII: when handling a deal's parties or a payer fails (an intake that fails at the
database, a callback whose processing fails), every log record - as pytest captures it at DEBUG and as the
platform's own handler writes it - names no ID number, phone, bank account or person in full."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from app.platform.logs import app_log_handler
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import RESALE_FORM, notification, post_callback

PAYER = {"payer_name": "欧阳小明", "payer_account": "6217000010002000300"}
WHOLE = (
    RESALE_FORM["buyer_id_number"],
    RESALE_FORM["seller_id_number"],
    RESALE_FORM["buyer_bank_account"],
    RESALE_FORM["seller_bank_account"],
    "13812341234",
    PAYER["payer_account"],
    PAYER["payer_name"],
)


@pytest.fixture
def logged(app: Flask, caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything logged while the test runs: caplog at DEBUG, and the platform's own handler's lines."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answered and logged as in production
    stream = io.StringIO()
    handler = app_log_handler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with caplog.at_level(logging.DEBUG):
            yield stream
    finally:
        root.removeHandler(handler)


def _everything(caplog: pytest.LogCaptureFixture, stream: io.StringIO) -> str:
    records = [
        record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
    ]
    return "\n".join(records) + "\n" + stream.getvalue()


def _assert_no_pii(logs: str) -> None:
    for whole in WHOLE:
        assert whole not in logs, whole


def test_an_intake_that_fails_at_the_database_logs_no_party_data(
    login: Callable[[str], FlaskClient],
    rt: Runtime,
    logged: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = login("agent")
    token = csrf_token(agent.get("/deals/new").text)
    with rt.db.engine.begin() as connection:
        connection.execute(text("ALTER TABLE deals RENAME COLUMN deal_no TO deal_no_gone"))
    form = RESALE_FORM | {"buyer_phone": "13812341234", "csrf_token": token}
    answer = agent.post("/deals/new", data=form)
    assert answer.status_code == 500
    logs = _everything(caplog, logged)
    assert "deal_no" in logs  # the failure was logged ...
    _assert_no_pii(logs)  # ... without the parties


def test_a_callback_whose_processing_fails_logs_no_payer(
    client: FlaskClient, rt: Runtime, keys_dir: Path, logged: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    with rt.db.engine.begin() as connection:
        connection.execute(text("ALTER TABLE bank_notifications RENAME COLUMN raw_body TO raw_body_gone"))
    body = notification(
        "funds_arrived",
        bank_reference="REF-PII",
        account_no="6226000000000001",
        amount_fen=100,
        arrived_at="2026-11-23T08:00:00Z",
        **PAYER,
    )
    status, answer = post_callback(client, keys_dir, body)
    assert status == 500, answer
    logs = _everything(caplog, logged)
    assert "raw_body" in logs
    _assert_no_pii(logs)


def test_fields_named_for_a_person_are_masked_in_every_capture(
    logged: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    logging.getLogger("app.payouts").warning(
        "payout failed", extra={"payee_name": "李小四", "payee_account": "6217000010002000300", "deal_id": 7}
    )
    line = logged.getvalue()
    assert "李小四" not in line and '"payee_name": "李*四"' in line and '"deal_id": 7' in line
    (record,) = [r for r in caplog.records if r.name == "app.payouts"]
    assert record.__dict__["payee_name"] == "李*四"  # masked on the record itself, which every handler sees
