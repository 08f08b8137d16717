"""`flask city simulate`: for one exact city config, the paths of every product's workflow that together take
every pair of transitions that can follow each other (app/state_machine/paths.py), in a sandbox (a temporary
SQLite database and keys folder, the bank simulator served over HTTP, real deals driven through the
deal services: see simulation_drivers), with a stored report that approval checks ("a passing simulation of
the exact version")."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cities.publishing import validated
from app.cities.simulation_runs import target
from app.db.base import Base
from app.db.config_models import ConfigSimulation
from app.db.models import User
from app.db.session import Database
from app.deals import service as deals
from app.deals.sample_forms import parse_details
from app.deals.vocabulary import build_vocabulary
from app.domain.cities import CityCatalog, CityConfig, ResolvedCity
from app.domain.config_versions import content_sha256
from app.domain.problems import CityConfigInvalid
from app.ledger.maintenance import maintain
from app.ledger.repo import check_ledger
from app.platform.config import BankEndpoint
from app.platform.errors import CunguanError
from app.platform.runtime import KeyStore, Runtime
from app.sandbox.bank import SANDBOX_THREADS, BankProblem, SandboxBank
from app.sandbox.drivers import ProductDriver
from app.sandbox.harness import People, QuietLog, SandboxClock, SignOnce
from app.sandbox.steps import PathProblem, Unreachable
from app.state_machine.paths import covering_paths
from app.tools.banksim.keys import provision_simulated_banks

SIM_CLOCK = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
QUIET_LOGGERS = ("cunguan.worker", "cunguan.ledger", "cunguan.timers", "cunguan.bank_callbacks", "cunguan.bank_jobs")
# the sandbox's databases and keys live in memory where the system has it (no disk syncs: it is thrown away)
SANDBOX_PARENT = Path("/dev/shm") if Path("/dev/shm").is_dir() else None

# (paths done, paths in all, what runs now): called before each product and once all of them ran
Progress = Callable[[int, int, str], None]
# what is added to a stored report, from the simulated content (the job adds the replay of real deals)
Addenda = Callable[[str], dict[str, Any]]


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


@dataclass
class Sandbox:
    rt: Runtime
    bank: SandboxBank
    clock: SandboxClock
    signer: SignOnce
    people: People
    log: QuietLog


def _person(rt: Runtime, username: str, role: str, name: str) -> deals.Actor:
    """Someone who acts in the sandbox; they never log in (no password, so no costly password hash)."""
    with rt.db.uow() as uow:
        user = User(username=username, display_name=name, password_hash="!", role=role, active=True)
        uow.session.add(user)
        uow.commit()
        return deals.Actor(user.id, username, role)


class _SandboxRecords(logging.Filter):
    """Takes the sandbox's records - from the simulating thread and the sandbox servers' threads - out of the
    process's logs (their warnings go to the report); other threads' records, a worker's other jobs say,
    pass as before."""

    def __init__(self, handler: QuietLog) -> None:
        super().__init__()
        self.handler = handler
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread and not (record.threadName or "").startswith(SANDBOX_THREADS):
            return True
        if record.levelno >= logging.WARNING:
            self.handler.handle(record)
        return False


@contextmanager
def quiet_logs() -> Iterator[QuietLog]:
    """The sandbox's workers, timers and ledger log every job; while simulating, their INFO lines are
    dropped and their warnings kept for the report (a timer that could not fire says why)."""
    handler = QuietLog()
    records = _SandboxRecords(handler)
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    for logger in loggers:
        logger.addFilter(records)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeFilter(records)


@contextmanager
def sandbox(
    rt: Runtime, folder: Path, resolved: ResolvedCity, admin_code: str, log: QuietLog, start: datetime = SIM_CLOCK
) -> Iterator[Sandbox]:
    """A temporary database, keys folder and bank simulator (served over HTTP), the sandbox platform's
    callback endpoint, and the people who act in the simulation; its clock and certificates start at `start`."""
    keys_dir, bank_keys_dir = folder / "keys", folder / "bank-keys"
    known_banks = dict(rt.known_banks.items())  # as served (one query): a bank only the flow published plays too
    provision_simulated_banks(keys_dir, bank_keys_dir, known_banks, certificate_valid_from=start)
    db = Database(f"sqlite:///{folder / 'simulation.db'}")
    Base.metadata.create_all(db.engine)
    clock, signer = SandboxClock(start), SignOnce()

    def runtime(public_base_url: str, banks: dict[str, BankEndpoint]) -> Runtime:
        """The sandbox's own database, keys, clock, bank (the simulator's endpoints, `banks`) and vocabulary:
        the platform's workflows, its agreements signed by `signer`."""
        return Runtime(
            db=db,
            cities=CityCatalog(rt.cities.folder, rt.cities.check, _Layers(resolved, admin_code)),
            workflows=rt.workflows,
            jobs=rt.jobs,
            registry=build_vocabulary(signer),
            products=rt.products,
            known_banks=known_banks,
            keys=KeyStore(keys_dir),
            banks=banks,
            public_base_url=public_base_url,
            definitions=rt.definitions,
            calendar_source=rt.calendar_source,
            clock=clock,
        )

    bank, sandbox_rt = SandboxBank.start(folder, bank_keys_dir, runtime, known_banks)
    try:
        people = People(
            agent=_person(sandbox_rt, "sim-agent", "agent", "仿真经纪人"),
            ops=_person(sandbox_rt, "sim-ops", "ops", "仿真运营"),
            approvers=(
                _person(sandbox_rt, "sim-ops-2", "ops", "仿真运营复核"),
                _person(sandbox_rt, "sim-finance", "finance", "仿真财务"),
            ),
        )
        yield Sandbox(sandbox_rt, bank, clock, signer, people, log)
    finally:
        bank.close()
        db.dispose()


