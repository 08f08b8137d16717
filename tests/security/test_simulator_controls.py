"""Issue 16, bank simulator: a web page in the tester's browser cannot pay money into a deal or change
faults through the simulator's /sim/ endpoints (cross-site requests are refused); tools and its own page can."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.simulator_support import InProcessSimulator, make_simulator

PAYMENT = {"bank": "ceb", "amount": "100.00", "payer_name": "张三", "payer_account": "6222020200112233445"}


@pytest.fixture
def simulator(tmp_path: Path, keys_dir: Path) -> InProcessSimulator:
    return make_simulator(tmp_path / "sim.db", keys_dir)


def _account(simulator: InProcessSimulator) -> str:
    return simulator.open_account("ceb", "req-1")


def _balance(simulator: InProcessSimulator, account_no: str) -> int:
    (account,) = [a for a in simulator.state("ceb")["accounts"] if a["account_no"] == account_no]
    return int(account["balance_fen"])


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
        {"Origin": "null"},
    ],
)
def test_a_cross_site_form_post_pays_nothing(simulator: InProcessSimulator, headers: dict[str, str]) -> None:
    account_no = _account(simulator)
    answer = simulator.client.post("/sim/pay", data=PAYMENT | {"account_no": account_no}, headers=headers)
    assert answer.status_code == 403
    assert answer.get_json()["code"] == "CROSS_SITE_REQUEST"
    assert _balance(simulator, account_no) == 0


def test_cross_site_requests_cannot_change_faults_or_limits(simulator: InProcessSimulator) -> None:
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    answer = simulator.client.put("/sim/faults/ceb", json={"error_5xx_rate": 1.0}, headers=evil)
    assert (answer.status_code, answer.get_json()["code"]) == (403, "CROSS_SITE_REQUEST")
    assert simulator.client.get("/sim/faults/ceb").get_json()["active"] is False
    assert simulator.client.delete("/sim/limits/ceb", headers=evil).status_code == 403


def test_its_own_page_and_tools_still_pay(simulator: InProcessSimulator) -> None:
    account_no = _account(simulator)
    own_page = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    answer = simulator.client.post("/sim/pay", data=PAYMENT | {"account_no": account_no}, headers=own_page)
    assert answer.status_code == 303, answer.get_data(as_text=True)  # the page's form: back to the page
    simulator.pay_in("ceb", account_no, 5000)  # a tool: no Origin, no Sec-Fetch-Site
    assert _balance(simulator, account_no) == 10000 + 5000
