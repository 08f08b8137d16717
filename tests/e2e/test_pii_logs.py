"""The end-to-end journey (real simulator, web app and worker), plus an ID/phone search and an audited
unmasked view, with PII on the form: no process's log output may carry a raw ID number, phone or account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATABASES, csrf_token
from tests.e2e import test_journey
from tests.e2e.stack import Stack, login
from tests.factories import RESALE_FORM

# One database: PostgreSQL where configured (CI) - its driver's errors are the ones that quote values; the
# processes' logging is the same on SQLite, which the journey test (tests/e2e/test_journey.py) runs too.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", [DATABASES[-1]], indirect=True)]

PHONES = {"buyer_phone": "13812341234", "seller_phone": "13912345678"}
FORM = {**RESALE_FORM, **PHONES}
RAW = [
    FORM["buyer_id_number"],
    FORM["seller_id_number"],
    FORM["buyer_bank_account"],
    FORM["seller_bank_account"],
    *PHONES.values(),
]


@pytest.fixture
def stack(tmp_path: Path, database_url: str, keys_dir: Path) -> Iterator[Stack]:
    running = Stack(tmp_path, database_url, keys_dir)
    try:
        yield running
    finally:
        running.stop()


def test_no_process_logs_pii_unmasked(stack: Stack, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(test_journey, "RESALE_FORM", FORM)
    passwords = stack.start()
    test_journey._journey(stack, passwords, keys_dir)

    finance = login(stack.web_url, "finance", passwords["finance"])
    found = finance.get(f"{stack.web_url}/admin/deals/", params={"party_id": FORM["buyer_id_number"]}, timeout=10)
    deal_links = [part.split('"')[0] for part in found.text.split('href="/admin/deals/')[1:] if part[0].isdigit()]
    assert len(deal_links) == 1, "the journey's deal is found by the buyer's ID number"
    by_phone = finance.get(f"{stack.web_url}/admin/deals/", params={"party_phone": PHONES["seller_phone"]}, timeout=10)
    assert f'href="/admin/deals/{deal_links[0]}"' in by_phone.text
    detail_url = f"{stack.web_url}/admin/deals/{deal_links[0]}"
    token = csrf_token(finance.get(detail_url, timeout=10).text)
    shown = finance.post(f"{detail_url}/unmask", data={"csrf_token": token, "reason": "核对收款账户"}, timeout=10)
    assert FORM["seller_bank_account"] in shown.text, "finance sees the full values on the page"
    stack.stop()

    logs = {path.name: path.read_text(errors="replace") for path in stack.workdir.glob("*.log")}
    assert {"web.log", "worker.log", "simulator.log"} <= set(logs)
    assert "party_id=110***********002X" in logs["web.log"], "the search request was logged, masked"
    leaks = [(name, raw) for name, text in logs.items() for raw in RAW if raw in text]
    assert leaks == [], leaks
