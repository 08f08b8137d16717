"""/healthz, /readyz and the request id: public, JSON, no secrets; 503 names what is missing."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.db.base import Base
from app.ops import bank_reachability, readiness
from app.platform.cli import alembic_config
from app.platform.config import BankEndpoint
from app.platform.logs import ContextFilter, JsonFormatter
from app.platform.request_context import bind_context
from app.platform.runtime import Runtime
from tests.conftest import make_config


@pytest.fixture(autouse=True)
def _fresh_bank_cache() -> None:
    bank_reachability.clear_cache()


def _stamp(rt: Runtime) -> None:
    command.stamp(alembic_config(rt.db.url), "head")


def _ready_app(tmp_path: Path, database_url: str, keys_dir: Path, bank_url: str) -> Flask:
    app = create_app(make_config(tmp_path / "instance", database_url, keys_dir, bank_url=bank_url))
    rt: Runtime = app.extensions["cunguan.runtime"]
    Base.metadata.create_all(rt.db.engine)
    _stamp(rt)
    return app


def test_healthz_is_public(client: FlaskClient) -> None:
    answer = client.get("/healthz")
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})


def test_readyz_is_200_when_everything_is_there_and_shows_no_secrets(
    tmp_path: Path, database_url: str, keys_dir: Path, bank_server: str
) -> None:
    app = _ready_app(tmp_path, database_url, keys_dir, bank_server)
    try:
        answer = app.test_client().get("/readyz")
        body = answer.get_json()
        assert answer.status_code == 200, body
        assert body["status"] == "ready"
        checks = body["checks"]
        assert set(checks) == {"database", "migrations", "keys", "harfbuzz_subset"}
        assert all(check["ok"] for check in checks.values())
        assert checks["migrations"]["database"] == checks["migrations"]["head"] == list(readiness.migration_heads())
        text = answer.get_data(as_text=True)
        private_key = (keys_dir / "platform.key.pem").read_text()
        for secret in ("test-secret", private_key.splitlines()[1], (keys_dir / "pii.key").read_text().strip()):
            assert secret not in text
        assert (
            str(tmp_path) not in text
            and "sqlite:" not in text
            and "postgresql" not in text.replace('"dialect":"postgresql"', "")
        )
        assert answer.headers["Cache-Control"] == "no-store"
    finally:
        app.extensions["cunguan.runtime"].db.dispose()


def test_readyz_is_503_and_names_each_problem(client: FlaskClient, rt: Runtime) -> None:
    """The fixture app: tables made without migrations (not stamped), its bank at a closed port."""
    answer = client.get("/readyz")
    body = answer.get_json()
    assert answer.status_code == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"] == {"ok": False, "database": [], "head": list(readiness.migration_heads())}
    assert "banks" not in body["checks"], "an unreachable bank is a metric, not a readiness failure"
    _stamp(rt)
    assert client.get("/readyz").get_json()["checks"]["migrations"]["ok"] is True


def test_readyz_reports_missing_keys_by_name(
    tmp_path: Path, database_url: str, keys_dir: Path, bank_server: str
) -> None:
    partial = tmp_path / "keys"
    shutil.copytree(keys_dir, partial)
    (partial / "pii.key").unlink()
    (partial / "audit-mac.key").unlink()
    (partial / "banks" / "ceb.pub.pem").write_text("not a key")
    app = _ready_app(tmp_path, database_url, partial, bank_server)
    try:
        body = app.test_client().get("/readyz").get_json()
        assert body["checks"]["keys"] == {
            "ok": False,
            "problems": [
                "pii.key: KEY_MISSING",
                "audit-mac.key: AUDIT_MAC_KEY_MISSING",
                "banks/ceb.pub.pem: INVALID_KEY",
            ],
        }
        assert "not a key" not in json.dumps(body)
        assert body["status"] == "not_ready"
    finally:
        app.extensions["cunguan.runtime"].db.dispose()


def test_bank_probes_report_each_bank(rt: Runtime, bank_server: str) -> None:
    rt.banks = {
        "ceb": BankEndpoint("ceb", "中国光大银行", bank_server),
        "icbc": BankEndpoint("icbc", "中国工商银行", "http://127.0.0.1:9/icbc"),
    }
    reach = bank_reachability.bank_reachability(rt)
    assert reach["ceb"].ok is True and reach["ceb"].http_status == 404
    assert reach["icbc"].as_json() == {"ok": False, "error": "ConnectionError"}


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc_DEF"})
    assert given.headers["X-Request-ID"] == "lb-1234.abc_DEF"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32 and generated != client.get("/healthz").headers["X-Request-ID"]
    hostile = client.get("/healthz", headers={"X-Request-ID": 'x", "level": "ERROR' + "y" * 80}).headers["X-Request-ID"]
    assert len(hostile) == 32 and '"' not in hostile
    assert client.get("/login").headers["X-Request-ID"], "pages too, not only machine endpoints"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_log_lines_carry_request_id_deal_and_bank(app: Flask) -> None:
    capture = _Capture()
    logger = logging.getLogger("cunguan.test")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        with app.test_request_context("/deals/42", headers={"X-Request-ID": "req-7"}):
            app.preprocess_request()  # the before_request hooks, ours first (login's redirect is ignored here)
            logger.info("deal page")
        with app.test_request_context("/api/banks/ceb/notifications", method="POST"):
            app.preprocess_request()
            logger.info("callback")
        with bind_context(deal_id=9, bank="icbc", job_id=3):
            logger.info("inside a job")
        logger.info("outside")
    finally:
        logger.removeHandler(capture)
    entries = {entry["message"]: entry for entry in map(json.loads, capture.lines)}
    assert (entries["deal page"]["request_id"], entries["deal page"]["deal_id"]) == ("req-7", 42)
    assert entries["callback"]["bank"] == "ceb" and len(entries["callback"]["request_id"]) == 32
    assert "deal_id" not in entries["callback"], "the previous request's values were reset at its teardown"
    assert (entries["inside a job"]["deal_id"], entries["inside a job"]["bank"]) == (9, "icbc")
    assert not {"deal_id", "bank", "job_id", "request_id"} & set(entries["outside"]), "nothing leaks past the block"


def test_a_jobs_log_lines_carry_job_deal_and_bank_and_nothing_outlives_the_job(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.platform import request_context
    from app.queue import worker
    from app.queue.jobs import enqueue

    capture = _Capture()
    logger = logging.getLogger("cunguan.test.job")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)

    def handler(_rt: Runtime, payload: dict) -> None:
        request_context.bind_job_context(deal_id=payload["deal"], bank="pab")  # as bank_jobs does, without reset
        logger.info("handling")

    monkeypatch.setitem(rt.jobs, "test_job", handler)
    with rt.db.uow() as uow:
        job_id = enqueue(uow.session, "test_job", {"deal": 5}, now=rt.clock()).id
        uow.commit()
    try:
        assert worker.run_one(rt, "test-worker") is True
        logger.info("after")
    finally:
        logger.removeHandler(capture)
    entries = {entry["message"]: entry for entry in map(json.loads, capture.lines)}
    assert (entries["handling"]["job_id"], entries["handling"]["deal_id"], entries["handling"]["bank"]) == (
        job_id,
        5,
        "pab",
    )
    assert request_context.current() == {} and "deal_id" not in entries["after"]
    request_context.bind_job_context(deal_id=6)  # a handler called directly, outside a worker's job
    assert request_context.current() == {}


def test_behind_a_proxy_the_client_address_comes_from_x_forwarded_for(
    tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from flask import request

    monkeypatch.setenv("CUNGUAN_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CUNGUAN_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("CUNGUAN_SECRET_KEY", "proxy-test")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'proxy.db'}")
    seen: list[str | None] = []
    for hops in ("0", "1"):
        monkeypatch.setenv("CUNGUAN_PROXY_HOPS", hops)
        import wsgi

        app = importlib.reload(wsgi).app
        app.before_request(lambda: seen.append(request.remote_addr))
        app.test_client().get(
            "/healthz", headers={"X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
        )
        app.extensions["cunguan.runtime"].db.dispose()
    assert seen == ["10.0.0.2", "203.0.113.9"]
