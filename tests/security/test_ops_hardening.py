"""Issue 16, operations: an unreachable bank is a metric and a staff page section, never a readiness failure."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from alembic import command
from flask.testing import FlaskClient

from app.ops import bank_reachability
from app.platform.cli import alembic_config
from app.platform.config import BankEndpoint
from app.platform.runtime import Runtime

CLOSED_PORT_URL = "http://127.0.0.1:9/icbc"


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bank_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ceb"
    server.shutdown()


@pytest.fixture(autouse=True)
def _fresh_probe_cache() -> None:
    bank_reachability.clear_cache()


@pytest.fixture
def one_bank_down(rt: Runtime, bank_server: str) -> Runtime:
    """Migrations current (stamped), keys there, bank ceb answering, bank icbc at a closed port."""
    command.stamp(alembic_config(rt.db.url), "head")
    rt.banks = {
        "ceb": BankEndpoint("ceb", "中国光大银行", bank_server),
        "icbc": BankEndpoint("icbc", "中国工商银行", CLOSED_PORT_URL),
    }
    return rt


def test_readyz_stays_200_when_a_bank_is_unreachable(client: FlaskClient, one_bank_down: Runtime) -> None:
    answer = client.get("/readyz")
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "keys", "harfbuzz_subset"}


def test_bank_reachability_is_a_metric(login: Callable[[str], FlaskClient], one_bank_down: Runtime) -> None:
    text = login("ops").get("/metrics").get_data(as_text=True)
    assert 'cunguan_bank_reachable{bank="ceb"} 1' in text
    assert 'cunguan_bank_reachable{bank="icbc"} 0' in text
    assert 'cunguan_bank_probe_latency_seconds{bank="ceb"}' in text
    assert 'cunguan_bank_probe_latency_seconds{bank="icbc"}' not in text, "no latency for a bank that did not answer"
    assert CLOSED_PORT_URL not in text


def test_staff_dashboard_shows_each_banks_reachability(
    login: Callable[[str], FlaskClient], one_bank_down: Runtime
) -> None:
    page = login("ops").get("/admin/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="bank-reachability"' in html
    ceb = html.split('data-bank="ceb"', 1)[1].split("</tr>", 1)[0]
    icbc = html.split('data-bank="icbc"', 1)[1].split("</tr>", 1)[0]
    assert "可达" in ceb and "不可达" not in ceb and "HTTP 404" in ceb
    assert "不可达" in icbc and "ConnectionError" in icbc
    assert CLOSED_PORT_URL not in html, "the page names banks, not their URLs"
