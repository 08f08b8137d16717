"""Fixtures: keys, a fresh database per test (SQLite, and PostgreSQL when CUNGUAN_TEST_POSTGRES_URL is set),
the app, a client, users per role and a login helper."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from werkzeug.security import generate_password_hash

from app import create_app
from app.db.base import Base
from app.db.session import Database
from app.platform.config import BankEndpoint, Config
from app.platform.runtime import Runtime
from app.users import service as users_service
from app.users.service import create_user
from tests.factories import bank_signing_key, provision_key_folders

# A city config's validation may take 2 s of wall clock by default (a guard against pathological drafts): two
# test workers, their servers and subprocesses on two cores have stretched one past that (the first in a process
# compiles the schemas and templates it checks against).
# The tests of the budget set their own (tests/security/test_config_limits.py); the rest, and the processes they
# start, get room.
os.environ.setdefault("CUNGUAN_CONFIG_VALIDATION_BUDGET_S", "15")
# Party signing is the platform's default (parties sign on a phone before the bank); the tests that predate it
# confirm deals without phones and expect the bank's countersignature at once, so they run with it off, as do the
# processes they start. The party-signing tests turn it on (tests/web/test_party_signing.py).
os.environ.setdefault("CUNGUAN_PARTY_SIGNING", "0")
POSTGRES_URL = os.environ.get("CUNGUAN_TEST_POSTGRES_URL", "")
DATABASES = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
PASSWORD = "correct-horse-9"
ROLES = ("agent", "ops", "reviewer", "finance", "auditor", "admin")


def _psycopg_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


@pytest.fixture(scope="session")
def key_folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(platform's folder, simulated banks' folder): the platform's keys with every simulated bank's certificate
    imported (no bank private key), and the banks' own keys (the tests' platform is configured with ceb only).
    At the end of the session the platform's folder must still hold no private key but its own: a test that
    starts a simulator gives it a folder of its own (or the banks' one), never the platform's."""
    platform, banks = tmp_path_factory.mktemp("keys"), tmp_path_factory.mktemp("bank-sim-keys")
    provision_key_folders(platform, banks)
    yield platform, banks
    held = sorted(path.relative_to(platform).as_posix() for path in platform.rglob("*.key.pem"))
    assert held == ["ca/root.key.pem", "platform.key.pem"], (
        f"bank private keys written into the platform's key folder: {held}"
    )


@pytest.fixture(scope="session")
def keys_dir(key_folders: tuple[Path, Path]) -> Path:
    """The platform's key folder: its own keys, the banks' public keys and certificates."""
    return key_folders[0]


@pytest.fixture(scope="session")
def bank_keys_dir(key_folders: tuple[Path, Path]) -> Path:
    """The simulated banks' own key folder (what the bank simulator is started with)."""
    return key_folders[1]


@pytest.fixture(scope="session")
def bank_private_key(keys_dir: Path) -> Callable[[str], bytes]:
    """For tests that must sign as a bank: `bank_private_key("ceb")` is that simulated bank's SM2 private key
    (PEM), from the banks' folder, never the platform's."""
    return lambda code: bank_signing_key(keys_dir, code)


@pytest.fixture(scope="session", autouse=True)
def _agreement_pdfs_by_html() -> Iterator[None]:
    """Agreement PDFs laid out once per HTML in a test process. WeasyPrint lays the same HTML out to the same
    bytes (nothing in the file depends on the time), and most tests confirm the same deal (RESALE_FORM, today,
    the first number of a fresh database), each render taking about half a second; the platform signs the
    bytes afterwards as always. Other HTML is rendered as usual, and tests that call
    `app.pdf.render.html_to_pdf` by its imported name always render. The memo replaces the name where the
    platform calls it (`app.agreements.service` imported it before this fixture runs)."""
    from app.agreements import service
    from app.pdf import render

    with pytest.MonkeyPatch.context() as patch:
        memo = lru_cache(maxsize=16)(render.html_to_pdf)
        patch.setattr(render, "html_to_pdf", memo)
        patch.setattr(service, "html_to_pdf", memo)
        yield


