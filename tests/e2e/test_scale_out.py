"""Scale-out: two gunicorn web servers and two workers on one database, callbacks spread over both.

Nothing a process needs lives in another process's memory: a login made on one web server works on the
other (signed cookie), a nonce stored by one is refused by the other, a notification delivered to both
is processed once, the workers share the job queue (each job claimed once) and the bank's rate limit.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from app.banks.protocol import BANK_PREFIX, sign_headers
from app.tools.banksim.banks import SIMULATED_BANKS
from tests.conftest import DATABASES, csrf_token
from tests.e2e.stack import FLASK, GUNICORN, Stack, login, wait_until
from tests.factories import CUSTODY_FEN, RESALE_FORM, bank_signing_key, provision_key_folders

# PostgreSQL only (production scale-out; CI sets CUNGUAN_TEST_POSTGRES_URL). Two servers on one SQLite file
# work too, but every agreement render holds SQLite's single write lock, which makes the run twice as slow.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize("database_url", [db for db in DATABASES if db == "postgresql"], indirect=True),
]

METRICS_TOKEN = "scale-out-metrics-token-0123456789"


class ScaleOutStack(Stack):
    """The simulator, web servers A and B (gunicorn, two processes each) and two workers; worker A gives the
    bank A's callback address, worker B gives B's, so the bank's own callbacks land on both servers."""

    def __init__(self, workdir: Path, database_url: str, keys_dir: Path) -> None:
        super().__init__(workdir, database_url, keys_dir)
        self.other_web_port = self.reserve_port()

    @property
    def web_urls(self) -> tuple[str, str]:
        return self.web_url, f"http://127.0.0.1:{self.other_web_port}"

    def env(self) -> dict[str, str]:
        base = super().env()
        banks = {f"CUNGUAN_BANK_{code.upper()}_URL": f"{self.sim_url}/{code}" for code in SIMULATED_BANKS}
        return {**base, **banks, "CUNGUAN_METRICS_TOKEN": METRICS_TOKEN}

    def start(self) -> dict[str, str]:
        self.flask("db", "upgrade")
        passwords = dict(re.findall(r"用户名 (\w+)\s+密码 (\S+)", self.flask("user", "create-demo").stdout))
        self.spawn(
            "simulator",
            [
                sys.executable,
                "-m",
                "app.tools.banksim",
                "serve",
                "--port",
                str(self.sim_port),
                "--db",
                str(self.workdir / "bank_sim.db"),
                "--keys-dir",
                str(self.bank_keys_dir),
                "--open-delay",
                "0.1",
                "--payout-delay",
                "0.1",
            ],
        )
        for name, url in zip(("web-a", "web-b"), self.web_urls, strict=True):
            self.spawn(name, [*GUNICORN, "-w", "2", "-b", url.removeprefix("http://"), "wsgi:app"])
        for name, url in zip(("worker-a", "worker-b"), self.web_urls, strict=True):
            self.spawn(name, [*FLASK, "worker", "--poll", "0.1"], CUNGUAN_PUBLIC_URL=url)
        for url in self.web_urls:  # ready: database at head, keys, HarfBuzz, and every bank answers
            wait_until(lambda url=url: requests.get(f"{url}/readyz", timeout=5).ok, what=f"{url}/readyz")
        return passwords


@pytest.fixture
def stack(tmp_path: Path, database_url: str) -> Iterator[ScaleOutStack]:
    keys = tmp_path / "keys"
    provision_key_folders(keys, tmp_path / "bank-sim-keys")  # every configured bank: /readyz checks all their keys
    running = ScaleOutStack(tmp_path, database_url, keys)
    try:
        yield running
    finally:
        running.stop()


