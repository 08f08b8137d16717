"""`flask city simulate`: every path of every product's workflow for one exact city config, in a sandbox
(a temporary SQLite database and keys folder, an in-process bank), with a stored report that approval
checks ("a passing simulation of the exact version")."""

from __future__ import annotations

import json
import tempfile
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import ROOT
from app.crypto.keys import ensure_keys
from app.db.base import Base
from app.db.ledger_repo import check_ledger
from app.db.models import CityConfigVersion, ConfigSimulation, Deal
from app.db.session import Database
from app.domain.cities import CityCatalog, CityConfig, ResolvedCity
from app.domain.config_versions import content_sha256
from app.domain.problems import CityConfigInvalid
from app.errors import CunguanError, NotFound
from app.services import deals
from app.services.city_sources import DbVersions, open_version
from app.services.config_publishing import validated
from app.services.runtime import KeyStore, Runtime
from app.services.simulation_drivers import (
    CaseDriver,
    ServiceDriver,
    SignOnce,
    Unreachable,
    sandbox_registry,
    service_level,
)
from app.services.users import create_user
from app.services.workflow_runner import registry
from app.state_machine.paths import enumerate_paths

SIM_CLOCK = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
SAMPLE_RESALE_FORM = {
    "contract_no": "SIM-0000001",
    "contract_signed_on": "2026-01-02",
    "contract_buyer_name": "张三",
    "contract_seller_name": "李四",
    "contract_property_address": "仿真路1号1单元101",
    "payment_method": "全款",
    "buyer_name": "张三",
    "buyer_id_number": "11010519491231002X",
    "buyer_bank_name": "中国光大银行",
    "buyer_bank_account": "6226620012345678",
    "seller_name": "李四",
    "seller_id_number": "110101198001010053",
    "seller_bank_name": "中国工商银行",
    "seller_bank_account": "6222020200112233445",
    "property_address": "仿真路1号1单元101",
    "certificate_no": "仿(2026)不动产权第0000001号",
    "price": "3500000",
    "custody_amount": "1234567.89",
}


@dataclass(frozen=True)
class Target:
    """What is simulated: the raw content of `stem` (a version, the draft under work or the working file)."""

    stem: str
    content: str
    label: str


def target(rt: Runtime, stem: str, version: int | None) -> Target:
    if version is not None:
        with rt.db.uow() as uow:
            row = uow.session.query(CityConfigVersion).filter_by(city_code=stem, version=version).one_or_none()
            if row is None:
                raise NotFound(f"城市配置 {stem} 没有第 {version} 版", code="CONFIG_VERSION_NOT_FOUND")
            return Target(stem, row.content, f"第 {version} 版")
    with rt.db.uow() as uow:
        draft = open_version(uow.session, stem)
        if draft is not None:
            return Target(stem, draft.content, f"第 {draft.version} 版（{draft.status}）")
    from app.city_versions import GitVersions

    content = DbVersions(rt.db, GitVersions(ROOT)).draft(stem)
    if content is None:
        raise NotFound(f"城市配置 {stem} 不存在", code="UNKNOWN_CITY")
    return Target(stem, content, "工作区文件")


class _Layers:
    """The sandbox's city source: exactly the layers that were resolved for the simulated config (the leaf
    also under its admin code, so that deals of the virtual city 000000 find it)."""

    def __init__(self, resolved: ResolvedCity, admin_code: str) -> None:
        self.contents = {
            layer.source.removesuffix(".json"): json.dumps(layer.data).encode() for layer in resolved.layers
        }
        self.contents[admin_code] = json.dumps(resolved.layers[0].data).encode()

    def read(self, stem: str) -> bytes | None:
        return self.contents.get(stem)

    def stems(self) -> list[str]:
        return sorted(self.contents)


def _sandbox(rt: Runtime, folder: Path, resolved: ResolvedCity, admin_code: str) -> Runtime:
    ensure_keys(folder / "keys", rt.banks.keys())
    db = Database(f"sqlite:///{folder / 'simulation.db'}")
    Base.metadata.create_all(db.engine)
    return Runtime(
        db=db,
        cities=CityCatalog(rt.cities.folder, rt.cities.check, _Layers(resolved, admin_code)),
        workflows=rt.workflows,
        keys=KeyStore(folder / "keys"),
        banks=rt.banks,
        public_base_url="http://127.0.0.1:9",
        clock=lambda: SIM_CLOCK,
    )


def _path_label(path: tuple[Any, ...]) -> str:
    return " → ".join(t.event for t in path) or "（空）"


