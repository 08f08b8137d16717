"""Readiness: can this process serve? Database, migrations, keys, PDF font subsetting, banks.

Every check answers `ok` and a short, secret-free detail (no key material, no paths, no URLs with
credentials). Bank probes are plain GETs of the bank's base URL with a short timeout: any HTTP answer
below 500 means the bank's server is there. They run in parallel and are cached for a few seconds per
process, so that a public `/readyz` cannot be used to flood the banks.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import requests
from cryptography.x509 import load_pem_x509_certificate
from sqlalchemy import text

from app.audit.mac_key import mac_key
from app.crypto import sm2_verify
from app.crypto.keys import AUDIT_MAC_KEY_FILE, public_key_pem_from_private
from app.pdf.fonts import harfbuzz_subset_problem
from app.platform.config import ROOT
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime

BANK_TIMEOUT_S = 2.0
BANK_CACHE_S = 5.0


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


_bank_cache: dict[str, tuple[float, Check]] = {}
_bank_cache_lock = threading.Lock()


def _probe_bank(base_url: str) -> Check:
    started = time.perf_counter()
    try:
        answer = requests.get(base_url, timeout=BANK_TIMEOUT_S, allow_redirects=False)
    except requests.Timeout:
        return Check(False, {"error": "timeout"})
    except requests.RequestException as error:
        return Check(False, {"error": type(error).__name__})
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return Check(answer.status_code < 500, {"http_status": answer.status_code, "latency_ms": latency_ms})


def check_banks(rt: Runtime) -> Check:
    """One probe per configured bank, in parallel; all must answer."""
    now = time.monotonic()
    results: dict[str, Check] = {}
    with _bank_cache_lock:
        for code, endpoint in rt.banks.items():
            cached = _bank_cache.get(endpoint.base_url)
            if cached is not None and now - cached[0] < BANK_CACHE_S:
                results[code] = cached[1]
    missing = {code: endpoint.base_url for code, endpoint in rt.banks.items() if code not in results}
    if missing:
        with ThreadPoolExecutor(max_workers=len(missing)) as pool:
            probed = dict(zip(missing, pool.map(_probe_bank, missing.values()), strict=True))
        with _bank_cache_lock:
            for code, check in probed.items():
                _bank_cache[missing[code]] = (time.monotonic(), check)
        results.update(probed)
    ok = all(check.ok for check in results.values())
    return Check(ok, {"banks": {code: results[code].as_json() for code in sorted(results)}})


def readiness(rt: Runtime) -> Readiness:
    database, migrations = check_database(rt)
    return Readiness(
        {
            "database": database,
            "migrations": migrations,
            "keys": check_keys(rt),
            "harfbuzz_subset": check_harfbuzz(),
            "banks": check_banks(rt),
        }
    )
