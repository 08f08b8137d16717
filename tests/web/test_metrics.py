"""/metrics: who may read it (staff login or the scrape token) and what it says (from the database)."""

from __future__ import annotations

import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.agreements import service as agreements_service
from app.db.base import Base
from app.deals import service as deals
from app.pdf.render import PDF_RENDER_SECONDS, pdf_render_timer
from app.platform.histogram import Histogram
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue
from tests.conftest import make_config
from tests.factories import CUSTODY_FEN, actor, arrive, confirmed_deal, load_deal, open_account
from tests.web.test_deal_pages import Login

TOKEN = "s3cret-scrape-token-0123456789"
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def _samples(text: str) -> dict[str, float]:
    """`name{labels}` → value, for every sample line."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def test_anonymous_and_non_staff_are_refused(client: FlaskClient, login: Login) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401, "no token set"
    assert login("agent").get("/metrics").status_code == 403
    answer = login("auditor").get("/metrics")
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain" and "version=0.0.4" in answer.headers["Content-Type"]


def test_bearer_token_from_the_environment(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUNGUAN_METRICS_TOKEN", TOKEN)
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer ", TOKEN):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 401, wrong
    monkeypatch.setenv("CUNGUAN_METRICS_TOKEN", "short")
    assert client.get("/metrics", headers={"Authorization": "Bearer short"}).status_code == 401, "too short to count"


def test_bearer_token_from_the_keys_folder(
    tmp_path: Path, database_url: str, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUNGUAN_METRICS_TOKEN", raising=False)
    keys = tmp_path / "keys"
    shutil.copytree(keys_dir, keys)
    (keys / "metrics.token").write_text(TOKEN + "\n")
    (keys / "metrics.token").chmod(0o600)
    app = create_app(make_config(tmp_path / "instance", database_url, keys))
    Base.metadata.create_all(app.extensions["cunguan.runtime"].db.engine)
    try:
        client = app.test_client()
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/metrics", headers={"Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401
    finally:
        app.extensions["cunguan.runtime"].db.dispose()


def test_figures_come_from_the_database(
    client: FlaskClient, rt: Runtime, keys_dir: Path, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the agreement PDF is really laid out here, not taken from the test process's cache of earlier tests' PDFs
    cached = agreements_service.html_to_pdf
    monkeypatch.setattr(agreements_service, "html_to_pdf", getattr(cached, "__wrapped__", cached))
    renders_before = PDF_RENDER_SECONDS.snapshot()[1]
    deal_id = confirmed_deal(rt)  # renders and signs the agreement: one PDF render in this process
    open_account(client, keys_dir, rt, deal_id, "6226000000000042")
    arrive(client, keys_dir, "6226000000000042", CUSTODY_FEN, "REF-M1")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    with rt.db.uow() as uow:
        enqueue(uow.session, "submit_payout", {"payout_id": "later"}, now=rt.clock(), delay_s=3600)
        uow.commit()
    assert load_deal(rt, deal_id).state == "releasing"

    monkeypatch.setenv("CUNGUAN_METRICS_TOKEN", TOKEN)
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    samples = _samples(text)
    callbacks = {k: v for k, v in samples.items() if k.startswith("cunguan_bank_callbacks_total{")}
    assert callbacks == {
        'cunguan_bank_callbacks_total{bank="ceb",type="account_opened",outcome="processed"}': 1,
        'cunguan_bank_callbacks_total{bank="ceb",type="funds_arrived",outcome="processed"}': 1,
    }
    assert samples['cunguan_payouts{bank="ceb",purpose="release",status="pending"}'] == 1
    # no worker ran: the open-account and the payout jobs are due, the delayed one is not
    assert samples['cunguan_jobs{kind="open_virtual_account",status="pending"}'] == 1
    assert samples['cunguan_jobs{kind="submit_payout",status="pending"}'] == 2
    assert samples['cunguan_jobs_due{kind="open_virtual_account"}'] == 1
    assert samples['cunguan_jobs_due{kind="submit_payout"}'] == 1
    assert 0 < samples["cunguan_jobs_oldest_due_age_seconds"] < 120
    # arrival (single), then the payout's hold (pending)
    assert samples['cunguan_ledger_transfers_total{kind="single"}'] == 1
    assert samples['cunguan_ledger_transfers_total{kind="pending"}'] == 1
    assert samples['cunguan_virtual_accounts_opened_total{bank="ceb"}'] == 1
    assert samples['cunguan_account_openings_per_minute{bank="ceb"}'] == pytest.approx(0.2)
    assert samples['cunguan_ledger_hot_projected_balance_fen{account="bank_clearing:ceb"}'] == 0
    assert samples["cunguan_pdf_render_seconds_count"] == renders_before + 1
    assert samples['cunguan_pdf_render_seconds_bucket{le="+Inf"}'] == samples["cunguan_pdf_render_seconds_count"]
    assert "# TYPE cunguan_pdf_render_seconds histogram" in text and "Per process" in text
    for family in ("cunguan_bank_callbacks_total", "cunguan_ledger_transfers_total"):
        assert f"# TYPE {family} counter" in text
    assert samples['cunguan_bank_inbox_due{state="due"}'] == 0
    assert samples["cunguan_bank_inbox_oldest_due_age_seconds"] == 0

    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "inbox")  # acknowledged; no worker processes it
    arrive(client, keys_dir, "6226000000000042", 1_00, "REF-M2")
    received = rt.clock()
    rt.clock = lambda: received + timedelta(seconds=90)
    samples = _samples(client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True))
    assert samples['cunguan_bank_inbox_due{state="due"}'] == 1
    assert 90 <= samples["cunguan_bank_inbox_oldest_due_age_seconds"] < 100, "a stalled inbox shows its age"


def test_histogram_buckets_are_cumulative() -> None:
    histogram = Histogram((0.5, 1.0, 2.0))
    for value in (0.1, 0.7, 0.7, 1.5, 9.0):
        histogram.observe(value)
    buckets, count, total = histogram.snapshot()
    assert buckets == [(0.5, 1), (1.0, 3), (2.0, 4)]
    assert (count, total) == (5, pytest.approx(12.0))


def test_the_render_timer_records_failures_too() -> None:
    before = PDF_RENDER_SECONDS.snapshot()[1]
    with pytest.raises(RuntimeError), pdf_render_timer():
        time.sleep(0.01)
        raise RuntimeError("layout failed")
    assert PDF_RENDER_SECONDS.snapshot()[1] == before + 1
