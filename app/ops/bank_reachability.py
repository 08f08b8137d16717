"""Bank reachability: can this platform reach each configured bank's server? A metric and a staff page
section, never a readiness failure (one bank down must not take every web process out of the load balancer).

Probes are plain GETs of the bank's base URL with a short timeout: any HTTP answer below 500 means the bank's
server is there. They run in parallel and are cached for a few seconds per process, so that scrapes and page
views cannot be used to flood the banks. Details are secret-free (status, latency or the error's class).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from app.platform.runtime import Runtime

BANK_TIMEOUT_S = 2.0
BANK_CACHE_S = 5.0


@dataclass(frozen=True)
class Reachability:
    ok: bool
    http_status: int | None = None
    latency_ms: float | None = None
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        detail: dict[str, object] = {"ok": self.ok}
        if self.http_status is not None:
            detail["http_status"] = self.http_status
        if self.latency_ms is not None:
            detail["latency_ms"] = self.latency_ms
        if self.error is not None:
            detail["error"] = self.error
        return detail


_cache: dict[str, tuple[float, Reachability]] = {}
_cache_lock = threading.Lock()


def probe(base_url: str) -> Reachability:
    started = time.perf_counter()
    try:
        answer = requests.get(base_url, timeout=BANK_TIMEOUT_S, allow_redirects=False)
    except requests.Timeout:
        return Reachability(False, error="timeout")
    except requests.RequestException as error:
        return Reachability(False, error=type(error).__name__)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return Reachability(answer.status_code < 500, http_status=answer.status_code, latency_ms=latency_ms)


def bank_reachability(rt: Runtime) -> dict[str, Reachability]:
    """One probe per configured bank (in parallel, cached per base URL), by bank code."""
    now = time.monotonic()
    results: dict[str, Reachability] = {}
    with _cache_lock:
        for code, endpoint in rt.banks.items():
            cached = _cache.get(endpoint.base_url)
            if cached is not None and now - cached[0] < BANK_CACHE_S:
                results[code] = cached[1]
    missing = {code: endpoint.base_url for code, endpoint in rt.banks.items() if code not in results}
    if missing:
        with ThreadPoolExecutor(max_workers=len(missing)) as pool:
            probed = dict(zip(missing, pool.map(probe, missing.values()), strict=True))
        with _cache_lock:
            for code, result in probed.items():
                _cache[missing[code]] = (time.monotonic(), result)
        results.update(probed)
    return {code: results[code] for code in sorted(results)}


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
