"""A bank added by configuration alone (issue 17): 中国民生银行 (cmbc) exists only as bank_configs/cmbc.json, yet a
deal runs through it against the bank simulator over HTTP - account opened in the file's number format, the
arrival signed with that bank's own key, the payout paid - and a certificate a bank file carries is imported
with `flask keys import-bank --from-config`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.banks import registry
from app.banks.registry import BANK_CONFIGS_DIR, configured_banks
from app.crypto.keys import certificate_public_key_pem
from app.db.models import BankNotification
from app.deals import service as deals
from app.platform.config import Config
from app.platform.runtime import Runtime
from tests.factories import CUSTODY_FEN, RESALE_FORM, actor, confirmed_deal, load_deal, patch_city
from tests.integration.simulator_support import make_simulator, serving
from tests.integration.test_reconciliation import World

BANK = "cmbc"


@pytest.fixture
def world(
    app: Flask, rt: Runtime, client: FlaskClient, users: dict[str, int], tmp_path: Path, keys_dir: Path
) -> Iterator[World]:
    """The platform and the simulator served over HTTP; the platform's cmbc endpoint is the one its settings
    build from the bank's file, pointed at the simulator's port."""
    sim = make_simulator(tmp_path / "bank_sim.db", keys_dir)
    rt.clock = lambda: datetime.fromtimestamp(sim.clock.now, UTC)
    configured = Config(instance_path=tmp_path, database_url="sqlite://", keys_dir=keys_dir, secret_key="x").banks
    with serving(sim.client.application) as sim_url, serving(app) as platform_url:
        rt.banks[BANK] = replace(configured[BANK], base_url=f"{sim_url}/{BANK}")
        rt.public_base_url = platform_url
        yield World(rt, sim, client, keys_dir)


def test_a_deal_opens_receives_and_pays_out_at_a_bank_added_only_as_a_file(world: World) -> None:
    rt = world.rt
    patch_city(rt, "110000", {"products": {"resale_escrow": {"banks": [BANK]}}})
    deal_id = confirmed_deal(rt)
    world.pump()
    account_no = world.account_no(deal_id)
    assert configured_banks()[BANK].account_format.matches(account_no) and account_no.startswith("6216")
    payer = {"payer_account": RESALE_FORM["buyer_bank_account"]}
    world.sim.pay_in(BANK, account_no, CUSTODY_FEN, RESALE_FORM["buyer_name"], **payer)
    world.pump()
    assert load_deal(rt, deal_id).state == "funded"
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    world.pump()
    deal = load_deal(rt, deal_id)
    assert (deal.state, deal.bank_code) == ("closed", BANK)
    (paid,) = world.sim.state(BANK)["payouts"]
    assert (paid["payout_id"], paid["status"]) == (deal.payouts[0].payout_id, "succeeded")
    with rt.db.uow() as uow:
        inbox = uow.session.scalars(select(BankNotification).order_by(BankNotification.id)).all()
        heard = [(row.bank_code, row.type, row.processed_at is not None) for row in inbox]
    assert heard == [(BANK, kind, True) for kind in ("account_opened", "funds_arrived", "payout_result")]


def test_a_certificate_a_bank_file_carries_is_imported_from_the_config(
    tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = (keys_dir / "banks" / f"{BANK}.cert.pem").read_text()
    with_certificate = configured_banks() | {BANK: replace(configured_banks()[BANK], certificate=certificate)}
    monkeypatch.setattr(registry, "configured_banks", lambda: with_certificate)
    platform_keys = tmp_path / "keys"
    config = Config(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir=platform_keys, secret_key="x", testing=True)
    cli = create_app(config).test_cli_runner()
    assert cli.invoke(args=["keys", "init"]).exit_code == 0
    done = cli.invoke(args=["keys", "import-bank", "--from-config"])
    assert done.exit_code == 0 and f"已导入银行 {BANK} 的证书" in done.output, done.output
    assert (platform_keys / "banks" / f"{BANK}.cert.pem").read_text() == certificate
    public_key = (platform_keys / "banks" / f"{BANK}.pub.pem").read_bytes()
    assert public_key == certificate_public_key_pem(certificate.encode())
    both = cli.invoke(args=["keys", "import-bank", "--from-config", "--from-dir", str(tmp_path)])
    assert both.exit_code == 2 and "--from-config" in both.output


def test_flask_bank_validate_lists_the_banks_or_every_problem(tmp_path: Path, keys_dir: Path) -> None:
    config = Config(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", keys_dir=keys_dir, secret_key="x", testing=True)
    cli = create_app(config).test_cli_runner()
    shipped = cli.invoke(args=["bank", "validate"])
    assert shipped.exit_code == 0, shipped.output
    assert "✓ cmbc 中国民生银行（协议 v1，日切 17:00，开户限额每秒 6 笔、每日 4000 笔）" in shipped.output
    assert shipped.output.count("✓") == len(configured_banks())
    broken = (BANK_CONFIGS_DIR / f"{BANK}.json").read_text(encoding="utf-8").replace('"v1"', '"v2"')
    (tmp_path / f"{BANK}.json").write_text(broken, encoding="utf-8")
    refused = cli.invoke(args=["bank", "validate", "--dir", str(tmp_path)])
    assert refused.exit_code == 1
    assert "银行配置有 1 处错误" in refused.output and "cmbc.json#/protocol: 不支持的银行接口协议 v2" in refused.output