def _path_label(path: tuple[Any, ...]) -> str:
    return " → ".join(t.event for t in path) or "（空）"


def _simulate_product(sandbox: Sandbox, city: CityConfig, product: str, paths: list[Any]) -> dict[str, Any]:
    driver = ProductDriver(sandbox.rt, sandbox.bank, sandbox.clock, city, product, sandbox.people, sandbox.log)
    rendered_before = sandbox.signer.rendered
    covered, problems, notes, ran = set(), [], [], 0
    for path, outcome in zip(paths, driver.run_all(paths), strict=True):
        if isinstance(outcome, Unreachable):
            notes.append(f"路径 {_path_label(path)}：本城市配置下条件无法满足（{outcome}）")
        elif isinstance(outcome, CunguanError):
            detail = f"：{parse_details(outcome.details)}" if outcome.details else ""
            problems.append(f"路径 {_path_label(path)}：{outcome.message}（{outcome.code}）{detail}")
        elif isinstance(outcome, PathProblem | BankProblem):
            problems.append(f"路径 {_path_label(path)}：{outcome}")
        elif outcome is not None:  # not a refusal of a service: an exception no service should let escape
            problems.append(f"路径 {_path_label(path)}：未预期的错误 {type(outcome).__name__}: {outcome}"[:600])
        else:
            ran += 1
            covered.update(path)
    rendered = sandbox.signer.rendered - rendered_before
    return {"covered": covered, "problems": problems, "notes": notes, "ran": ran, "agreements": rendered}


def _product_report(sandbox: Sandbox, city: CityConfig, product: str) -> dict[str, Any]:
    config = city.product(product)
    definition = sandbox.rt.workflow(config.workflow_id, config.workflow_version)
    paths = covering_paths(definition)
    try:
        outcome = _simulate_product(sandbox, city, product, paths)
    except Exception as error:  # a bug met by the simulation is a finding, not a crash of the command
        outcome = {"covered": set(), "problems": [f"仿真中断：{error!r}", traceback.format_exc(limit=3)], "notes": []}
        outcome |= {"ran": 0, "agreements": 0}
    uncovered = [f"{t.source} -{t.event}-> {t.target}" for t in definition.transitions if t not in outcome["covered"]]
    return {
        "product": product,
        "workflow": f"{definition.id} v{definition.version}",
        "level": "services",
        "paths": len(paths),
        "paths_run": outcome["ran"],
        "transitions_covered": len(outcome["covered"]),
        "transitions_total": len(definition.transitions),
        "uncovered": uncovered,
        "agreements_rendered": outcome["agreements"],
        "problems": outcome["problems"],
        "notes": outcome["notes"],
    }


