"""Readiness: can this process serve? Only what this process needs: database, migrations, keys, PDF font
subsetting. Banks are not checked here: one unreachable bank must not take every web process (and so the
callbacks of every other bank) out of the load balancer; their reachability is a metric and a staff page
section (`app.ops.bank_reachability`).

Every check answers `ok` and a short, secret-free detail (no key material, no paths, no URLs with
credentials).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cryptography.x509 import load_pem_x509_certificate
from sqlalchemy import text

from app.audit.mac_key import mac_key
from app.crypto import sm2_verify
from app.crypto.keys import AUDIT_MAC_KEY_FILE, public_key_pem_from_private
from app.pdf.fonts import harfbuzz_subset_problem
from app.platform.config import ROOT
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.detail}


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "checks": {name: check.as_json() for name, check in self.checks.items()},
        }


@cache
def migration_heads() -> tuple[str, ...]:
    """The head revision(s) of the migration scripts shipped with this code (read once per process)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))


def check_database(rt: Runtime) -> tuple[Check, Check]:
    """(database reachable, migrations current) - one connection for both."""
    from alembic.runtime.migration import MigrationContext

    heads = migration_heads()
    started = time.perf_counter()
    try:
        with rt.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
            connection.rollback()
    except Exception as error:  # any driver error: report its class only (messages may carry hosts and users)
        failed = Check(False, {"error": type(error).__name__})
        return failed, Check(False, {"error": "database unreachable", "head": list(heads)})
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    database = Check(True, {"dialect": rt.db.engine.dialect.name, "latency_ms": latency_ms})
    migrations = Check(current == heads, {"database": list(current), "head": list(heads)})
    return database, migrations


def check_keys(rt: Runtime) -> Check:
    """Every key the process needs can be read (and the PEM ones parsed); names only, never contents."""
    problems: list[str] = []

    def attempt(name: str, load: Any) -> None:
        try:
            load()
        except CunguanError as error:
            problems.append(f"{name}: {error.code}")
        except Exception as error:  # unreadable or not parseable
            problems.append(f"{name}: {type(error).__name__}")

    attempt("platform.key.pem", lambda: public_key_pem_from_private(rt.keys.platform_private_key_pem))
    attempt("platform.cert.pem", lambda: load_pem_x509_certificate(rt.keys.platform_certificate_pem))
    attempt("pii.key", lambda: _check_pii_key(rt.keys.pii_key()))
    attempt(AUDIT_MAC_KEY_FILE, mac_key.key)  # loaded at start-up: the audit log writes nothing without it
    for code in sorted(rt.banks):  # parsing happens in the verifier; a bad signature answers False, a bad key raises
        attempt(f"banks/{code}.pub.pem", lambda code=code: sm2_verify(rt.keys.bank_public_key_pem(code), b"", b"0\x00"))
    return Check(not problems, {"problems": problems} if problems else {})


def _check_pii_key(key: bytes) -> None:
    if len(key) != 16:  # SM4 keys are 128 bits
        raise ValueError("wrong length")


def check_harfbuzz() -> Check:
    problem = harfbuzz_subset_problem()
    return Check(problem is None, {"problem": problem} if problem else {})


def readiness(rt: Runtime) -> Readiness:
    database, migrations = check_database(rt)
    return Readiness(
        {
            "database": database,
            "migrations": migrations,
            "keys": check_keys(rt),
            "harfbuzz_subset": check_harfbuzz(),
        }
    )
