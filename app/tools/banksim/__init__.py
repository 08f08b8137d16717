"""The bank simulator: a separate Flask process that behaves like a custodian bank speaking protocol v1.

`create_simulator_app(config)` builds the app; the `serve` command (cli.py) starts its background
worker exactly once and serves it. State lives in the simulator's own SQLite file.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app.banks.protocol import MAX_BODY_BYTES
from app.domain.banks import KnownBank
from app.domain.money import format_yuan
from app.platform.errors import CunguanError
from app.tools.banksim.api import bank_api
from app.tools.banksim.banks import simulated_banks
from app.tools.banksim.context import EXTENSION_KEY, Simulator, load_keys
from app.tools.banksim.control_token import CONFIG_KEY, new_control_token, require_control_token
from app.tools.banksim.controls import sim_controls
from app.tools.banksim.cross_site import refuse_cross_site
from app.tools.banksim.delivery import DELIVERY_PARALLEL, CallbackSender
from app.tools.banksim.operations import BankOperations
from app.tools.banksim.sim_views import sim_views
from app.tools.banksim.store import Store
from app.tools.banksim.worker import BackgroundWorker

DISPLAY_TIMEZONE = ZoneInfo("Asia/Shanghai")
_HTTP_ERRORS = {
    404: ("NOT_FOUND", "接口不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持的请求方法"),
    413: ("BODY_TOO_LARGE", "请求体过大"),
}


@dataclass(frozen=True)
class SimulatorConfig:
    db_path: Path
    keys_dir: Path
    open_delay_s: float = 1.0
    payout_delay_s: float = 1.0
    delivery_parallel: int = DELIVERY_PARALLEL  # callbacks sent at once (see delivery.py)
    clock: Callable[[], float] = field(default=time.time)  # injectable for tests
    control_token: str = field(default_factory=new_control_token)  # see control_token.py
    # the banks it plays (a runtime's `known_banks`, bank files); None: the repository's (`bank_configs/`)
    banks: Mapping[str, KnownBank] | None = None


def create_simulator_app(config: SimulatorConfig) -> Flask:
    banks = simulated_banks(config.banks)
    keys = load_keys(config.keys_dir, banks)
    store = Store(config.db_path)
    operations = BankOperations(
        store,
        open_delay_s=config.open_delay_s,
        payout_delay_s=config.payout_delay_s,
        clock=config.clock,
        banks=banks,
    )
    sender = CallbackSender(store, keys.bank_private_keys, clock=config.clock, parallel=config.delivery_parallel)
    worker = BackgroundWorker(operations, sender)
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES, SECRET_KEY=secrets.token_hex(32), **{CONFIG_KEY: config.control_token}
    )
    app.json.ensure_ascii = False
    app.extensions[EXTENSION_KEY] = Simulator(store, operations, worker, keys)
    app.add_template_filter(format_yuan, "yuan")
    app.add_template_filter(_local_time, "local_time")
    app.register_error_handler(CunguanError, _error_answer)
    app.register_error_handler(HTTPException, _http_error_answer)
    app.before_request(refuse_cross_site)
    app.before_request(require_control_token)  # after the cross-site check: a token never makes those pass
    app.register_blueprint(bank_api)
    app.register_blueprint(sim_views)
    app.register_blueprint(sim_controls)
    return app


def _local_time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, DISPLAY_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")


def _error_answer(error: CunguanError) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error.to_dict()), error.http_status, getattr(error, "headers", {})


def _http_error_answer(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    code, message = _HTTP_ERRORS.get(status, (f"HTTP_{status}", "请求无法处理"))
    return jsonify(code=code, message=message), status
