"""The whole journey over HTTP, with the bank simulator, the web app and the worker as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.banks.protocol import BANK_PREFIX, sign_headers
from app.crypto.keys import generate_sm2_private_key_pem
from app.pdf.verify import verify_pdf_signatures
from tests.conftest import csrf_token
from tests.e2e.stack import ROOT, Stack, login, wait_until
from tests.factories import CUSTODY_FEN, HAPPY_PATH_EVENTS, RESALE_FORM, bank_signing_key, confirmation_fields

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path, database_url: str, keys_dir: Path) -> Iterator[Stack]:
    running = Stack(tmp_path, database_url, keys_dir)
    try:
        yield running
    finally:
        running.stop()


def _deal(session: requests.Session, stack: Stack, deal_url: str) -> dict[str, Any]:
    return session.get(f"{deal_url}?format=json", timeout=10).json()


def _pay(stack: Stack, account_no: str, amount: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "app.tools.banksim",
            "pay",
            "--bank",
            "ceb",
            "--account",
            account_no,
            "--amount",
            amount,
            "--url",
            stack.sim_url,
        ],
        cwd=ROOT,
        env=stack.env(),  # BANK_SIM_KEYS_DIR: where the simulator keeps its control token
        check=True,
        capture_output=True,
        timeout=60,
    )


def _post_raw(stack: Stack, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{stack.web_url}/api/banks/ceb/notifications",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )


def _ledger_totals(stack: Stack) -> str:
    result = stack.flask("ledger", "check", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_resale_deal_end_to_end(stack: Stack, keys_dir: Path) -> None:
    passwords = stack.start()
    assert set(passwords) == {"agent", "ops", "reviewer", "finance", "auditor", "admin"}
    try:
        _journey(stack, passwords, keys_dir)
    except AssertionError:
        print(stack.logs())
        raise


def _journey(stack: Stack, passwords: dict[str, str], keys_dir: Path) -> None:
    agent = login(stack.web_url, "agent", passwords["agent"])
    token = csrf_token(agent.get(f"{stack.web_url}/deals/new", timeout=10).text)
    created = agent.post(
        f"{stack.web_url}/deals/new", data={**RESALE_FORM, "csrf_token": token}, allow_redirects=False, timeout=10
    )
    assert created.status_code == 302
    deal_url = f"{stack.web_url}{created.headers['Location']}"
    page = agent.get(deal_url, timeout=10).text
    assert "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in page
    preview = agent.get(f"{deal_url}/agreement.html", timeout=10).text
    assert "资金存管协议" in preview and "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in preview

    agent.post(f"{deal_url}/confirm", data={"csrf_token": csrf_token(page)}, timeout=60)
    deal = wait_until(lambda: (d := _deal(agent, stack, deal_url))["account_no"] and d, what="account_opened")
    assert deal["state"] == "awaiting_funds" and deal["agreement_signed"]
    account_no = deal["account_no"]
    assert deal["account_no"] in agent.get(deal_url, timeout=10).text

    _pay(stack, account_no, "1000")
    wait_until(lambda: _deal(agent, stack, deal_url)["custody_balance_fen"] == 100_000, what="partial arrival")
    assert _deal(agent, stack, deal_url)["state"] == "awaiting_funds"
    _pay(stack, account_no, "1233567.89")
    wait_until(lambda: _deal(agent, stack, deal_url)["state"] == "funded", what="funded")

    ops = login(stack.web_url, "ops", passwords["ops"])
    page = ops.get(deal_url, timeout=10).text
    confirmation = ops.post(f"{deal_url}/title-transferred", data={"csrf_token": csrf_token(page)}, timeout=30)
    assert "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in confirmation.text, "the amount to confirm, in 大写"
    assert _deal(ops, stack, deal_url)["state"] == "funded", "nothing paid before the confirmation"
    ops.post(f"{deal_url}/title-transferred", data=confirmation_fields(confirmation.text), timeout=30)
    wait_until(lambda: _deal(ops, stack, deal_url)["state"] == "closed", what="payout result closes the deal")

    final = _deal(ops, stack, deal_url)
    assert [e["event"] for e in final["events"]] == HAPPY_PATH_EVENTS
    assert final["custody_balance_fen"] == 0
    page = ops.get(deal_url, timeout=10).text
    for label in ("新建存管单", "虚户已开立", "部分资金到账", "资金足额到账", "放款成功", "银行（中国光大银行）"):
        assert label in page, label

    pdf = ops.get(f"{deal_url}/agreement.pdf", timeout=10).content
    trusted = [(keys_dir / "platform.cert.pem").read_bytes(), (keys_dir / "banks" / "ceb.cert.pem").read_bytes()]
    platform, bank = verify_pdf_signatures(pdf, trusted)  # the worker asked the bank, which signed with its own key
    assert platform.valid and bank.valid and bank.covers_whole_file, (platform.errors, bank.errors)
    assert bank.signer_subject == "存管银行电子签章（ceb）"
    pdf_path = stack.workdir / "agreement.pdf"
    pdf_path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout
    compact = "".join(text.split())
    assert "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in compact
    assert "待银行开立" in compact, "signed before the bank opened the account, and says so"
    sim_state = stack.sim_control("GET", "state").json()
    assert json.dumps(sim_state, ensure_ascii=False).count(account_no) >= 1

    _hostile_callbacks(stack, keys_dir, deal_url, ops)


def _hostile_callbacks(stack: Stack, keys_dir: Path, deal_url: str, ops: requests.Session) -> None:
    """A duplicate, a forged, a stale and a replayed callback: none may change anything."""
    before = (_deal(ops, stack, deal_url), _ledger_totals(stack))
    bank_key = bank_signing_key(keys_dir)
    delivered = [d for d in _deliveries(stack) if d["type"] == "funds_arrived"]
    assert delivered, "the simulator shows what it delivered"
    duplicate = delivered[0]["body"].encode()
    answer = _post_raw(stack, duplicate, sign_headers(BANK_PREFIX, bank_key, duplicate))
    assert (answer.status_code, answer.json()["code"]) == (200, "DUPLICATE")

    fresh = json.loads(duplicate)
    fresh.update(notification_id="N-e2e-extra", bank_reference="E2E-EXTRA")
    fresh_bytes = json.dumps(fresh).encode()
    forged = _post_raw(stack, fresh_bytes, sign_headers(BANK_PREFIX, generate_sm2_private_key_pem(), fresh_bytes))
    assert (forged.status_code, forged.json()["code"]) == (401, "BAD_SIGNATURE")
    stale = _post_raw(stack, fresh_bytes, sign_headers(BANK_PREFIX, bank_key, fresh_bytes, now=time.time() - 400))
    assert (stale.status_code, stale.json()["code"]) == (401, "STALE_TIMESTAMP")

    harmless = json.dumps(
        {
            "notification_id": "N-e2e-probe",
            "type": "account_opened",
            "request_id": "VA-unknown-request",
            "account_no": "6226000011112222",
            "account_name": "probe",
        }
    ).encode()
    headers = sign_headers(BANK_PREFIX, bank_key, harmless)
    assert _post_raw(stack, harmless, headers).json()["code"] == "OK"
    replayed = _post_raw(stack, fresh_bytes, {**headers})
    assert replayed.status_code == 401  # the probe's signature does not cover these bytes
    replayed = _post_raw(stack, harmless, headers)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "REPLAYED_NONCE")

    assert (_deal(ops, stack, deal_url), _ledger_totals(stack)) == before
    assert before[0]["custody_amount_fen"] == CUSTODY_FEN


def _deliveries(stack: Stack) -> list[dict[str, Any]]:
    """Callback deliveries the simulator holds, with the type and the raw body they carried (from its own
    database: /sim/state masks the payer's name and account in them)."""
    with stack.sim_rows() as sim:
        rows = sim.execute("SELECT type, body FROM deliveries ORDER BY id").fetchall()
    return [{"type": row["type"], "body": bytes(row["body"]).decode()} for row in rows]  # a BLOB column
