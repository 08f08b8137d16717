"""Issue 16, operations: an unreachable bank is a metric and a staff page section, never a readiness failure;
the worker survives dropped database connections; production refuses the simulator's bank URLs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import create_app
from app.ops import bank_reachability
from app.platform.cli import alembic_config
from app.platform.config import DEFAULT_BANKS, BankEndpoint, Config, ConfigError
from app.platform.runtime import Runtime
from app.queue import jobs, worker

CLOSED_PORT_URL = "http://127.0.0.1:9/icbc"


@pytest.fixture(autouse=True)
def _fresh_probe_cache() -> None:
    bank_reachability.clear_cache()


@pytest.fixture
def one_bank_down(rt: Runtime, bank_server: str) -> Runtime:
    """Migrations current (stamped), keys there, bank ceb answering, bank icbc at a closed port."""
    command.stamp(alembic_config(rt.db.url), "head")
    rt.banks = {
        "ceb": BankEndpoint("ceb", "中国光大银行", bank_server),
        "icbc": BankEndpoint("icbc", "中国工商银行", CLOSED_PORT_URL),
    }
    return rt


def test_readyz_stays_200_when_a_bank_is_unreachable(client: FlaskClient, one_bank_down: Runtime) -> None:
    answer = client.get("/readyz")
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "keys", "harfbuzz_subset"}


def test_bank_reachability_is_a_metric(login: Callable[[str], FlaskClient], one_bank_down: Runtime) -> None:
    text = login("ops").get("/metrics").get_data(as_text=True)
    assert 'cunguan_bank_reachable{bank="ceb"} 1' in text
    assert 'cunguan_bank_reachable{bank="icbc"} 0' in text
    assert 'cunguan_bank_probe_latency_seconds{bank="ceb"}' in text
    assert 'cunguan_bank_probe_latency_seconds{bank="icbc"}' not in text, "no latency for a bank that did not answer"
    assert CLOSED_PORT_URL not in text


def test_staff_dashboard_shows_each_banks_reachability(
    login: Callable[[str], FlaskClient], one_bank_down: Runtime
) -> None:
    page = login("ops").get("/admin/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="bank-reachability"' in html
    ceb = html.split('data-bank="ceb"', 1)[1].split("</tr>", 1)[0]
    icbc = html.split('data-bank="icbc"', 1)[1].split("</tr>", 1)[0]
    assert "可达" in ceb and "不可达" not in ceb and "HTTP 404" in ceb
    assert "不可达" in icbc and "ConnectionError" in icbc
    assert CLOSED_PORT_URL not in html, "the page names banks, not their URLs"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _enqueue(rt: Runtime, n: int) -> None:
    """Through an engine of its own: the test must not trip over the connections it drops for the worker."""
    engine = create_engine(rt.db.url)
    try:
        with Session(engine) as session:
            jobs.enqueue(session, "test_job", {"n": n}, now=rt.clock())
            session.commit()
    finally:
        engine.dispose()


def _track_backends(rt: Runtime) -> set[int]:
    """The PostgreSQL backend ids of the connections the runtime's pool opens from now on."""
    pids: set[int] = set()
    if rt.db.engine.dialect.name == "postgresql":
        rt.db.engine.dispose()  # the connections opened so far are closed: every later one is seen
        event.listen(rt.db.engine, "connect", lambda connection, _record: pids.add(connection.info.backend_pid))
    return pids


