"""Build the Runtime from a Config: database, catalogs, the workflow vocabulary and workflows, keys, PII keyring."""

from __future__ import annotations

from app.agreements import countersign
from app.agreements.service import sign_agreement
from app.audit.mac_key import mac_key
from app.banks import accounts as account_jobs
from app.cities.launches import DbLaunches
from app.cities.sources import DbCitySource
from app.db.pii import keyring
from app.db.session import Database
from app.deals import bank_freeze, case_blocks
from app.deals.vocabulary import build_vocabulary
from app.definitions.banks import BankEndpoints, PublishedBanks
from app.definitions.calendars import PublishedCalendars
from app.definitions.kinds import build_kinds
from app.definitions.products import PublishedProducts
from app.definitions.store import DefinitionStore
from app.definitions.templates import served_checker
from app.definitions.workflows import WorkflowLibrary
from app.domain.cities import CityCatalog
from app.payouts import jobs as payout_jobs
from app.platform.config import ROOT, Config
from app.platform.runtime import JobHandler, KeyStore, Runtime
from app.signing.sms import sms_gateway
from app.state_machine.definition import WorkflowDefinition
from app.state_machine.loader import load_definition
from app.state_machine.registry import Registry

WORKFLOWS_DIR = ROOT / "workflows"
CITY_CONFIGS_DIR = ROOT / "city_configs"
TEMPLATES_DIR = ROOT / "agreement_templates"


def build_registry() -> Registry:
    """The platform's workflow vocabulary: every guard and action by name, agreements signed with the platform's
    key. Built here at start-up, kept on the Runtime; nothing registers on import."""
    return build_vocabulary(signer=sign_agreement)


def load_workflows(registry: Registry | None = None) -> dict[tuple[str, int], WorkflowDefinition]:
    """Every shipped workflow, checked against `registry` (the platform's vocabulary when not given)."""
    registry = build_registry() if registry is None else registry
    definitions = [load_definition(path, registry) for path in sorted(WORKFLOWS_DIR.glob("*.json"))]
    return {(d.id, d.version): d for d in definitions}


def job_table() -> dict[str, JobHandler]:
    """Every job kind the worker runs, from the features that own them (the city simulation's, a tool outside
    the core, is added by the app factory)."""
    return {
        **account_jobs.JOBS,
        **countersign.JOBS,
        **payout_jobs.JOBS,
        **bank_freeze.JOBS,
        "settle_empty_release": case_blocks.settle_empty_release,
    }


def build_runtime(config: Config) -> Runtime:
    assert config.keys_dir is not None
    keyring.configure_from_folder(config.keys_dir)  # pii.key (k1), pii.k2.key … and pii-index.key
    mac_key.configure_from_folder(config.keys_dir)  # audit-mac.key: the audit log refuses to write without it
    registry = build_registry()
    db = Database(config.database_url)
    definitions = DefinitionStore(db, build_kinds())
    workflows = WorkflowLibrary(definitions, registry)  # published versions, live: no restart to add one
    products = PublishedProducts(definitions)  # every product's declaration, as published: live
    known_banks = PublishedBanks(definitions)  # every bank's facts, as published: live
    keys = KeyStore(config.keys_dir, known_banks.certificate)  # a bank's key file, else its config's certificate
    return Runtime(
        db=db,
        # the published version in the database; the shipped file while a city has none
        cities=CityCatalog(
            CITY_CONFIGS_DIR,
            served_checker(workflows, definitions, known_banks, products),
            DbCitySource(db, CITY_CONFIGS_DIR),
            DbLaunches(db, CITY_CONFIGS_DIR),
        ),
        workflows=workflows,
        registry=registry,
        products=products,
        known_banks=known_banks,
        keys=keys,
        banks=BankEndpoints(config.banks, known_banks),
        public_base_url=config.public_base_url,
        definitions=definitions,
        calendar_source=PublishedCalendars(definitions).current,
        bank_timeout_s=config.bank_timeout_s,
        calendar_warn_days=config.calendar_warn_days,
        tsa_url=config.tsa_url,
        tsa_certificate=config.tsa_certificate,
        sms=sms_gateway(config.sms_url, config.instance_path),
        party_signing=config.party_signing,
        config_validation_budget_s=config.config_validation_budget_s,
        jobs=job_table(),
        audit_checkpoints=config.instance_path / "audit" / "checkpoints.jsonl",
    )
