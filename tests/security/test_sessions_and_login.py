"""Issue 16: sessions end on the server, have an absolute lifetime and safe cookie flags; logs carry no SQL
parameters or password hashes. Through HTTP, on both databases."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from app import create_app
from app.platform.runtime import Runtime
from app.users import service
from app.users.login_throttle import MAX_FAILURES, MAX_FAILURES_PER_ADDRESS
from app.users.service import create_user
from tests.conftest import PASSWORD, csrf_token, make_config


def _logout(client: FlaskClient) -> None:
    token = csrf_token(client.get("/deals").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def test_a_cookie_replayed_after_logout_no_longer_works(login: Callable[[str], FlaskClient]) -> None:
    client = login("agent")
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert client.get("/deals").status_code == 200
    _logout(client)
    client.set_cookie("session", cookie.value)  # the attacker's copy of the cookie taken before logout
    answer = client.get("/deals")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_a_session_ends_after_its_absolute_lifetime_even_when_active(login: Callable[[str], FlaskClient]) -> None:
    client = login("agent")
    assert client.get("/deals").status_code == 200
    with client.session_transaction() as session:
        session["login_at"] = int(time.time()) - 12 * 3600 + 60  # a minute before the end: still valid
    assert client.get("/deals").status_code == 200
    with client.session_transaction() as session:
        session["login_at"] = int(time.time()) - 12 * 3600 - 1
    answer = client.get("/deals")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_session_cookie_is_strict_and_secure_when_configured(
    tmp_path: Path, database_url: str, keys_dir: Path, password_hash: str
) -> None:
    config = make_config(tmp_path / "instance", database_url, keys_dir)
    config.secure_cookies = True
    app = create_app(config)
    runtime: Runtime = app.extensions["cunguan.runtime"]
    from app.db.models import Base

    Base.metadata.create_all(runtime.db.engine)
    try:
        create_user(runtime, "agent", PASSWORD, "agent", "测试agent")
        client = app.test_client()
        token = csrf_token(client.get("/login").text)
        answer = client.post("/login", data={"username": "agent", "password": PASSWORD, "csrf_token": token})
        assert answer.status_code == 302
        header = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith("session="))
        assert "; Secure" in header and "SameSite=Strict" in header and "HttpOnly" in header
    finally:
        runtime.db.dispose()


def test_staff_cookie_is_samesite_strict_by_default(login: Callable[[str], FlaskClient], app: Flask) -> None:
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Strict"
    assert app.config["SESSION_COOKIE_SECURE"] is False  # plain http in development unless the setting says so


def test_a_database_error_during_login_logs_no_parameters(
    app: Flask, client: FlaskClient, rt: Runtime, users: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answered and logged as in production
    with rt.db.engine.begin() as connection:
        connection.execute(text("ALTER TABLE users RENAME COLUMN display_name TO display_name_gone"))
    page = client.get("/login").text
    secret_name = "agent-probe-7f3a"
    with caplog.at_level(logging.DEBUG):
        answer = client.post(
            "/login", data={"username": secret_name, "password": PASSWORD, "csrf_token": csrf_token(page)}
        )
    assert answer.status_code == 500
    logged = "\n".join(
        record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
    )
    assert "display_name" in logged  # the error itself was logged ...
    assert secret_name not in logged  # ... without its parameters


def test_a_database_error_creating_a_user_shows_no_password_hash(rt: Runtime) -> None:
    with rt.db.engine.begin() as connection:
        connection.execute(text("ALTER TABLE users RENAME COLUMN display_name TO display_name_gone"))
    with pytest.raises(Exception) as error:
        create_user(rt, "newcomer", PASSWORD, "agent", "新人")
    assert "users" in str(error.value)
    assert "scrypt" not in str(error.value) and "pbkdf2" not in str(error.value) and "newcomer" not in str(error.value)


@pytest.mark.parametrize(
    ("new_password", "problem"),
    [
        ("Password12", "密码至少 12 位"),  # the finding: accepted before
        ("Password1234", "该密码过于常见，请换一个"),
        ("qwerty123456", "该密码过于常见，请换一个"),
        ("agent-2026-blue", "密码不能包含用户名"),
    ],
)
def test_weak_passwords_are_refused_through_http(
    login: Callable[[str], FlaskClient], new_password: str, problem: str
) -> None:
    client = login("agent")
    token = csrf_token(client.get("/password").text)
    form = {"current_password": PASSWORD, "new_password": new_password, "confirm_password": new_password}
    answer = client.post("/password", data={**form, "csrf_token": token})
    assert answer.status_code == 422
    assert problem in answer.text


def test_a_strong_password_is_accepted(login: Callable[[str], FlaskClient]) -> None:
    client = login("agent")
    token = csrf_token(client.get("/password").text)
    form = {"current_password": PASSWORD, "new_password": "violet-lantern-58", "confirm_password": "violet-lantern-58"}
    assert client.post("/password", data={**form, "csrf_token": token}).status_code == 302


def _attempt(client: FlaskClient, username: str, password: str, address: str) -> int:
    token = csrf_token(client.get("/login").text)
    data = {"username": username, "password": password, "csrf_token": token}
    return client.post("/login", data=data, environ_overrides={"REMOTE_ADDR": address}).status_code


def test_every_new_address_gets_no_new_tries_on_one_account(client: FlaskClient, users: dict[str, int]) -> None:
    statuses = [_attempt(client, "finance", "wrong-password-1", f"10.0.1.{n}") for n in range(MAX_FAILURES)]
    assert statuses == [401] * MAX_FAILURES
    assert _attempt(client, "finance", PASSWORD, "10.0.2.1") == 429


def test_one_address_is_throttled_across_accounts(client: FlaskClient, users: dict[str, int]) -> None:
    statuses = [_attempt(client, f"nobody{n}", "wrong-password-1", "10.0.3.1") for n in range(MAX_FAILURES_PER_ADDRESS)]
    assert statuses == [401] * MAX_FAILURES_PER_ADDRESS
    assert _attempt(client, "agent", PASSWORD, "10.0.3.1") == 429
    assert _attempt(client, "agent", PASSWORD, "10.0.3.2") == 302


def test_a_parallel_burst_gets_no_more_password_checks_than_the_limit(
    app: Flask, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real_check = service.check_password_hash

    def counting_check(stored: str, password: str) -> bool:
        checks.append(password)
        time.sleep(0.05)  # a slow hash widens the race window
        return real_check(stored, password)

    monkeypatch.setattr(service, "check_password_hash", counting_check)
    clients = [app.test_client() for _ in range(16)]
    tokens = [csrf_token(c.get("/login").text) for c in clients]
    barrier = threading.Barrier(len(clients))

    def burst(index: int) -> int:
        barrier.wait()
        data = {"username": "ops", "password": f"wrong-password-{index}", "csrf_token": tokens[index]}
        return clients[index].post("/login", data=data, environ_overrides={"REMOTE_ADDR": "10.0.4.1"}).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = list(pool.map(burst, range(len(clients))))
    assert len(checks) <= MAX_FAILURES
    assert sorted(statuses) == [401] * MAX_FAILURES + [429] * (len(clients) - MAX_FAILURES)


def test_an_unknown_username_costs_the_same_password_check(
    client: FlaskClient, users: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real_check = service.check_password_hash

    def counting_check(stored: str, password: str) -> bool:
        checked.append(stored.split("$", 1)[0])
        return real_check(stored, password)

    monkeypatch.setattr(service, "check_password_hash", counting_check)
    assert _attempt(client, "no-such-user", "wrong-password-1", "10.0.5.1") == 401
    assert _attempt(client, "agent", "wrong-password-1", "10.0.5.2") == 401
    assert len(checked) == 2  # one hash check each
    assert checked[0] == generate_password_hash("x").split("$", 1)[0]  # at the default cost of a real hash