def _drop_connections(rt: Runtime, pids: set[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: terminate the worker's pooled connections (pg_terminate_backend) under its feet.
    SQLite: the next three claims fail as a dropped connection does."""
    if rt.db.engine.dialect.name == "postgresql":
        assert pids, "the worker's pooled connections were there to drop"
        engine = create_engine(rt.db.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                dropped = connection.execute(
                    text("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM unnest(:pids) AS pid"),
                    {"pids": sorted(pids)},
                ).scalar_one()
        finally:
            engine.dispose()
        assert dropped == len(pids)
        return
    claim, failures = jobs.claim, [3]

    def flaky_claim(*args: object, **kwargs: object) -> object:
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("SELECT jobs", {}, Exception("server closed the connection unexpectedly"))
        return claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "claim", flaky_claim)


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_worker_survives_dropped_database_connections(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    command.stamp(alembic_config(rt.db.url), "head")
    monkeypatch.setattr(worker, "RECONNECT_FIRST_S", 0.05)
    done: list[int] = []
    monkeypatch.setitem(rt.jobs, "test_job", lambda _rt, payload: done.append(payload["n"]))
    lines = _Lines()
    logging.getLogger("cunguan.worker").addHandler(lines)
    pids = _track_backends(rt)
    stop = threading.Event()
    ran: list[int] = []
    thread = threading.Thread(target=lambda: ran.append(worker.run_worker(rt, should_stop=stop.is_set, poll_s=0.05)))
    thread.start()
    try:
        _enqueue(rt, 1)
        _wait_for(lambda: done == [1])
        _drop_connections(rt, pids, monkeypatch)
        _enqueue(rt, 2)
        _wait_for(lambda: done == [1, 2])
        assert thread.is_alive(), "the worker is still running"
    finally:
        stop.set()
        thread.join(10)
        logging.getLogger("cunguan.worker").removeHandler(lines)
    assert ran == [2], "the worker loop ended only when told to, having run both jobs"
    assert "database unavailable, reconnecting" in lines.messages
    assert "database reachable again" in lines.messages


def _bank_url_variables() -> list[str]:
    return [f"CUNGUAN_BANK_{code.upper()}_URL" for code in DEFAULT_BANKS]


def test_production_refuses_to_start_with_bank_urls_at_the_simulators_defaults(
    tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in _bank_url_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CUNGUAN_SECRET_KEY", "x" * 64)
    monkeypatch.setenv("CUNGUAN_ENV", "production")
    monkeypatch.setenv("CUNGUAN_TSA_URL", "https://tsa.example/")
    monkeypatch.setenv("CUNGUAN_SMS_URL", "https://sms.example/send")
    monkeypatch.setenv("CUNGUAN_TSA_CERT", str(tmp_path / "tsa.pem"))
    first, *others = _bank_url_variables()
    for name in others:
        monkeypatch.setenv(name, f"https://bank.example/{name}")
    with pytest.raises(ConfigError) as refused:
        create_app(Config(instance_path=tmp_path / "instance", keys_dir=keys_dir))
    assert first in str(refused.value) and others[0] not in str(refused.value)
    monkeypatch.setenv(first, "http://127.0.0.1:5001/" + first.split("_")[2].lower())  # the default, spelled out
    with pytest.raises(ConfigError):
        Config(instance_path=tmp_path / "instance", keys_dir=keys_dir)
    monkeypatch.setenv(first, "https://bank.example/real")
    assert Config(instance_path=tmp_path / "instance", keys_dir=keys_dir).production is True


def test_production_refuses_to_start_without_a_timestamp_authority(
    tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in _bank_url_variables():
        monkeypatch.setenv(name, f"https://bank.example/{name}")
    monkeypatch.setenv("CUNGUAN_ENV", "production")
    monkeypatch.delenv("CUNGUAN_TSA_URL", raising=False)
    monkeypatch.delenv("CUNGUAN_TSA_CERT", raising=False)
    with pytest.raises(ConfigError) as refused:
        Config(instance_path=tmp_path / "instance", keys_dir=keys_dir, secret_key="s")
    assert "CUNGUAN_TSA_URL" in str(refused.value)
    monkeypatch.setenv("CUNGUAN_TSA_URL", "https://tsa.example/")
    with pytest.raises(ConfigError) as refused:  # a TSA nobody pins: any self-made timestamping certificate would do
        Config(instance_path=tmp_path / "instance", keys_dir=keys_dir, secret_key="s")
    assert "CUNGUAN_TSA_CERT" in str(refused.value)
    monkeypatch.setenv("CUNGUAN_TSA_CERT", str(tmp_path / "tsa.pem"))
    with pytest.raises(ConfigError) as refused:  # the parties' codes would go to the simulator's file
        Config(instance_path=tmp_path / "instance", keys_dir=keys_dir, secret_key="s")
    assert "CUNGUAN_SMS_URL" in str(refused.value)
    monkeypatch.setenv("CUNGUAN_SMS_URL", "https://sms.example/send")
    assert (
        Config(instance_path=tmp_path / "instance", keys_dir=keys_dir, secret_key="s").tsa_url == "https://tsa.example/"
    )


def test_outside_production_the_simulator_defaults_are_fine(
    tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in _bank_url_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CUNGUAN_ENV", raising=False)
    config = Config(instance_path=tmp_path / "instance", keys_dir=keys_dir, secret_key="s")
    assert config.production is False
    assert config.banks["ceb"].base_url == "http://127.0.0.1:5001/ceb"