def _path_count(sandbox: Sandbox, city: CityConfig, product: str) -> int:
    config = city.product(product)
    return len(covering_paths(sandbox.rt.workflow(config.workflow_id, config.workflow_version)))


def _product_reports(
    sandbox: Sandbox, city: CityConfig, products: list[str], progress: Progress | None
) -> list[dict[str, Any]]:
    """Each product's report; `progress` hears, in paths, how far the run is before each product and at the end."""
    if progress is None:
        return [_product_report(sandbox, city, name) for name in products]
    total = sum(_path_count(sandbox, city, name) for name in products)
    results: list[dict[str, Any]] = []
    done = 0
    for number, name in enumerate(products, 1):
        progress(done, total, f"{name}（第 {number}/{len(products)} 个业务）")
        results.append(_product_report(sandbox, city, name))
        done += results[-1]["paths"]
    progress(done, total, "账务核对")
    return results


def run_city(
    rt: Runtime, stem: str, content: str, product: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Simulate `content` as the config of `stem` (one product, or every one) with what `rt` serves - its
    workflows, definitions and calendars - and return the report, stored nowhere."""
    report: dict[str, Any] = {"city": stem, "content_sha256": content_sha256(content)}
    try:
        with rt.db.uow() as uow:
            resolved, city = validated(rt, uow.session, stem, content)
    except CityConfigInvalid as invalid:
        report |= {"ok": False, "resolved_sha256": None, "products": [], "problems": [str(p) for p in invalid.problems]}
        return report
    products = [product] if product is not None else sorted(city.products)
    with (
        tempfile.TemporaryDirectory(prefix="cunguan-sim-", dir=SANDBOX_PARENT) as folder,
        quiet_logs() as log,
        sandbox(rt, Path(folder), resolved, city.admin_code, log) as box,
    ):
        results = _product_reports(box, city, products, progress)
        maintain(box.rt)  # what workers do every few seconds: hot-account buffers folded
        with box.rt.db.uow() as uow:
            ledger_report = check_ledger(uow.session)
    problems = [p for result in results for p in result["problems"]] + ledger_report.problems
    return report | {
        "resolved_sha256": city.sha256,
        "products": results,
        "ledger": {"ok": ledger_report.ok, "problems": ledger_report.problems},
        "problems": problems,
        "ok": not problems,
    }


def simulate(
    rt: Runtime,
    stem: str,
    product: str | None = None,
    version: int | None = None,
    run_by: str = "cli",
    progress: Progress | None = None,
    addenda: Addenda | None = None,
) -> dict[str, Any]:
    """Run the simulation, store its outcome, return the report (`ok` false when anything was found).
    `progress(done, total, label)`, when given, is called as the products' paths are run (see `Progress`);
    `addenda(content)`, when given, adds to the stored report what it returns (the replay of real deals)."""
    what = target(rt, stem, version)
    report = {"city": stem, "target": what.label} | run_city(rt, stem, what.content, product, progress)
    if report["resolved_sha256"] is None:
        return report
    if addenda is not None:
        report |= addenda(what.content)
    with rt.db.uow() as uow:
        uow.session.add(
            ConfigSimulation(
                city_code=stem,
                content_sha256=report["content_sha256"],
                resolved_sha256=report["resolved_sha256"],
                complete=product is None,
                ok=report["ok"],
                report=report,
                run_by=run_by,
                created_at=rt.clock(),
            )
        )
        uow.commit()
    return report
