"""The plugin as an operator meets it: listed, enabled, disabled without traces, removed."""

import subprocess
import sys

import pytest

from crm_core.testing import api_client, subprocess_env

pytestmark = pytest.mark.slow


def crm(*args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "crm_core", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path, fresh_database_url):
    return subprocess_env(CRM_ENV="test", CRM_INSTANCE_PATH=tmp_path / "instance",
                          CRM_DATABASE_URL=fresh_database_url(), CRM_PLUGINS="territory")


def territory_tables(env):
    listed = crm("migrate", "status", env=env)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_plugins_lists_it_enabled_with_its_tables_then_disabled(env):
    assert crm("init", env=env).returncode == 0
    enabled = crm("plugins", env=env)
    assert enabled.returncode == 0, enabled.stderr
    line = next(line for line in enabled.stdout.splitlines() if line.startswith("territory"))
    assert "enabled" in line and "Territories" in line
    assert "territory_territory" in enabled.stdout and "drop-tables" in enabled.stdout
    disabled = crm("plugins", env={**env, "CRM_PLUGINS": ""})
    assert "territory  disabled" in disabled.stdout


def test_drop_tables_removes_every_table_and_the_history_then_it_can_come_back(env, app_factory):
    assert crm("init", env=env).returncode == 0
    refused = crm("territory", "drop-tables", env=env)  # no --yes and no terminal: nothing dropped
    assert refused.returncode != 0
    assert "territory" in territory_tables(env)
    dropped = crm("territory", "drop-tables", "--yes", env=env)
    assert dropped.returncode == 0, dropped.stderr
    assert "Dropped 6 table(s)" in dropped.stdout
    core_only = {**env, "CRM_PLUGINS": ""}
    status = crm("migrate", "status", env=core_only)
    assert status.returncode == 0 and "pending" not in status.stdout.lower()
    app = app_factory(CRM_DATABASE_URL=env["CRM_DATABASE_URL"], CRM_PLUGINS=[], migrate_schema=False)
    db = app.extensions["crm_db"]
    with app.app_context(), db.connection_context():
        assert not [t for t in db.get_tables() if t.startswith("territory_")]
    # Switched on again, the plugin migrates from its first migration.
    again = crm("migrate", "up", env=env)
    assert again.returncode == 0, again.stderr
    assert "territory" in again.stdout


def test_with_the_plugin_off_nothing_mentions_territories(app_factory, fresh_database_url):
    from crm_core.permissions import engine
    from crm_core.testing import make_user

    app = app_factory(CRM_DATABASE_URL=fresh_database_url(), CRM_PLUGINS=[])
    assert app.extensions["crm"].names == []
    assert not [rule.rule for rule in app.url_map.iter_rules() if "territor" in rule.rule]
    with app.app_context():
        admin = make_user(is_admin=True)
        assert not [name for name in engine().permissions if name.startswith("territory.")]
    client = api_client(app, admin)
    assert not [path for path in client.get("/api/v1/openapi.json").json["paths"] if "territor" in path]
    created = client.post("/api/v1/accounts", json={"name": "Bến Thành Trading", "country": "VN"})
    assert created.status_code == 201, created.json
    assert "territory" not in created.json.get("ext", {})
    assert "erritor" not in client.get("/").get_data(as_text=True)
