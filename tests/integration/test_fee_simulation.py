"""A fee config through `flask city simulate` (issue 17): 杭州 with a seller-paid fee on release simulates its
government escrow cleanly - every path's releases pay the seller custody less the fee, within the agreement - and
the report's ledger check holds. (tests/integration/test_city_simulation.py walks the shipped configs.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app.cities import publishing
from app.db.config_models import ConfigSimulation
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from tests.conftest import DATABASES, fresh_database

HANGZHOU = (ROOT / "city_configs" / "330100.json").read_text(encoding="utf-8")
SELLER_FEE = {"name": "存管服务费", "payer": "seller", "kind": "rate", "bps": 30, "min_fen": 50_000}


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """One platform database per run, as for the other simulations: the sandbox is SQLite whatever it is."""
    with fresh_database(DATABASES[-1], tmp_path, platform_tables=True) as url:
        yield url


def test_a_city_with_a_seller_paid_fee_on_release_simulates_cleanly_and_its_ledger_balances(
    app: Flask, rt: Runtime, users: dict[str, int]
) -> None:
    config = json.loads(HANGZHOU)
    config["products"]["gov_escrow"]["fees"] = [SELLER_FEE]
    publishing.save_draft(rt, "330100", json.dumps(config, ensure_ascii=False), "ops")
    result = app.test_cli_runner().invoke(args=["city", "simulate", "330100", "gov_escrow"])
    assert result.exit_code == 0, result.output
    assert "账务平衡" in result.output and "✓ 仿真通过" in result.output
    with rt.db.uow() as uow:
        stored = uow.session.scalars(select(ConfigSimulation)).one()
    report = stored.report
    assert stored.ok and report["problems"] == [] and report["ledger"] == {"ok": True, "problems": []}
    (gov,) = report["products"]
    assert gov["uncovered"] == [] and gov["paths_run"] == gov["paths"] - len(gov["notes"]) == 15
