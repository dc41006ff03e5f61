"""pytest plugin for the core and for integrators (loaded through the ``pytest11`` entry point).

Fixtures:
- ``crm_database_url``: the database of this test session; ``CRM_DATABASE_URL``
  when set (CI runs the suite on PostgreSQL that way), else an SQLite file;
- ``fresh_database_url()``: a new empty database of the same kind, dropped afterwards;
- ``crm_plugins``: the plugins to enable (override it; default: all bundled ones);
- ``register_plugin(module_or_path, name=None)``: enable a plugin module that is not
  installed (call before ``app``);
- ``app_factory(**config)``: build a migrated app; ``app``, ``client``, ``db``, ``cli``.
Every test starts with empty tables (the migration history is kept).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from flask.testing import FlaskClient

from crm_core.db import vendor


def pytest_configure(config):
    config.addinivalue_line("markers", "crm_plugins(*names): plugins to enable for this test")


def _admin_url(url):
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/postgres"))


def create_postgres_database(base_url, prefix="crm_test"):
    """Create an empty database beside ``base_url``'s; return its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(urlparse(base_url)._replace(path="/" + name))


def drop_postgres_database(url):
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def is_postgres(url):
    return urlparse(url).scheme in ("postgres", "postgresql")


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """argon2id with argon2-cffi's CHEAPEST parameters (made for tests) in the test process.

    The production parameters (RFC 9106: 64 MiB, 3 passes, 4 lanes) cost 0.1-2 s per hash
    and per sign-in, and the tests make users and sign in thousands of times. The algorithm
    and the code paths are the same; a hash records its parameters, so hashes made by a
    ``crm`` child process (production parameters) verify here and the other way round.
    """
    from argon2 import PasswordHasher, profiles

    from crm_core.users import passwords

    saved = passwords._hasher, passwords._DUMMY_HASH
    passwords._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    passwords._DUMMY_HASH = passwords._hasher.hash("not a real password, only spends the same time")
    yield passwords._hasher
    passwords._hasher, passwords._DUMMY_HASH = saved


@pytest.fixture(scope="session")
def crm_database_url(tmp_path_factory):
    url = os.environ.get("CRM_DATABASE_URL")
    if url and is_postgres(url):
        # A database of our own on that server, so tests never touch real data.
        own = create_postgres_database(url)
        yield own
        drop_postgres_database(own)
        return
    yield url or "sqlite:///" + str(tmp_path_factory.mktemp("db") / "crm.sqlite3")


@pytest.fixture
def fresh_database_url(crm_database_url, tmp_path):
    made = []

    def make():
        if is_postgres(crm_database_url):
            url = create_postgres_database(crm_database_url, "crm_fresh")
        else:
            url = "sqlite:///" + str(tmp_path / f"fresh-{len(made)}.sqlite3")
        made.append(url)
        return url

    yield make
    for url in made:
        if is_postgres(url):
            drop_postgres_database(url)


@pytest.fixture
def crm_plugins(request):
    """Plugins to enable: the ``crm_plugins`` marker, else all bundled plugins (None)."""
    marker = request.node.get_closest_marker("crm_plugins")
    return list(marker.args) if marker else None


@pytest.fixture
def _extra_plugins():
    return {}


@pytest.fixture
def register_plugin(_extra_plugins):
    """Enable a plugin module that is not installed: ``register_plugin(module)``."""

    def register(module, name=None):
        if isinstance(module, str):
            import importlib

            module = importlib.import_module(module)
        name = name or module.manifest.name
        _extra_plugins[name] = module
        return name

    return register


def base_config(database_url, instance_path):
    return {
        "CRM_ENV": "test",
        "CRM_SECRET_KEY": secrets.token_urlsafe(32),
        "CRM_INSTANCE_PATH": str(instance_path),
        "CRM_DATABASE_URL": database_url,
        "CRM_JOBS_IMMEDIATE": True,
        "CRM_DATABASE_POOL_SIZE": 4,
    }


def migrate(app):
    from crm_core.migrator import upgrade

    sources = [source for _, source in app.extensions["crm"].registries["migrations"].items()]
    return upgrade(app.extensions["crm_db"], sources)


