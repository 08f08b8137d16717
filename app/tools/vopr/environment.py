"""The seeded fault simulation's per-process set-up: keys, workflows and a template database made once per
process and copied per seed, the runtime with the in-process bank, and the seed's process-wide stand-ins (the
PII keyring of the simulation's keys and the PDF renderer)."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from app.audit.mac_key import mac_key
from app.banks.gateway import BankGateway
from app.banks.registry import configured_banks
from app.cities.sources import DbCitySource
from app.db.base import Base
from app.db.pii import keyring
from app.db.session import Database
from app.definitions.kinds import build_kinds
from app.definitions.store import DefinitionStore
from app.domain.cities import CityCatalog
from app.domain.city_checks import checker
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, build_registry, job_table, load_workflows
from app.platform.config import DEFAULT_BANKS, BankEndpoint
from app.platform.runtime import KeyStore, Runtime
from app.products.loader import repository_products
from app.seals.issue import bank_seal_path
from app.tools.banksim.keys import bank_certificate_path, bank_private_key_path, provision_simulated_banks
from app.users.service import create_user

BANK = "ceb"
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
PASSWORD = "Simulation-Only-1"


@dataclass(frozen=True)
class Template:
    folder: Path
    keys: KeyStore
    # the fake bank's own key, certificate (the platform has it) and GB/T 38540 seal, to sign agreements
    bank_seal: tuple[bytes, bytes, bytes]
    db_file: Path
    workflows: dict[Any, Any]


@cache
def _fast_pdf() -> bytes:
    from app.pdf.render import html_to_pdf

    return html_to_pdf("<html><body><p>仿真协议 simulation stand-in</p></body></html>")


@contextlib.contextmanager
def sim_environment(keys_folder: Path) -> Iterator[None]:
    """The PII keyring of the simulation's keys and the PDF stand-in (see the module docstring), for the
    duration of a seed only: both are process-wide, and the rest of a test session must not see them."""
    import app.agreements.service as agreements

    saved_keyring, saved_render, saved_mac_key = dict(vars(keyring)), agreements.html_to_pdf, dict(vars(mac_key))
    mac_key.configure_from_folder(keys_folder)  # the simulation's audit entries are MACed with its own key
    if hasattr(keyring, "configure_from_folder"):  # pii.key, pii.k2.key … and pii-index.key
        keyring.configure_from_folder(keys_folder)
    else:
        keyring.configure({"k1": KeyStore(keys_folder).pii_key()}, active="k1")
    agreements.html_to_pdf = lambda _html: _fast_pdf()  # type: ignore[assignment]
    try:
        yield
    finally:
        agreements.html_to_pdf = saved_render  # type: ignore[assignment]
        vars(keyring).clear()
        vars(keyring).update(saved_keyring)
        vars(mac_key).clear()
        vars(mac_key).update(saved_mac_key)


@cache
def template() -> Template:
    """Keys, workflows and an empty database with the users, made once per process and copied per seed."""
    folder = Path(tempfile.mkdtemp(prefix="cunguan-vopr-", dir=tmp_root()))
    bank_keys = folder / "bank-keys"
    # seal certificates valid from before the run: the processes' clocks are skewed, also backwards (vopr.py)
    provision_simulated_banks(folder / "keys", bank_keys, [BANK], certificate_valid_from=START - timedelta(hours=1))
    keys = KeyStore(folder / "keys")
    seal = (
        bank_private_key_path(bank_keys, BANK).read_bytes(),
        bank_certificate_path(bank_keys, BANK).read_bytes(),
        bank_seal_path(bank_keys, BANK).read_bytes(),
    )
    workflows = load_workflows()
    db_file = folder / "template.db"
    db = Database(f"sqlite:///{db_file}")
    Base.metadata.create_all(db.engine)
    rt = sim_runtime(db, keys, workflows, lambda: START)
    with sim_environment(keys.folder):
        create_user(rt, "agent", PASSWORD, "agent", "仿真经纪人")
        create_user(rt, "ops", PASSWORD, "ops", "仿真运营")
        create_user(rt, "finance", PASSWORD, "finance", "仿真财务")
    db.dispose()
    atexit.register(shutil.rmtree, folder, True)
    return Template(folder, keys, seal, db_file, workflows)


def tmp_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


class SimRuntime(Runtime):
    """The real Runtime, with the bank gateway replaced by the in-process bank."""

    sim_bank: BankGateway | None = None

    def gateway(self, bank_code: str) -> BankGateway:
        self.bank(bank_code)
        assert self.sim_bank is not None
        return self.sim_bank


def sim_runtime(db: Database, keys: KeyStore, workflows: dict[Any, Any], clock: Callable[[], datetime]) -> SimRuntime:
    name, per_second, per_day = DEFAULT_BANKS[BANK]  # the bank file's name and contract limits
    products = repository_products()
    return SimRuntime(
        db=db,
        cities=CityCatalog(
            CITY_CONFIGS_DIR,
            checker(workflows, TEMPLATES_DIR, configured_banks(), products),
            DbCitySource(db, CITY_CONFIGS_DIR),
        ),
        workflows=workflows,
        registry=build_registry(),
        products=products,
        keys=keys,
        banks={BANK: BankEndpoint(BANK, name, f"http://bank.invalid/{BANK}", per_second, per_day)},
        public_base_url="http://127.0.0.1:9",
        definitions=DefinitionStore(db, build_kinds()),
        clock=clock,
        jobs=job_table(),
    )
