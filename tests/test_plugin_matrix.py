"""Every bundled plugin alone, and all of them together, build a working app."""

from pathlib import Path

import pytest

from crm_core.testing import api_client

from crm_core.plugins import discover

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted(name for name, source in discover().items() if source.bundled)
FOLDERS = sorted(p.parent.name for p in ROOT.glob("plugins/*/crm_*") if p.is_dir())


def test_every_plugin_folder_is_discovered_as_bundled():
    """A folder under plugins/ that is not installed as an entry point ships nothing."""
    assert BUNDLED == FOLDERS


@pytest.mark.parametrize("plugins", [[]] + [[name] for name in BUNDLED] + [BUNDLED],
                         ids=lambda p: "+".join(p) or "core-only")
def test_plugin_set_builds_migrates_and_serves(app_factory, fresh_database_url, plugins):
    app = app_factory(CRM_DATABASE_URL=fresh_database_url(), CRM_PLUGINS=plugins)
    host = app.extensions["crm"]
    assert host.names == sorted(plugins, key=host.names.index) and set(host.names) == set(plugins)
    host.pm.check_pending()
    client = api_client(app)
    assert client.get("/healthz").json["status"] == "ok"
    assert client.get("/").status_code == 200
    spec = client.get("/api/v1/openapi.json").json
    for name in plugins:
        owned = host.registries["api_blueprints"].by_owner(name)
        if owned:
            assert any(path.startswith(f"/api/v1/plugins/{name}") for path in spec["paths"])
    db = app.extensions["crm_db"]
    with app.app_context(), db.connection_context():
        tables = set(db.get_tables())
    for name in BUNDLED:
        mine = {t for t in tables if t.startswith(name + "_")}
        if name in plugins:
            assert f"{name}_migrations" in tables or not host.registries["migrations"].by_owner(name)
        else:
            assert not mine, f"{name} is off but left tables: {sorted(mine)}"
