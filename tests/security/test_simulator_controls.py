"""Issue 16, bank simulator: a web page in the tester's browser cannot pay money into a deal or change
faults through the simulator's /sim/ endpoints (cross-site requests are refused, even with the token); nothing
without the control token `serve` prints can (tools and its own page carry it); its state shows no person's
full name or account; its files go to the instance folder the platform uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from app.tools.banksim.cli import bank_sim, serve
from app.tools.banksim.control_token import TOKEN_HEADER, read_control_token, write_control_token
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


def _token(simulator: InProcessSimulator) -> str:
    return simulator.client.environ_base["HTTP_X_SIM_TOKEN"]


@pytest.mark.parametrize("presented", [None, "", "not-the-token"], ids=["no token", "empty", "wrong token"])
def test_without_the_control_token_nothing_changes_and_nothing_shows(
    simulator: InProcessSimulator, presented: str | None
) -> None:
    account_no = _account(simulator)
    stranger = simulator.client.application.test_client()  # a local process that did not read the token
    headers = {} if presented is None else {TOKEN_HEADER: presented}
    tries = [
        stranger.post("/sim/pay", json=PAYMENT | {"account_no": account_no}, headers=headers),
        stranger.post("/sim/pay", data=PAYMENT | {"account_no": account_no, "sim_token": presented or ""}),
        stranger.put("/sim/faults/ceb", json={"error_5xx_rate": 1.0}, headers=headers),
        stranger.delete("/sim/faults/ceb", headers=headers),
        stranger.put("/sim/limits/ceb", json={"per_second": 0, "per_day": 0}, headers=headers),
        stranger.delete("/sim/limits/ceb", headers=headers),
        stranger.get("/sim/state", headers=headers),
        stranger.get("/", headers=headers, query_string={"token": presented or ""}),
    ]
    for answer in tries:
        assert answer.status_code == 401, (answer.request.method, answer.request.path)
        assert answer.get_json()["code"] == "SIM_TOKEN_REQUIRED"
        assert "令牌" in answer.get_json()["message"]
    assert _balance(simulator, account_no) == 0
    assert simulator.client.get("/sim/faults/ceb").get_json()["active"] is False
    assert simulator.client.get("/sim/limits/ceb").get_json()["overridden"] is False


def test_with_the_token_tools_and_the_page_work(simulator: InProcessSimulator) -> None:
    account_no = _account(simulator)
    tool = simulator.client.application.test_client()
    paid = tool.post("/sim/pay", json=PAYMENT | {"account_no": account_no}, headers={TOKEN_HEADER: _token(simulator)})
    assert paid.status_code == 200, paid.get_json()
    browser = simulator.client.application.test_client()
    page = browser.get("/", query_string={"token": _token(simulator)})  # the address `serve` prints
    assert page.status_code == 200
    assert f'name="sim_token" value="{_token(simulator)}"' in page.get_data(as_text=True)  # its forms carry it
    assert browser.get("/").status_code == 200  # the session remembers it
    form = PAYMENT | {"account_no": account_no, "sim_token": _token(simulator)}
    own_page = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert browser.post("/sim/pay", data=form, headers=own_page).status_code == 303
    assert _balance(simulator, account_no) == 10000 + 10000  # the tool's and the page's


def test_the_right_token_does_not_let_a_cross_site_request_through(simulator: InProcessSimulator) -> None:
    account_no = _account(simulator)
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", TOKEN_HEADER: _token(simulator)}
    form = PAYMENT | {"account_no": account_no, "sim_token": _token(simulator)}
    answer = simulator.client.application.test_client().post("/sim/pay", data=form, headers=evil)
    assert (answer.status_code, answer.get_json()["code"]) == (403, "CROSS_SITE_REQUEST")
    assert _balance(simulator, account_no) == 0


def test_the_state_json_and_page_show_no_full_name_or_account(simulator: InProcessSimulator) -> None:
    designated = {"payer_name": "欧阳小明", "payer_account": "6222020200556677889"}
    account_no = simulator.open_account("ceb", "VA-pii", designated_payer=designated)
    simulator.pay_in("ceb", account_no, 500000, payer_name="张小三", payer_account="6222020200998877661")
    payout = {"payout_id": "PO-pii", "account_no": account_no, "amount_fen": 100000, "notify_url": "http://x.test/n"}
    payee = {"payee_name": "李四", "payee_account": "6217000010002000300"}
    assert simulator.call("POST", "/ceb/v1/payouts", payout | payee).status_code == 202
    simulator.parts.operations.run_due()
    state = simulator.client.get("/sim/state").get_data(as_text=True)
    page = simulator.client.get("/").get_data(as_text=True)
    accounts = ("6222020200556677889", "6222020200998877661", "6217000010002000300")
    for shown in (state, page):
        for whole in ("欧阳小明", "张小三", "李四", *accounts):
            assert whole not in shown
        for masked in ("欧**明", "张*三", "李*", "**** 7889", "**** 7661", "**** 0300"):
            assert masked in shown
        assert account_no in shown  # the virtual (escrow) account's own number: the page pays into it
    assert '"payer_name":"张*三"' in state.replace(" ", ""), "the callbacks' bodies are masked too"
    assert simulator.state("ceb")["arrivals"][0]["payer_name"] == "张小三"  # in-process tools see it whole


def test_the_token_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = write_control_token(tmp_path / "bank-sim-keys", "t0ken")
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_control_token(tmp_path / "bank-sim-keys") == "t0ken"
    assert read_control_token(tmp_path / "elsewhere") == ""
