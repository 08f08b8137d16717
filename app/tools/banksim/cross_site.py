"""Cross-site requests to the simulator's /sim/ endpoints are refused: a web page in the tester's browser
must not pay money into a deal or change faults. A browser names where a request comes from
(Sec-Fetch-Site, Origin); tools (curl, requests, the CLI) send neither and pass."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, jsonify, request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


def _origin_host(origin: str) -> str | None:
    parts = urlsplit(origin)
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


def is_cross_site() -> bool:
    """True for a state-changing /sim/ request a browser sent from another site."""
    if request.method in SAFE_METHODS or not request.path.startswith("/sim/"):
        return False
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in ALLOWED_FETCH_SITES:
        return True
    origin = request.headers.get("Origin")
    return origin is not None and _origin_host(origin) != request.host.lower()


def refuse_cross_site() -> tuple[Response, int] | None:
    """A `before_request` hook: 403 with a JSON error for a cross-site request, nothing otherwise."""
    if is_cross_site():
        return jsonify(code="CROSS_SITE_REQUEST", message="拒绝跨站请求：模拟器控制接口只接受本站页面或命令行调用"), 403
    return None