def empty_tables(db):
    """Delete every row except the migration history, keeping the schema (and restart ids)."""
    tables = [t for t in db.get_tables() if not t.endswith("_migrations")]
    if not tables:
        return
    with db.atomic():
        if vendor(db) == "postgresql":
            _empty_postgres_tables(db, tables)
        else:
            db.execute_sql("PRAGMA defer_foreign_keys = ON")
            for table in tables:
                db.execute_sql(f'DELETE FROM "{table}"')
            if "sqlite_sequence" in {r[0] for r in db.execute_sql(
                    "SELECT name FROM sqlite_master WHERE type='table'")}:
                db.execute_sql("DELETE FROM sqlite_sequence")


def _empty_postgres_tables(db, tables):
    """DELETE the rows of the tables that have any, children first, then restart every
    sequence of the tables. A TRUNCATE of all ~50 tables costs seconds on PostgreSQL (new
    files for each table and index, synced at commit) and ran after every test."""
    filled = [row[0] for row in db.execute_sql(" UNION ALL ".join(
        f"""SELECT '{t}' WHERE EXISTS (SELECT 1 FROM "{t}")""" for t in tables))]
    if filled:
        references = [(child, parent, columns, nullable) for child, parent, columns, nullable
                      in db.execute_sql(_FOREIGN_KEYS, (filled, filled)).fetchall()]
        order = _children_first(filled, references)
        if order is None:
            # Tables that reference each other (a department's head is a user placed in a
            # department): clear the nullable links of the filled tables, then sort again.
            for child, _parent, columns, nullable in references:
                if nullable:
                    db.execute_sql(f'UPDATE "{child}" SET ' + ", ".join(
                        f'"{column}" = NULL' for column in columns))
            order = _children_first(filled, [ref for ref in references if not ref[3]])
        if order is None:
            db.execute_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in filled) + " CASCADE")
        else:
            for table in order:
                db.execute_sql(f'DELETE FROM "{table}"')
    db.execute_sql(
        "SELECT setval(s.oid, 1, false) FROM pg_class s "
        "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
        "AND d.deptype IN ('a', 'i') JOIN pg_class t ON t.oid = d.refobjid "
        "JOIN pg_sequences q ON q.schemaname = current_schema() AND q.sequencename = s.relname "
        "WHERE s.relkind = 'S' AND t.relname = ANY(%s) AND q.last_value IS NOT NULL",
        (list(tables),))


# Foreign keys between two of the given tables (other than a table's own: one DELETE
# removes both ends): (child, parent, columns, whether every column is nullable).
_FOREIGN_KEYS = """
SELECT child.relname, parent.relname, array_agg(a.attname ORDER BY a.attnum), bool_and(NOT a.attnotnull)
FROM pg_constraint c
JOIN pg_class child ON child.oid = c.conrelid
JOIN pg_class parent ON parent.oid = c.confrelid
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
WHERE c.contype = 'f' AND c.conrelid <> c.confrelid
  AND child.relname = ANY(%s) AND parent.relname = ANY(%s)
GROUP BY c.oid, child.relname, parent.relname
"""


def _children_first(tables, references):
    """``tables`` ordered so that a table comes before the tables it references (None when
    some reference each other in a cycle)."""
    pending = set(tables)
    order = []
    while pending:
        # A table can go when no other pending table references it.
        ready = sorted(t for t in pending
                       if not any(ref[1] == t and ref[0] in pending for ref in references))
        if not ready:
            return None
        order.extend(ready)
        pending.difference_update(ready)
    return order


def reset_database(db):
    """Empty tables, then the reference rows every instance has (the built-in roles)."""
    from crm_core.org.services import ensure_builtin_roles

    empty_tables(db)
    if "role" in db.get_tables():  # an app built without migrating has no schema to refill
        ensure_builtin_roles()


def build_app(database_url, instance_path, plugins=None, extra_plugins=None, migrate_schema=True,
              **config):
    """An application for tests on ``database_url`` (migrated unless told not to);
    ``plugins`` None enables every bundled plugin."""
    from crm_core.app import create_app

    extra_plugins = dict(extra_plugins or {})
    settings = base_config(database_url, instance_path)
    if plugins is not None or extra_plugins:
        settings["CRM_PLUGINS"] = list(plugins or []) + [
            n for n in extra_plugins if n not in (plugins or [])]
    settings["CRM_EXTRA_PLUGINS"] = extra_plugins
    settings.update(config)
    app = create_app(settings)
    if migrate_schema:
        with app.app_context():
            migrate(app)
    return app


