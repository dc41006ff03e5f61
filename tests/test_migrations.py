"""Migrations: per package, in dependency order, idempotent, transactional, in step with models."""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from crm_core.app import create_app
from crm_core.errors import MigrationError
from crm_core.migrator import drift, status, upgrade
from crm_core.testing import base_config, migrate, subprocess_env

CORE_MIGRATIONS = sorted(p.stem for p in (Path(__file__).parent.parent / "crm_core" / "migrations")
                         .glob("[0-9]*.py"))


def crm(*args, env, input=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "crm_core", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(db):
    """Tables, their columns and indexes, and every row: what `crm init` must not change."""
    state = {}
    for table in sorted(db.get_tables()):
        columns = [(c.name, c.data_type, c.null) for c in db.get_columns(table)]
        indexes = sorted((i.name, tuple(i.columns), i.unique) for i in db.get_indexes(table))
        rows = sorted(map(repr, db.execute_sql(f'SELECT * FROM "{table}"').fetchall()))
        state[table] = (columns, indexes, rows)
    return state


@pytest.fixture
def fresh_env(fresh_database_url, tmp_path):
    def make(plugins="notes,tags"):
        return subprocess_env(CRM_DATABASE_URL=fresh_database_url(), CRM_ENV="test",
                              CRM_INSTANCE_PATH=tmp_path / "instance", CRM_PLUGINS=plugins,
                              CRM_JOBS_IMMEDIATE=1)
    return make


def test_crm_init_twice_changes_nothing_the_second_time(fresh_env):
    env = fresh_env()
    first = crm("init", "--admin-email", "boss@example.com", "--admin-password-stdin", env=env,
                input="a long enough password\n")
    assert first.returncode == 0, first.stderr
    assert "applied core 0001_initial" in first.stdout
    assert "applied notes 0001_initial" in first.stdout and "applied tags 0001_initial" in first.stdout
    assert "Administrator boss@example.com created." in first.stdout
    assert "Password" not in first.stdout  # it came from stdin: never echoed

    app = create_app({**base_config(env["CRM_DATABASE_URL"], env["CRM_INSTANCE_PATH"]),
                      "CRM_PLUGINS": ["notes", "tags"]})
    db = app.extensions["crm_db"]
    with app.app_context(), db.connection_context():
        before = snapshot(db)
    second = crm("init", "--admin-email", "boss@example.com", "--admin-password-stdin", env=env,
                 input="another password\n")
    assert second.returncode == 0, second.stderr
    assert "Schema is up to date: nothing to do." in second.stdout
    assert "Administrator boss@example.com already exists: unchanged." in second.stdout
    with app.app_context(), db.connection_context():
        assert snapshot(db) == before
    db.close_all()


def test_two_plugins_with_their_own_0001_initial_both_get_their_tables(app_factory, fresh_database_url):
    app = app_factory(CRM_DATABASE_URL=fresh_database_url(), CRM_PLUGINS=["notes", "tags"])
    db = app.extensions["crm_db"]
    with app.app_context(), db.connection_context():
        tables = set(db.get_tables())
        assert {"notes_note", "tags_tag", "user"} <= tables
        assert {"core_migrations", "notes_migrations", "tags_migrations"} <= tables
        for history in ("notes_migrations", "tags_migrations"):
            names = [r[0] for r in db.execute_sql(f'SELECT name FROM "{history}"').fetchall()]
            assert names == ["0001_initial"]


def test_plugins_migrate_after_the_core_and_what_they_require(app_factory, fresh_database_url):
    app = app_factory(CRM_DATABASE_URL=fresh_database_url(), CRM_PLUGINS=["tags", "notes"],
                      migrate_schema=False)
    sources = [s for _, s in app.extensions["crm"].registries["migrations"].items()]
    assert [s.label for s in sources] == ["core", "notes", "tags"]
    applied = []
    with app.app_context():
        upgrade(app.extensions["crm_db"], sources, lambda label, name: applied.append(label))
    assert applied == ["core"] * len(CORE_MIGRATIONS) + ["notes", "tags"]


def test_status_lists_pending_then_applied(app_factory, fresh_database_url):
    app = app_factory(CRM_DATABASE_URL=fresh_database_url(), CRM_PLUGINS=["notes"],
                      migrate_schema=False)
    db = app.extensions["crm_db"]
    sources = [s for _, s in app.extensions["crm"].registries["migrations"].items()]
    with app.app_context():
        rows = status(db, sources)
        assert [(r.label, r.name, r.applied_at) for r in rows] == [
            ("core", name, None) for name in CORE_MIGRATIONS] + [("notes", "0001_initial", None)]
        migrate(app)
        assert all(r.applied_at is not None for r in status(db, sources))


def test_migrations_create_exactly_what_the_models_declare(app_factory):
    """Every registered model, core and plugins, matches the schema its migrations built."""
    app = app_factory(CRM_PLUGINS=["notes", "tags"])
    models = [model for _, model in app.extensions["crm"].registries["models"].items()]
    with app.app_context():
        difference = drift(app.extensions["crm_db"], models)
    assert not difference, str(difference)


def write_plugin_package(root, name, migrations):
    package = root / f"crm_{name}"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        from crm_core import PluginManifest, hookimpl

        manifest = PluginManifest(name="{name}", label="{name}", version="1.0")

        @hookimpl
        def crm_register_migrations(app):
            return "crm_{name}.migrations"
        """), encoding="utf-8")
    (package / "migrations" / "__init__.py").write_text("", encoding="utf-8")
    for filename, body in migrations.items():
        (package / "migrations" / filename).write_text(textwrap.dedent(body), encoding="utf-8")
    return f"crm_{name}"


def test_a_failing_migration_is_rolled_back_and_named(app_factory, fresh_database_url, tmp_path,
                                                      monkeypatch, register_plugin):
    monkeypatch.syspath_prepend(str(tmp_path))
    register_plugin(write_plugin_package(tmp_path, "faulty", {"0001_initial.py": """
        from peewee import CharField, Model

        def up(migrator, db):
            class Half(Model):
                name = CharField()
                class Meta:
                    database = db
                    table_name = "faulty_half"
            db.create_tables([Half])
            raise RuntimeError("disk full")
        """}))
    app = app_factory(CRM_DATABASE_URL=fresh_database_url(), migrate_schema=False)
    with app.app_context(), pytest.raises(MigrationError, match="faulty: a migration failed and was "
                                                               "rolled back: RuntimeError: disk full"):
        migrate(app)
    db = app.extensions["crm_db"]
    with db.connection_context():
        assert "faulty_half" not in db.get_tables()
        assert db.execute_sql('SELECT COUNT(*) FROM "faulty_migrations"').fetchone()[0] == 0
        assert "user" in db.get_tables()  # the core's own migrations stay applied


@pytest.mark.parametrize("name, files, message", [
    ("messy_twice", {"0001_initial.py": "def up(migrator, db): pass\n", "0001_again.py": "def up(migrator, db): pass\n"},
     "0001_again.py and 0001_initial.py share the number 0001"),
    ("messy_name", {"1_initial.py": "def up(migrator, db): pass\n"}, "1_initial.py must be named NNNN_slug.py"),
    ("messy_up", {"0001_initial.py": "x = 1\n"}, "0001_initial does not define up()"),
])
def test_malformed_migration_folders_are_explained(app_factory, fresh_database_url, tmp_path,
                                                   monkeypatch, register_plugin, name, files, message):
    monkeypatch.syspath_prepend(str(tmp_path))
    register_plugin(write_plugin_package(tmp_path, name, files))
    app = app_factory(CRM_DATABASE_URL=fresh_database_url(), migrate_schema=False)
    with app.app_context(), pytest.raises(MigrationError, match=message):
        migrate(app)


def test_applied_migration_whose_file_disappeared_is_reported(app_factory, fresh_database_url, tmp_path,
                                                              monkeypatch, register_plugin):
    monkeypatch.syspath_prepend(str(tmp_path))
    register_plugin(write_plugin_package(tmp_path, "vanish", {"0001_initial.py": "def up(migrator, db): pass\n"}))
    app = app_factory(CRM_DATABASE_URL=fresh_database_url())
    (tmp_path / "crm_vanish" / "migrations" / "0001_initial.py").unlink()
    sources = [s for _, s in app.extensions["crm"].registries["migrations"].items()]
    with app.app_context(), pytest.raises(MigrationError, match="vanish: migration 0001_initial is "
                                                               "recorded as applied but its file is missing"):
        status(app.extensions["crm_db"], sources)


def test_two_processes_migrating_at_once_apply_everything_once(fresh_env):
    env = fresh_env()
    results = [None, None]

    def run(index):
        results[index] = crm("migrate", "up", env=env)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    applied = sum(r.stdout.count("  applied ") for r in results)
    assert applied == len(CORE_MIGRATIONS) + 2  # core's, notes, tags: each once between the two
    check = crm("migrate", "status", env=env)
    assert "Everything is applied." in check.stdout


def test_migrate_make_writes_the_next_migration(app_factory, fresh_database_url, tmp_path, monkeypatch,
                                                register_plugin):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = write_plugin_package(tmp_path, "grow", {})
    (tmp_path / package / "models.py").write_text(textwrap.dedent("""
        import peewee
        from crm_core.db import BaseModel, MoneyField, CurrencyField

        class Deal(BaseModel):
            name = peewee.CharField(max_length=80)
            amount = MoneyField(null=True)
            currency = CurrencyField(null=True)
        """), encoding="utf-8")
    (tmp_path / package / "__init__.py").write_text(
        (tmp_path / package / "__init__.py").read_text() + textwrap.dedent("""
        @hookimpl
        def crm_register_models(app):
            from crm_grow.models import Deal
            return [Deal]
        """), encoding="utf-8")
    register_plugin(package)
    app = app_factory(CRM_DATABASE_URL=fresh_database_url())
    from click.testing import CliRunner

    from crm_core import cli as cli_module

    state = cli_module.CliState()
    state._app = app
    result = CliRunner().invoke(cli_module.main, ["migrate", "make", "grow", "add deals"], obj=state)
    assert result.exit_code == 0, result.output
    written = tmp_path / package / "migrations" / "0001_add_deals.py"
    assert f"Wrote {written}" in result.output
    text = written.read_text()
    assert "grow_deal" in text and "MoneyField" in text
    with app.app_context():
        migrate(app)
        from crm_grow.models import Deal
        assert not drift(app.extensions["crm_db"], [Deal])
    again = CliRunner().invoke(cli_module.main, ["migrate", "make", "grow", "nothing"], obj=state)
    assert "The database already matches the models: nothing to write." in again.output