def _together(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    """Run the calls at the same moment, one thread each; answers in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers), "every call answered"
    return answers


def _post(url: str, raw: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{url}/api/banks/ceb/notifications",
        data=raw,
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )


def test_two_web_servers_and_two_workers_share_everything(stack: ScaleOutStack) -> None:
    passwords = stack.start()
    try:
        _scenario(stack, passwords)
    except AssertionError:
        print(stack.logs())
        raise


def _scenario(stack: ScaleOutStack, passwords: dict[str, str]) -> None:
    web_a, web_b = stack.web_urls
    agent_a = login(web_a, "agent", passwords["agent"])
    agent_b = requests.Session()
    agent_b.cookies.update(agent_a.cookies)  # the session cookie made by A is good on B
    assert agent_b.get(f"{web_b}/deals/new", timeout=10).status_code == 200

    # four deals, created and confirmed (agreement rendered and signed) two on each server, concurrently
    def create_and_confirm(session: requests.Session, url: str) -> requests.Response:
        token = csrf_token(session.get(f"{url}/deals/new", timeout=10).text)
        created = session.post(
            f"{url}/deals/new", data={**RESALE_FORM, "csrf_token": token}, allow_redirects=False, timeout=30
        )
        assert created.status_code == 302, created.text
        deal_url = f"{url}{created.headers['Location']}"
        page = session.get(deal_url, timeout=10).text
        return session.post(f"{deal_url}/confirm", data={"csrf_token": csrf_token(page)}, timeout=60)

    confirmed = _together(
        *(lambda s=s, u=u: create_and_confirm(s, u) for s, u in [(agent_a, web_a), (agent_b, web_b)] * 2)
    )
    deal_paths = sorted({answer.url.removeprefix(web_a).removeprefix(web_b) for answer in confirmed})
    assert len(deal_paths) == 4, [answer.url for answer in confirmed]

    # the workers open the accounts; the bank calls back whichever server the requesting worker named
    def deal(path: str) -> dict[str, Any]:
        return agent_a.get(f"{web_a}{path}?format=json", timeout=10).json()

    wait_until(lambda: all(deal(p)["account_no"] for p in deal_paths), timeout_s=30, what="four accounts opened")
    deals = [deal(p) for p in deal_paths]
    assert all(d["state"] == "awaiting_funds" for d in deals), [d["state"] for d in deals]

    bank_key = bank_signing_key(stack.keys_dir)

    def funds(deal_info: dict[str, Any], reference: str, notification_id: str | None = None) -> bytes:
        body = {
            "notification_id": notification_id or f"N-{uuid.uuid4().hex}",
            "type": "funds_arrived",
            "bank_reference": reference,
            "account_no": deal_info["account_no"],
            "amount_fen": CUSTODY_FEN,
            "payer_name": "张三",
            "payer_account": "6226620012345678",
            "arrived_at": "2026-11-23T08:00:00Z",
        }
        return json.dumps(body, ensure_ascii=False).encode()

    # deal 0: one delivery, its identical bytes and headers (same nonce) hit A and B at once
    raw = funds(deals[0], "SO-REF-0")
    headers = sign_headers(BANK_PREFIX, bank_key, raw)
    answers = _together(lambda: _post(web_a, raw, headers), lambda: _post(web_b, raw, headers))
    outcomes = sorted((a.status_code, a.json()["code"]) for a in answers)
    assert outcomes == [(200, "OK"), (401, "REPLAYED_NONCE")], outcomes

    # deal 1: the same notification delivered twice (the bank resends), once to each server, at once
    raw = funds(deals[1], "SO-REF-1")
    answers = _together(
        lambda: _post(web_a, raw, sign_headers(BANK_PREFIX, bank_key, raw)),
        lambda: _post(web_b, raw, sign_headers(BANK_PREFIX, bank_key, raw)),
    )
    outcomes = sorted((a.status_code, a.json()["code"]) for a in answers)
    assert outcomes == [(200, "DUPLICATE"), (200, "OK")], outcomes

    # deal 2: the same money (bank reference) under two notification ids, one to each server, at once
    raw_a, raw_b = funds(deals[2], "SO-REF-2"), funds(deals[2], "SO-REF-2")
    answers = _together(
        lambda: _post(web_a, raw_a, sign_headers(BANK_PREFIX, bank_key, raw_a)),
        lambda: _post(web_b, raw_b, sign_headers(BANK_PREFIX, bank_key, raw_b)),
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]

    # deal 3: plain delivery to B, then the very same request replayed later at A
    raw = funds(deals[3], "SO-REF-3")
    headers = sign_headers(BANK_PREFIX, bank_key, raw)
    first = _post(web_b, raw, headers)
    assert (first.status_code, first.json()["code"]) == (200, "OK")
    replayed = _post(web_a, raw, headers)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "REPLAYED_NONCE")
    assert first.headers["X-Request-ID"] != replayed.headers["X-Request-ID"]

    # every deal funded exactly once, whoever answered
    for path in deal_paths:
        info = deal(path)
        assert (info["state"], info["custody_balance_fen"]) == ("funded", CUSTODY_FEN), info
        assert [e["event"] for e in info["events"]].count("funds_arrived") == 1, info["events"]

    _check_database(stack.database_url)
    result = stack.flask("ledger", "check", check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    # both servers report the same figures: they come from the database
    figures = []
    for url in stack.web_urls:
        text_ = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
        figures.append(sorted(line for line in text_.splitlines() if line.startswith("cunguan_bank_callbacks_total")))
    assert figures[0] == figures[1] and figures[0], figures
    # log lines of the callbacks carry the request id and the bank
    logged = "\n".join((stack.workdir / f"{name}.log").read_text() for name in ("web-a", "web-b"))
    assert f'"request_id": "{first.headers["X-Request-ID"]}"' in logged


def _check_database(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            # one inbox row per (bank, notification id): 4 account_opened + 4 funds_arrived (deal 2 twice)
            per_id = connection.execute(
                text("SELECT notification_id, count(*) FROM bank_notifications GROUP BY bank_code, notification_id")
            ).all()
            assert all(count == 1 for _, count in per_id), per_id
            kinds = dict(connection.execute(text("SELECT type, count(*) FROM bank_notifications GROUP BY type")).all())
            assert kinds == {"account_opened": 4, "funds_arrived": 5}, kinds
            unprocessed = connection.scalar(text("SELECT count(*) FROM bank_notifications WHERE processed_at IS NULL"))
            assert unprocessed == 0
            arrivals = (
                connection.execute(text("SELECT id FROM ledger_transfers WHERE id LIKE 'arrival:%' ORDER BY id"))
                .scalars()
                .all()
            )
            assert arrivals == [f"arrival:ceb:SO-REF-{n}" for n in range(4)], arrivals
            # every account-opening job ran once and is done; the accounts were opened once
            jobs = connection.execute(
                text("SELECT status, attempts FROM jobs WHERE kind = 'open_virtual_account'")
            ).all()
            assert sorted(jobs) == [("done", 1)] * 4, jobs
            opened = connection.scalar(text("SELECT count(*) FROM virtual_accounts WHERE opened_at IS NOT NULL"))
            assert opened == 4
    finally:
        engine.dispose()