@cache
def _process_database() -> str:
    """The URL of a PostgreSQL database of this test process's own, created on first use and dropped when the
    session ends (pytest_sessionfinish). Tests get schemas in it, never in the configured database itself: the
    platform takes PostgreSQL advisory locks on fixed keys (the audit chain, deal numbers, contract imports, the
    callback inbox's partitions), and those locks are per database, not per schema - two xdist workers, or two
    test runs on one server, sharing a database would wait on, or be refused, each other's locks. The name is
    random, so concurrent runs against one server never meet; the copy is of template0, which accepts no
    connections (CREATE DATABASE fails while anyone is connected to the template)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"cunguan_test_{worker}_{uuid.uuid4().hex[:10]}"
    server = _psycopg_url(POSTGRES_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    finally:
        admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


# The long tests (real processes, browsers, sandbox simulations, the chaos run): collected first, so that the
# pytest-xdist workers start on them and share out the short ones at the end, rather than one worker finishing a
# two-minute test alone while the other has nothing left to do.
LONG_FIRST = (  # longest first
    "tests/e2e/test_chaos.py",
    "tests/e2e/",
    "tests/browser/",
    "tests/sim/",
    "tests/security/test_callback_contention.py",
    "tests/integration/test_city_simulation.py",
    "tests/integration/test_fee_simulation.py",
    "tests/integration/test_definition_simulation.py",
    "tests/web/test_admin_configs.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath

    def rank(item: pytest.Item) -> int:
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        return next((number for number, start in enumerate(LONG_FIRST) if where.startswith(start)), len(LONG_FIRST))

    items.sort(key=rank)  # stable: the order within each group stays


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _process_database.cache_info().currsize == 0:
        return
    database = make_url(_process_database())
    admin = create_engine(_psycopg_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


# What a schema holds, one line per object, the schema's own name left out: its tables, indexes and sequences,
# their columns, constraints and defaults, its triggers (with their enabled state) and functions (with their
# bodies), and who may use its tables.
_CATALOG_SQL = """
SELECT 'r:' || c.relkind::text || ':' || c.relname || ':' || coalesce(c.relacl::text, '')
  FROM pg_class c WHERE c.relnamespace = to_regnamespace(:schema)
UNION ALL SELECT 'c:' || c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':'
  || a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE c.relnamespace = to_regnamespace(:schema) AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL SELECT 'k:' || conname || ':' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = to_regnamespace(:schema)
UNION ALL SELECT 'd:' || c.relname || ':' || pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid WHERE c.relnamespace = to_regnamespace(:schema)
UNION ALL SELECT 't:' || c.relname || ':' || t.tgname || ':' || t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  WHERE c.relnamespace = to_regnamespace(:schema) AND NOT t.tgisinternal
UNION ALL SELECT 'f:' || p.proname || ':' || md5(p.prosrc)
  FROM pg_proc p WHERE p.pronamespace = to_regnamespace(:schema)
"""


class _PlatformSchemas:
    """PostgreSQL schemas that held the platform's tables in an earlier test of this process, emptied and handed
    to the next test that makes the platform's tables (the `app` fixture): creating some thirty tables with their
    indexes, triggers and functions, and dropping them again, costs the server about half a second per test;
    emptying them a few milliseconds. A schema is reused only when its catalog is still exactly what `create_all`
    made (`_CATALOG_SQL`): a test that dropped a trigger, disabled one or added a table has its schema dropped,
    as every schema was before."""

    def __init__(self) -> None:
        self.free: list[str] = []
        self.ready: set[str] = set()  # the schemas handed out that already hold the platform's tables
        self.made: str | None = None  # the catalog `create_all` makes, taken from the first schema it made

    @staticmethod
    def catalog(connection: Connection, schema: str) -> str:
        rows = connection.execute(text(_CATALOG_SQL), {"schema": schema}).scalars()
        return "\n".join(sorted(row.replace(f"{schema}.", "") for row in rows))

    def created(self, engine: Engine, schema: str) -> None:
        """`create_all` made the platform's tables in `schema`: the catalog every reused schema must match."""
        if self.made is None:
            with engine.connect() as connection:
                self.made = self.catalog(connection, schema)

    def give_back(self, admin: Engine, schema: str) -> bool:
        """Empty `schema` for the next test when it holds exactly the platform's tables; False: drop it."""
        if self.made is None:
            return False
        with admin.connect() as connection:
            if self.catalog(connection, schema) != self.made:
                return False
            tables = (
                connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": schema}
                )
                .scalars()
                .all()
            )
            sequences = connection.execute(
                text("SELECT sequencename, start_value FROM pg_sequences WHERE schemaname = :schema"),
                {"schema": schema},
            ).all()
            # DELETE, not TRUNCATE: a TRUNCATE gives every table and index a new file, as dear as making them;
            # replica mode skips the append-only triggers (the audit log, the ledger) and the foreign-key checks
            deletes = "".join(f'DELETE FROM "{schema}"."{table}"; ' for table in tables)
            restarts = "".join(f'SELECT setval(\'"{schema}"."{name}"\', {start}, false); ' for name, start in sequences)
            connection.exec_driver_sql(
                "BEGIN; SET LOCAL lock_timeout = '5s'; SET LOCAL session_replication_role = replica; "
                f"{deletes}{restarts}COMMIT"
            )
        self.free.append(schema)
        return True


PLATFORM_SCHEMAS = _PlatformSchemas()


