"""Build the Runtime from a Config: database, catalogs, workflows, keys, PII keyring."""

from __future__ import annotations

from app.banks import accounts as account_jobs
from app.cities.sources import DbCitySource
from app.db.pii import keyring
from app.db.session import Database
from app.deals import case_blocks
from app.deals.workflow import registry
from app.domain.cities import CityCatalog
from app.domain.city_checks import checker
from app.payouts import jobs as payout_jobs
from app.platform.config import ROOT, Config
from app.platform.runtime import JobHandler, KeyStore, Runtime
from app.state_machine.definition import WorkflowDefinition
from app.state_machine.loader import load_definition

WORKFLOWS_DIR = ROOT / "workflows"
CITY_CONFIGS_DIR = ROOT / "city_configs"
TEMPLATES_DIR = ROOT / "agreement_templates"


def load_workflows() -> dict[tuple[str, int], WorkflowDefinition]:
    import app.deals.case_blocks  # noqa: F401 - registers every guard and action before loading

    definitions = [load_definition(path, registry) for path in sorted(WORKFLOWS_DIR.glob("*.json"))]
    return {(d.id, d.version): d for d in definitions}


def job_table() -> dict[str, JobHandler]:
    """Every job kind the worker runs, from the features that own them (the city simulation's, a tool outside
    the core, is added by the app factory)."""
    return {
        **account_jobs.JOBS,
        **payout_jobs.JOBS,
        "settle_empty_release": case_blocks.settle_empty_release,
    }


def build_runtime(config: Config) -> Runtime:
    assert config.keys_dir is not None
    keys = KeyStore(config.keys_dir)
    keyring.configure_from_folder(config.keys_dir)  # pii.key (k1), pii.k2.key … and pii-index.key
    workflows = load_workflows()
    db = Database(config.database_url)
    return Runtime(
        db=db,
        # the published version in the database; the shipped file while a city has none
        cities=CityCatalog(CITY_CONFIGS_DIR, checker(workflows, TEMPLATES_DIR), DbCitySource(db, CITY_CONFIGS_DIR)),
        workflows=workflows,
        keys=keys,
        banks=config.banks,
        public_base_url=config.public_base_url,
        bank_timeout_s=config.bank_timeout_s,
        jobs=job_table(),
    )
