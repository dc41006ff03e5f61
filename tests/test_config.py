"""Configuration: every bad value names its variable and what was expected."""

import pytest

from crm_core.config import load_settings
from crm_core.errors import ConfigError

GOOD_SECRET = "k" * 20 + "-random-enough-1234"


def problems(overrides=None, environ=None):
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides, environ=environ or {})
    return dict(caught.value.problems), str(caught.value)


def test_defaults_need_only_a_secret_key(tmp_path):
    settings = load_settings({"CRM_INSTANCE_PATH": str(tmp_path)},
                             environ={"CRM_SECRET_KEY": GOOD_SECRET})
    assert settings["CRM_ENV"] == "production"
    assert settings["CRM_DATABASE_URL"] == f"sqlite:///{tmp_path}/crm.sqlite3"
    assert settings["CRM_PLUGINS"] is None  # unset: all bundled plugins
    assert settings["CRM_DEFAULT_LOCALE"] == "en"


@pytest.mark.parametrize("secret", [None, "", "changeme", "secret", "dev", "short-key"])
def test_production_refuses_a_missing_or_default_secret(secret, tmp_path):
    environ = {} if secret is None else {"CRM_SECRET_KEY": secret}
    found, text = problems({"CRM_INSTANCE_PATH": str(tmp_path)}, environ)
    assert "CRM_SECRET_KEY" in found
    assert "at least 24 characters" in text


@pytest.mark.parametrize("env", ["dev", "demo", "test"])
def test_dev_demo_and_test_start_without_a_secret(env, tmp_path):
    settings = load_settings({"CRM_INSTANCE_PATH": str(tmp_path)}, environ={"CRM_ENV": env})
    assert settings["CRM_SECRET_KEY"] is None


@pytest.mark.parametrize("name, value, expected", [
    ("CRM_ENV", "staging", "expected one of production, dev, demo, test"),
    ("CRM_DATABASE_URL", "mysql://x/y", "expected sqlite:///"),
    ("CRM_DATABASE_URL", "postgresql://localhost", "names no database"),
    ("CRM_PLUGIN_CONFIG", "{not json", "expected a JSON object"),
    ("CRM_PLUGIN_CONFIG", '{"territory": 3}', "expected a JSON object of objects"),
    ("CRM_PLUGINS", "territory,territory", "listed twice"),
    ("CRM_PLUGINS", "terri tory", "is not a plugin name"),
    ("CRM_DEFAULT_LOCALE", "de", "expected one of en, vi, pl, zh, zh_TW, ru"),
    ("CRM_TIMEZONE", "Mars/Olympus", "IANA time zone"),
    ("CRM_TRACE_HOOKS", "maybe", "expected one of 1/0"),
    ("CRM_SMTP_URL", "http://mail", "smtp://"),
    ("CRM_REDIS_URL", "tcp://x", "redis://"),
    ("CRM_DATABASE_POOL_SIZE", "0", "at least 1"),
])
def test_a_bad_value_names_the_variable_and_what_was_expected(name, value, expected):
    found, text = problems(environ={"CRM_SECRET_KEY": GOOD_SECRET, name: value})
    assert set(found) == {name}
    assert expected in found[name]
    assert repr(value) in found[name] and "environment" in found[name]


def test_all_problems_are_reported_at_once():
    found, _ = problems(environ={"CRM_ENV": "nope", "CRM_TIMEZONE": "Nowhere", "CRM_SECRET_KEY": "x"})
    assert {"CRM_ENV", "CRM_TIMEZONE"} <= set(found)


def test_config_file_then_environment_then_create_app_config(tmp_path):
    config_file = tmp_path / "site.toml"
    config_file.write_text(
        'CRM_SECRET_KEY = "%s"\nCRM_DEFAULT_LOCALE = "pl"\nCRM_TIMEZONE = "Europe/Warsaw"\n'
        'CRM_PLUGINS = ["notes"]\n[CRM_PLUGIN_CONFIG.notes]\ngreeting = "cześć"\n' % GOOD_SECRET,
        encoding="utf-8")
    settings = load_settings({"CRM_TIMEZONE": "Asia/Ho_Chi_Minh"},
                             environ={"CRM_CONFIG": str(config_file), "CRM_DEFAULT_LOCALE": "vi"})
    assert settings["CRM_SECRET_KEY"] == GOOD_SECRET  # file
    assert settings["CRM_DEFAULT_LOCALE"] == "vi"  # environment beats file
    assert settings["CRM_TIMEZONE"] == "Asia/Ho_Chi_Minh"  # create_app(config) beats both
    assert settings["CRM_PLUGINS"] == ("notes",)
    assert settings["CRM_PLUGIN_CONFIG"] == {"notes": {"greeting": "cześć"}}


def test_instance_config_file_is_read_when_present(tmp_path):
    (tmp_path / "crm.toml").write_text(f'CRM_SECRET_KEY = "{GOOD_SECRET}"\n', encoding="utf-8")
    settings = load_settings({"CRM_INSTANCE_PATH": str(tmp_path)}, environ={})
    assert settings["CRM_SECRET_KEY"] == GOOD_SECRET
    assert settings["config_file"] == str(tmp_path / "crm.toml")


def test_config_file_errors_are_named(tmp_path):
    found, _ = problems(environ={"CRM_CONFIG": str(tmp_path / "missing.toml")})
    assert "does not exist" in found["CRM_CONFIG"]
    bad = tmp_path / "bad.toml"
    bad.write_text("CRM_ENV = ", encoding="utf-8")
    found, _ = problems(environ={"CRM_CONFIG": str(bad)})
    assert "is not valid TOML" in found["CRM_CONFIG"]
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('CRM_COLOUR = "blue"\n', encoding="utf-8")
    found, _ = problems(environ={"CRM_CONFIG": str(unknown), "CRM_SECRET_KEY": GOOD_SECRET})
    assert "unknown setting" in found["CRM_COLOUR"]


def test_unknown_crm_setting_passed_to_create_app_is_an_error():
    found, _ = problems({"CRM_PLUGINZ": "x"}, environ={"CRM_SECRET_KEY": GOOD_SECRET})
    assert found == {"CRM_PLUGINZ": "unknown setting"}


def test_extra_plugins_cannot_come_from_the_environment():
    settings = load_settings(environ={"CRM_SECRET_KEY": GOOD_SECRET, "CRM_EXTRA_PLUGINS": "x=os"})
    assert settings["CRM_EXTRA_PLUGINS"] == {}


def test_create_app_refuses_to_start_in_production_without_a_secret(tmp_path, monkeypatch):
    from crm_core.app import create_app

    monkeypatch.delenv("CRM_SECRET_KEY", raising=False)
    monkeypatch.delenv("CRM_ENV", raising=False)
    with pytest.raises(ConfigError, match="CRM_SECRET_KEY"):
        create_app({"CRM_INSTANCE_PATH": str(tmp_path)})