@contextlib.contextmanager
def own_database(like_url, folder):
    """A new empty database of ``like_url``'s kind (an SQLite file in ``folder``), dropped
    at the end: for an app that lives longer than one test (a session-scoped fixture), so
    that no other test's reset empties it."""
    if is_postgres(like_url):
        url = create_postgres_database(like_url, "crm_own")
        try:
            yield url
        finally:
            drop_postgres_database(url)
    else:
        yield "sqlite:///" + str(Path(folder) / f"own-{uuid.uuid4().hex[:8]}.sqlite3")


@contextlib.contextmanager
def long_lived_app(like_url, folder, plugins=None):
    """An app on a database of its own (``own_database``) for a session-scoped fixture: a
    whole table of cases shares it; its connections close at the end."""
    with own_database(like_url, folder) as url:
        application = build_app(url, Path(folder) / "instance", plugins=plugins)
        try:
            yield application
        finally:
            application.extensions["crm_db"].close_all()


@pytest.fixture
def app_factory(crm_database_url, crm_plugins, _extra_plugins, tmp_path):
    """``app_factory(**config)`` builds an application on a migrated database."""
    built = []

    def make(migrate_schema=True, **config):
        app = build_app(crm_database_url, tmp_path / "instance", crm_plugins, _extra_plugins,
                        migrate_schema=migrate_schema, **config)
        built.append(app)
        return app

    yield make
    emptied = False
    for app in built:
        db = app.extensions["crm_db"]
        try:
            if not emptied and app.config["CRM_DATABASE_URL"] == crm_database_url:
                with app.app_context():
                    reset_database(db)
                emptied = True
        finally:
            db.close_all()


@pytest.fixture
def app(app_factory):
    application = app_factory()
    with application.app_context():
        yield application


DEFAULT_PASSWORD = "correct horse battery staple 42"


def make_user(email=None, name=None, password=DEFAULT_PASSWORD, is_admin=False, locale=None,
              timezone=None):
    """A user in the current app's database (call inside an app context)."""
    from crm_core.users.services import create_user

    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    return create_user(email, name or email.split("@")[0], password, is_admin=is_admin,
                       locale=locale, timezone=timezone)


def make_sales_team(roles=("sales_rep",)):
    """The usual little organisation of the tests (inside an app context): Maria heads
    "Sales" with Rita in it; Bob is in "Other". Returns {"maria", "rita", "bob"}."""
    from flask import g

    from crm_core.org import services as org

    people = {n: make_user(f"{n}@example.com", n.title()) for n in ("maria", "rita", "bob")}
    for user in people.values():
        org.set_roles(user, list(roles))
    sales = org.create_department("Sales", head=people["maria"].id)
    other = org.create_department("Other")
    org.place_user(people["maria"], sales.id)
    org.place_user(people["rita"], sales.id)
    org.place_user(people["bob"], other.id)
    g.pop("_crm_access", None)  # the organisation changed: forget this context's answers
    return people


def api_client(app, user=None):
    """A test client that sends an API token of ``user`` (a new administrator when None)."""
    from crm_core.users.services import issue_token

    with app.app_context():
        user = user or make_user(is_admin=True, name="Test Administrator")
        token, _ = issue_token(user, "tests")
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    test_client.user = user
    return test_client


def browser_login(test_client, email, password=DEFAULT_PASSWORD, **headers):
    """Sign in through the login form (with its CSRF token), as a browser does."""
    page = test_client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return test_client.post("/login", data={"email": email, "password": password,
                                            "csrf_token": token}, headers=headers)


class FreshClient(FlaskClient):
    """A browser whose every request reads the organisation afresh, as a real request does
    (tests share one app context, so flask.g would otherwise keep the access cache)."""

    def open(self, *args, **kwargs):
        from flask import g

        g.pop("_crm_access", None)
        return super().open(*args, **kwargs)


def signed_in(app, user):
    """A FreshClient signed in as ``user`` through the login form."""
    app.test_client_class = FreshClient
    browser = app.test_client()
    assert browser_login(browser, user.email).status_code == 302
    return browser


def page_and_token(browser, path):
    """(html, CSRF token) of a page that must answer 200."""
    response = browser.get(path)
    assert response.status_code == 200, (path, response.status_code)
    html = response.get_data(as_text=True)
    return html, csrf_token_from(html)


def csrf_token_from(html):
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def client(app):
    """An API client signed in as an administrator (token auth: no CSRF needed)."""
    return api_client(app)


@pytest.fixture
def anon_client(app):
    """A client that is not signed in."""
    return app.test_client()


@pytest.fixture
def user_factory(app):
    return make_user


@pytest.fixture
def db(app):
    database = app.extensions["crm_db"]
    database.connect(reuse_if_open=True)
    yield database


