"""The `crm` command as an operator meets it: exit codes, messages, a real server."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from crm_core.testing import CrmServer, subprocess_env
from crm_core.version import __version__


def crm(*args, env, timeout=120, input=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "crm_core", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, input=input, cwd=cwd)


@pytest.fixture
def env(tmp_path, crm_database_url):
    return subprocess_env(CRM_ENV="test", CRM_INSTANCE_PATH=tmp_path / "instance",
                          CRM_DATABASE_URL=crm_database_url, CRM_PLUGINS="")


def test_version_through_python_dash_m(env):
    result = crm("--version", env=env)
    assert result.returncode == 0 and result.stdout.strip() == f"crm, version {__version__}"


def test_bad_configuration_exits_2_and_names_the_variable(env):
    result = crm("migrate", "status", env={**env, "CRM_TIMEZONE": "Mars/Base"})
    assert result.returncode == 2
    assert "CRM_TIMEZONE: expected an IANA time zone" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_without_secret_refuses_to_start(env):
    production = {k: v for k, v in env.items() if k != "CRM_ENV"}
    result = crm("run", env=production)
    assert result.returncode == 2
    assert "CRM_SECRET_KEY: is not set" in result.stderr


def test_unknown_plugin_exits_2_and_lists_the_available_ones(env):
    result = crm("plugins", env={**env, "CRM_PLUGINS": "pricing"})
    assert result.returncode == 2
    assert ("unknown plugin 'pricing' in CRM_PLUGINS. Available plugins: broken, fx, notes, tags, "
            "territory") in result.stderr


def test_help_works_even_when_the_configuration_is_broken(env):
    result = crm("--help", env={**env, "CRM_PLUGINS": "pricing"})
    assert result.returncode == 0
    for command in ("init", "migrate", "run", "worker", "plugins", "demo"):
        assert command in result.stdout


def test_plugin_commands_are_grouped_under_the_plugin(env):
    notes_env = {**env, "CRM_PLUGINS": "notes"}
    assert crm("init", env=notes_env).returncode == 0
    listed = crm("--help", env=notes_env)
    assert "notes" in listed.stdout
    result = crm("notes", "count", env=notes_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 notes"


def test_init_rejects_a_short_admin_password(env, fresh_database_url):
    fresh = {**env, "CRM_DATABASE_URL": fresh_database_url()}
    result = crm("init", "--admin-email", "a@example.com", "--admin-password-stdin", env=fresh,
                 input="short\n")
    assert result.returncode == 1
    assert "Error: The password needs at least 10 characters." in result.stderr


def test_init_rejects_a_malformed_email(env, fresh_database_url):
    fresh = {**env, "CRM_DATABASE_URL": fresh_database_url()}
    result = crm("init", "--admin-email", "not-an-email", env=fresh)
    assert result.returncode == 1
    assert "“not-an-email” is not an email address." in result.stderr


def test_demo_sets_up_an_instance_that_run_can_start(tmp_path):
    """The README's first command, in a clean folder: demo, then a real multi-worker server."""
    home = tmp_path / "site"
    home.mkdir()
    env = subprocess_env()  # no CRM_* at all, as on a fresh machine
    env.pop("CRM_ENV", None)
    first = crm("demo", env=env, cwd=home)
    assert first.returncode == 0, first.stderr
    assert "Administrator admin@example.com created." in first.stdout
    assert "Demo ready." in first.stdout and "with the password" in first.stdout
    assert ("Demo people added: 11; departments: 6; accounts: 11; leads: 5; opportunities: 40; "
            "generated sales reps: 0; generated opportunities: 0.") in first.stdout, first.stdout
    config = home / "instance" / "crm.toml"
    assert config.exists() and oct(config.stat().st_mode & 0o777) == "0o600"
    again = crm("demo", env=env, cwd=home)
    assert again.returncode == 0 and "already exists: unchanged" in again.stdout
    assert ("Demo people added: 0; departments: 0; accounts: 0; leads: 0; opportunities: 0; "
            "generated sales reps: 0; generated opportunities: 0.") in again.stdout, again.stdout
    scaled = crm("demo", "--scale", "1200", env=env, cwd=home)
    assert "generated sales reps: 1200;" in scaled.stdout, scaled.stderr

    with CrmServer(env, workers=2, cwd=home) as server:
        with urllib.request.urlopen(server.base + "/healthz", timeout=5) as reply:
            body = json.loads(reply.read())
        assert body == {"status": "ok", "database": "ok", "version": __version__}
        with urllib.request.urlopen(server.base + "/login", timeout=5) as reply:
            assert reply.status == 200
            assert "Content-Security-Policy" in reply.headers
    pids = server.worker_pids
    assert len(pids) == 2  # gunicorn, two worker processes: not Flask's debug server


def _installed_plugins(folder, plugins):
    """Write plugin packages and a dist-info that installs them (as pip would)."""
    from crm_core.testing import write_plugin_distribution

    for name, manifest_args in plugins.items():
        package = folder / f"crm_{name}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            "from crm_core import PluginManifest, Setting\n"
            f"manifest = PluginManifest(name={name!r}, label={name!r}, {manifest_args})\n",
            encoding="utf-8")
    write_plugin_distribution(folder, "crm-odd-plugins", {n: f"crm_{n}" for n in plugins})
    return folder


@pytest.mark.parametrize("enabled, message", [
    ("tags", "plugin 'tags' requires 'notes', which is installed but not enabled; add it to CRM_PLUGINS"),
    ("ping,pong", "plugins require each other in a cycle: ping -> pong -> ping"),
    ("ancient", "plugin 'ancient' 0.0.1 supports core versions <0.1; this is core"),
    ("keyed", "plugin 'keyed' needs the setting 'token': set it in CRM_PLUGIN_CONFIG"),
    ("broken", "plugin 'broken' (entry point crm_broken) failed to import: RuntimeError"),
])
def test_plugin_errors_exit_2_with_the_reason(env, tmp_path, enabled, message):
    site = _installed_plugins(tmp_path / "site", {
        "ping": 'version="1.0", requires=("pong",)',
        "pong": 'version="1.0", requires=("ping",)',
        "ancient": 'version="0.0.1", core="<0.1"',
        "keyed": 'version="1.0", settings=(Setting("token", required=True),)',
    })
    child_env = {**env, "CRM_PLUGINS": enabled,
                 "PYTHONPATH": f"{site}{os.pathsep}{env['PYTHONPATH']}"}
    result = crm("plugins", env=child_env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