@contextmanager
def fresh_database(kind: str, tmp_path: Path, platform_tables: bool = False) -> Iterator[str]:
    """A fresh database: a SQLite file, or a PostgreSQL schema of its own (in this process's database). Empty,
    unless `platform_tables` (the test makes the platform's tables with `create_schema`): then on PostgreSQL it
    may be an emptied schema that already holds them (`_PlatformSchemas`)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base = _process_database()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    reused = platform_tables and bool(PLATFORM_SCHEMAS.free)
    schema = PLATFORM_SCHEMAS.free.pop() if reused else f"t_{uuid.uuid4().hex[:12]}"
    if not reused:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    if reused:
        PLATFORM_SCHEMAS.ready.add(schema)
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        PLATFORM_SCHEMAS.ready.discard(schema)
        try:
            if not (platform_tables and PLATFORM_SCHEMAS.give_back(admin, schema)):
                with admin.connect() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, platform_tables="app" in request.fixturenames) as url:
        yield url


def make_config(instance: Path, database_url: str, keys_dir: Path, bank_url: str = "http://127.0.0.1:9") -> Config:
    return Config(
        instance_path=instance,
        database_url=database_url,
        keys_dir=keys_dir,
        secret_key="test-secret",
        testing=True,
        public_base_url="http://127.0.0.1:5000",
        banks={"ceb": BankEndpoint("ceb", "中国光大银行", bank_url)},
        bank_timeout_s=2.0,
    )


class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates kept in memory for every app of a test process: each test's new app would
    otherwise parse and compile each page template again. A bucket is keyed by the template's name and file
    and checked against its source, as Jinja's file cache is."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = _CompiledTemplates()


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """This test process's SQLite database holding the platform's empty schema (tables, indexes, triggers), made
    once by `Base.metadata.create_all` through the platform's own `Database`: each test's fresh SQLite file gets
    a page-for-page copy (sqlite3's backup), a fraction of the cost of creating some thirty tables again."""
    path = tmp_path_factory.mktemp("schema") / "schema.db"
    database = Database(f"sqlite:///{path}")
    Base.metadata.create_all(database.engine)
    database.dispose()
    template = sqlite3.connect(path, check_same_thread=False)
    yield template
    template.close()


def create_schema(engine: Engine, sqlite_schema: sqlite3.Connection) -> None:
    """The platform's tables in a fresh test database: copied from the template on SQLite; on PostgreSQL created,
    or already there in a reused schema (`_PlatformSchemas`)."""
    if engine.dialect.name != "sqlite":
        schema = str(engine.url.query["options"]).removeprefix("-csearch_path=")
        if schema not in PLATFORM_SCHEMAS.ready:
            Base.metadata.create_all(engine)
            PLATFORM_SCHEMAS.created(engine, schema)
        return
    with engine.connect() as connection:
        sqlite_schema.backup(connection.connection.driver_connection)


def platform_app(config: Config, sqlite_schema: sqlite3.Connection) -> Flask:
    """The app for `config` with the platform's tables in its (fresh) database; dispose of its runtime's
    database when done."""
    flask_app = create_app(config)
    flask_app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
    create_schema(flask_app.extensions["cunguan.runtime"].db.engine, sqlite_schema)
    return flask_app


@pytest.fixture
def app(tmp_path: Path, database_url: str, keys_dir: Path, sqlite_schema: sqlite3.Connection) -> Iterator[Flask]:
    flask_app = platform_app(make_config(tmp_path / "instance", database_url, keys_dir), sqlite_schema)
    yield flask_app
    flask_app.extensions["cunguan.runtime"].db.dispose()


@pytest.fixture
def rt(app: Flask) -> Runtime:
    return app.extensions["cunguan.runtime"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD hashed once per session, with scrypt at a lower cost than the default's (N = 2^15, a tenth of a
    second or more for each hash and for each login's check; six users per test, logins in most web tests):
    werkzeug checks a hash at the cost written in it, so logins run the same code, faster."""
    return generate_password_hash(PASSWORD, method="scrypt:1024:8:1")


def role_users(rt: Runtime, password_hash: str) -> dict[str, int]:
    """One user per role, made by create_user; their (equal) password's hash is the session's `password_hash`,
    any other password a test hashes is hashed as usual."""
    hash_password = users_service.generate_password_hash

    def hash_once(password: str) -> str:
        return password_hash if password == PASSWORD else hash_password(password)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users_service, "generate_password_hash", hash_once)
        return {role: create_user(rt, role, PASSWORD, role, f"测试{role}").id for role in ROLES}


@pytest.fixture
def users(rt: Runtime, password_hash: str) -> dict[str, int]:
    """`role_users`: one user per role, PASSWORD for all."""
    return role_users(rt, password_hash)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


@pytest.fixture
def login(client: FlaskClient, users: dict[str, int]) -> Callable[[str], FlaskClient]:
    def do_login(username: str) -> FlaskClient:
        client.post("/logout", data={"csrf_token": csrf_token(client.get("/login").text)})
        page = client.get("/login").text
        answer = client.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(page)}
        )
        assert answer.status_code == 302, answer.text
        return client

    return do_login


class _AnswersNotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bank_server() -> Iterator[str]:
    """A bank that answers (404 to a plain GET, as a real bank API would)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AnswersNotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ceb"
    server.shutdown()