def _simulate_services(sandbox: Runtime, city: CityConfig, product: str, paths: list[Any]) -> dict[str, Any]:
    config = city.product(product)
    definition = sandbox.workflow(config.workflow_id, config.workflow_version)
    signer = SignOnce()
    driver = ServiceDriver(sandbox, definition, sandbox_registry(registry, {"sign_agreement": signer}))
    username = f"sim-{product}"
    agent = deals.Actor(
        create_user(sandbox, username, "Simulation-Only-1", "agent", "仿真经纪人").id, username, "agent"
    )
    form = {**SAMPLE_RESALE_FORM, "city_code": city.admin_code, "product": product}
    covered, problems, notes, ran = set(), [], [], 0
    for path in paths:
        deal_id = deals.create_deal(sandbox, agent, city.admin_code, product, form)
        with sandbox.db.uow() as uow:
            deal = uow.session.get(Deal, deal_id)
            try:
                driver.run(uow.session, deal, path)
            except Unreachable as why:
                notes.append(f"路径 {_path_label(path)}：本城市配置下条件无法满足（{why}）")
                continue
            except CunguanError as error:
                problems.append(f"路径 {_path_label(path)}：{error.message}（{error.code}）")
                continue
            uow.commit()
        ran += 1
        covered.update(path)
    return {"covered": covered, "problems": problems, "notes": notes, "ran": ran, "agreements": signer.rendered}


def _simulate_cases(city: CityConfig, product: str, definition: Any, paths: list[Any]) -> dict[str, Any]:
    driver = CaseDriver(definition, city.product(product))
    covered, problems, notes, ran = set(), [], [], 0
    for path in paths:
        try:
            found = driver.run(path)
        except Unreachable as why:
            notes.append(f"路径 {_path_label(path)}：本城市配置下条件无法满足（{why}）")
            continue
        except CunguanError as error:
            problems.append(f"路径 {_path_label(path)}：{error.message}（{error.code}）")
            continue
        problems += [f"路径 {_path_label(path)}：{problem}" for problem in found]
        ran += 1
        covered.update(path)
    return {"covered": covered, "problems": problems, "notes": notes, "ran": ran, "agreements": 0}


def _product_report(sandbox: Runtime, city: CityConfig, product: str) -> dict[str, Any]:
    config = city.product(product)
    definition = sandbox.workflow(config.workflow_id, config.workflow_version)
    paths = enumerate_paths(definition)
    level = "services" if service_level(definition, registry) else "state_machine"
    try:
        if level == "services":
            outcome = _simulate_services(sandbox, city, product, paths)
        else:
            outcome = _simulate_cases(city, product, definition, paths)
    except Exception as error:  # a bug met by the simulation is a finding, not a crash of the command
        outcome = {"covered": set(), "problems": [f"仿真中断：{error!r}", traceback.format_exc(limit=3)], "notes": []}
        outcome |= {"ran": 0, "agreements": 0}
    uncovered = [f"{t.source} -{t.event}-> {t.target}" for t in definition.transitions if t not in outcome["covered"]]
    return {
        "product": product,
        "workflow": f"{definition.id} v{definition.version}",
        "level": level,
        "paths": len(paths),
        "paths_run": outcome["ran"],
        "transitions_covered": len(outcome["covered"]),
        "transitions_total": len(definition.transitions),
        "uncovered": uncovered,
        "agreements_rendered": outcome["agreements"],
        "problems": outcome["problems"],
        "notes": outcome["notes"],
    }


def simulate(
    rt: Runtime, stem: str, product: str | None = None, version: int | None = None, run_by: str = "cli"
) -> dict[str, Any]:
    """Run the simulation, store its outcome, return the report (`ok` false when anything was found)."""
    what = target(rt, stem, version)
    report: dict[str, Any] = {"city": stem, "target": what.label, "content_sha256": content_sha256(what.content)}
    try:
        with rt.db.uow() as uow:
            resolved, city = validated(rt, uow.session, stem, what.content)
    except CityConfigInvalid as invalid:
        report |= {"ok": False, "resolved_sha256": None, "products": [], "problems": [str(p) for p in invalid.problems]}
        return report
    products = [product] if product is not None else sorted(city.products)
    with tempfile.TemporaryDirectory(prefix="cunguan-sim-") as folder:
        sandbox = _sandbox(rt, Path(folder), resolved, city.admin_code)
        try:
            results = [_product_report(sandbox, city, name) for name in products]
            with sandbox.db.uow() as uow:
                ledger_report = check_ledger(uow.session)
        finally:
            sandbox.db.dispose()
    problems = [p for result in results for p in result["problems"]] + ledger_report.problems
    report |= {
        "resolved_sha256": city.sha256,
        "products": results,
        "ledger": {"ok": ledger_report.ok, "problems": ledger_report.problems},
        "problems": problems,
        "ok": not problems,
    }
    with rt.db.uow() as uow:
        uow.session.add(
            ConfigSimulation(
                city_code=stem,
                content_sha256=report["content_sha256"],
                resolved_sha256=city.sha256,
                complete=product is None,
                ok=report["ok"],
                report=report,
                run_by=run_by,
                created_at=rt.clock(),
            )
        )
        uow.commit()
    return report
