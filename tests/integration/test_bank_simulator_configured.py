"""The bank simulator plays a bank published in the flow (issue 17): `flask definition show bank CODE` writes its
document, `bank-sim keys|serve --bank-config FILE` provisions its keys and plays it - its code, account-number
format and opening limits from that config - beside the repository's banks. (The sandbox plays the banks the
runtime serves: test_issue17_done simulates a city product on such a bank.)"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from flask import Flask

from app.domain.banks import BankConfigInvalid
from app.platform.runtime import Runtime
from app.tools.banksim import SimulatorConfig, create_simulator_app
from app.tools.banksim.banks import SIMULATED_BANKS, banks_from_files
from app.tools.banksim.cli import bank_sim
from app.tools.banksim.control_token import TOKEN_HEADER
from app.tools.banksim.keys import bank_private_key_path
from tests.factories import simulated_banks_folder
from tests.integration.test_definition_kinds_publishing import cmbx, published, text


def test_a_bank_published_in_the_flow_is_played_by_the_simulator_from_its_document(
    app: Flask, rt: Runtime, keys_dir: Path, tmp_path: Path, users: dict[str, int]
) -> None:
    bank = cmbx(keys_dir)
    limits = bank["opening_limits"] | {"per_second": 3, "per_day": 70}
    published(rt, "bank", "cmbx", text(bank | {"opening_limits": limits}))
    shown = app.test_cli_runner().invoke(args=["definition", "show", "bank", "cmbx"])
    assert shown.exit_code == 0, shown.output
    document = tmp_path / "cmbx.json"
    document.write_text(shown.output, encoding="utf-8")
    missing = app.test_cli_runner().invoke(args=["definition", "show", "bank", "nosuchbank"])
    assert missing.exit_code == 1 and "没有已发布的版本" in missing.output

    bank_keys = tmp_path / "bank-keys"
    platform_key = str(keys_dir / "platform.pub.pem")
    options = ["--keys-dir", str(bank_keys), "--platform-key", platform_key, "--bank-config", str(document)]
    made = CliRunner().invoke(bank_sim, ["keys", *options])
    assert made.exit_code == 0, made.output
    assert bank_private_key_path(bank_keys, "cmbx").is_file() and bank_private_key_path(bank_keys, "ceb").is_file()

    banks = {code: bank.bank for code, bank in SIMULATED_BANKS.items()} | banks_from_files([document])
    config = SimulatorConfig(db_path=tmp_path / "sim.db", keys_dir=bank_keys, open_delay_s=0, banks=banks)
    simulator = create_simulator_app(config).test_client()
    simulator.environ_base["HTTP_" + TOKEN_HEADER.upper().replace("-", "_")] = config.control_token
    served = simulator.get("/sim/limits/cmbx").get_json()
    assert (served["per_second"], served["per_day"]) == (3, 70), "its opening limits from the published config"
    state = {bank["code"]: bank for bank in simulator.get("/sim/state").get_json()["banks"]}
    assert state["cmbx"]["name"] == "示例民商银行" and "ceb" in state
    assert state["cmbx"]["account_format"]["prefix"] == "6216", "its account-number format"
    assert simulator.get("/sim/limits/cmbz").status_code == 404, "a bank it was not given is unknown"
    plain = create_simulator_app(SimulatorConfig(db_path=tmp_path / "p.db", keys_dir=simulated_banks_folder(keys_dir)))
    assert "cmbx" not in plain.extensions["bank_simulator"].banks, "by default: the repository's banks"

    document.write_text(text(bank | {"protocol": "v2"}), encoding="utf-8")
    refused = CliRunner().invoke(bank_sim, ["keys", *options])
    assert refused.exit_code == 1 and "不支持的银行接口协议" in refused.output
    try:
        banks_from_files([document])
    except BankConfigInvalid as invalid:
        assert invalid.problems[0].pointer == "/protocol"
    else:
        raise AssertionError("a v2 bank is refused")
