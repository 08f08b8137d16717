"""Issue 16, bank simulator: a web page in the tester's browser cannot pay money into a deal or change
faults through the simulator's /sim/ endpoints (cross-site requests are refused); tools and its own page can;
its files go to the instance folder the platform uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app.tools.banksim.cli import bank_sim, serve
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


def test_simulator_files_live_in_the_instance_folder_the_platform_is_told_to_use(
    tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, elsewhere = tmp_path / "instance-elsewhere", tmp_path / "cwd"
    (instance / "keys").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(keys_dir / "platform.pub.pem", instance / "keys" / "platform.pub.pem")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("CUNGUAN_INSTANCE_PATH", str(instance))
    for name in ("CUNGUAN_KEYS_DIR", "BANK_SIM_KEYS_DIR", "BANK_SIM_PLATFORM_KEY", "BANK_SIM_DB"):
        monkeypatch.delenv(name, raising=False)
    answer = CliRunner().invoke(bank_sim, ["keys"])
    assert answer.exit_code == 0, answer.output
    assert (instance / "bank-sim-keys" / "ceb.key.pem").is_file()
    registered = (instance / "bank-sim-keys" / "platform.pub.pem").read_bytes()
    assert registered == (keys_dir / "platform.pub.pem").read_bytes()
    assert not (elsewhere / "instance").exists(), "nothing written under the working directory"
    with click.Context(serve) as context:
        (db_option,) = [p for p in serve.params if p.name == "db_path"]
        assert Path(str(db_option.get_default(context))) == instance.resolve() / "bank_sim.db"


def test_the_state_page_masks_account_numbers(simulator: InProcessSimulator) -> None:
    account_no = _account(simulator)
    simulator.pay_in("ceb", account_no, 5000, payer_account="6222020200998877661")
    page = simulator.client.get("/").get_data(as_text=True)
    assert "6222020200998877661" not in page
    assert "**** 7661" in page