@pytest.fixture
def cli(app):
    """Run ``crm`` commands in-process against ``app``: ``cli("migrate", "status")``."""
    from click.testing import CliRunner

    from crm_core import cli as cli_module

    def run(*args, input=None):
        state = cli_module.CliState()
        state._app = app
        return CliRunner().invoke(cli_module.main, list(args), obj=state, input=input,
                                  catch_exceptions=False)

    return run


def write_plugin_distribution(folder, dist_name, plugins, version="1.0"):
    """Make ``folder`` look like an installed distribution with ``crm.plugins`` entry points.

    ``plugins`` maps plugin names to module paths. Put ``folder`` on ``sys.path``
    (or PYTHONPATH for another process) and the plugins are discovered exactly
    like a pip-installed third-party plugin.
    """
    info = Path(folder) / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(textwrap.dedent(f"""\
        Metadata-Version: 2.1
        Name: {dist_name}
        Version: {version}
        """), encoding="utf-8")
    lines = ["[crm.plugins]"] + [f"{name} = {module}" for name, module in plugins.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(folder)


def subprocess_env(**extra):
    """The environment for a ``crm`` child process: this interpreter's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update({k: str(v) for k, v in extra.items()})
    env.setdefault("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    return env


# -- real processes: `crm run`, `crm worker` -------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_crm(args, env, cwd=None, capture=True, log_path=None):
    """Start ``crm <args>`` as a child process in its own process group (its output to a
    pipe, to ``log_path`` when given, which can be read while it runs, or nowhere)."""
    import subprocess

    if log_path is not None:
        output = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - the child keeps it
    else:
        output = subprocess.PIPE if capture else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-m", "crm_core", *args], env=env, cwd=cwd,
                                stdout=output, stderr=subprocess.STDOUT if capture else output,
                                text=True, start_new_session=True)
    finally:
        if log_path is not None:
            output.close()


def stop_process(process, first_signal=None, timeout=30):
    """Stop a process group started by start_crm (politely, then not); return its output."""
    import signal
    import subprocess

    os.killpg(process.pid, first_signal or signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
    return output or ""


def wait_for_http(url, timeout=60.0):
    """Poll ``url`` until it answers (any status); False when it never did."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.3)
    return False


class CrmServer:
    """``crm run`` on a free port: ``base`` is its URL; ``output`` is set once it stopped.
    With ``log_path`` its output goes to that file and can be read while it runs."""

    def __init__(self, env, workers=1, cwd=None, capture=True, log_path=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process = start_crm(["run", "--port", str(self.port), "--workers", str(workers)],
                                 env, cwd=cwd, capture=capture, log_path=log_path)
        self.output = None

    def __enter__(self):
        if not wait_for_http(self.base + "/healthz"):
            self.stop()
            raise RuntimeError(f"crm run did not answer on {self.base}:\n{self.output}")
        return self

    def stop(self):
        if self.output is None:
            self.output = stop_process(self.process)
            if self.log_path is not None:
                self.output = Path(self.log_path).read_text(encoding="utf-8")
        return self.output

    def __exit__(self, *exc):
        self.stop()

    def _log(self):
        if self.output is not None:
            return self.output
        return Path(self.log_path).read_text(encoding="utf-8") if self.log_path else ""

    @property
    def worker_pids(self):
        """The gunicorn workers it booted (from its log: live with log_path, else after stop())."""
        return {line.rsplit(" ", 1)[-1].strip("<>") for line in self._log().splitlines()
                if "Booting worker with pid" in line}

    def answered_by(self, request):
        """The workers whose access log has a line with ``request`` (e.g. "POST /api/v1/x")."""
        return {line.rsplit("pid=", 1)[1].strip().strip("<>") for line in self._log().splitlines()
                if request in line and "pid=" in line}

    def wait_for_workers(self, count, timeout=90.0):
        """Send /healthz, four at a time on new connections, until ``count`` workers answered
        (each worker builds its app after the fork: under load the first answers long before
        the last is ready, and takes every request meanwhile). Needs log_path."""
        import time
        import urllib.request
        from concurrent.futures import ThreadPoolExecutor

        assert self.log_path, "wait_for_workers reads the live log: start with log_path"
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=4) as pool:
            while len(self.answered_by("GET /healthz")) < count:
                if time.monotonic() > deadline:
                    return False
                list(pool.map(lambda _: urllib.request.urlopen(self.base + "/healthz",
                                                               timeout=10).read(), range(4)))
        return True
