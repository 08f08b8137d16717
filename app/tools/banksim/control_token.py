"""The simulator's control token: its page and every /sim/ endpoint (pay-ins, faults, limits, the state) ask
for it, so that only the person who started the simulator and their local tools can move money or read its
state (the bank-facing API, /<bank>/v1/…, is signed with SM2 instead).

`serve` makes a new random token at each start, prints it (and the page's address with it) and keeps it in a
0600 file in the simulated banks' keys folder, where local tools (the CLI, tests, the sandbox) read it.
Tools send it in the `X-Sim-Token` header; a browser opens the page once with `?token=…` (kept in its session
cookie from then on) and the page's forms carry it in a hidden field."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from flask import Response, current_app, jsonify, request, session

TOKEN_HEADER = "X-Sim-Token"
TOKEN_FIELD = "sim_token"  # the hidden field of the simulator page's forms
TOKEN_QUERY = "token"  # the address `serve` prints: /?token=…
TOKEN_FILE = "sim-control.token"
CONFIG_KEY = "SIM_CONTROL_TOKEN"


def new_control_token() -> str:
    return secrets.token_urlsafe(32)


def control_token_path(keys_dir: Path) -> Path:
    return Path(keys_dir) / TOKEN_FILE


def write_control_token(keys_dir: Path, token: str) -> Path:
    """Keep `token` where local tools find it, readable by its owner only (created 0600, never wider)."""
    path = control_token_path(keys_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    spare = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    descriptor = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(token)
    os.replace(spare, path)
    return path


def read_control_token(keys_dir: Path) -> str:
    """The token of the simulator started with `keys_dir`; empty if none was started there."""
    try:
        return control_token_path(keys_dir).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""


def _presented() -> str:
    token = request.headers.get(TOKEN_HEADER)
    if token is None and request.method == "POST" and not request.is_json:
        token = request.form.get(TOKEN_FIELD)
    if token is None and request.method == "GET":
        token = request.args.get(TOKEN_QUERY)
    if token is None:
        token = session.get(TOKEN_FIELD)
    return token if isinstance(token, str) else ""


def is_protected(path: str) -> bool:
    return path == "/" or path.startswith("/sim/")


def require_control_token() -> tuple[Response, int] | None:
    """A `before_request` hook: 401 with a JSON error for the page or a /sim/ request without the right token;
    the right one is remembered in the browser's session (signed with a key made at start)."""
    if not is_protected(request.path):
        return None
    expected: str = current_app.config[CONFIG_KEY]
    if hmac.compare_digest(_presented().encode(), expected.encode()):
        if request.path == "/":
            session[TOKEN_FIELD] = expected
        return None
    message = f"缺少或错误的模拟器控制令牌：请在请求头 {TOKEN_HEADER} 中携带模拟器启动时打印的令牌"
    return jsonify(code="SIM_TOKEN_REQUIRED", message=message), 401
