"""Configuration: defaults < config file < ``CRM_*`` environment < ``create_app(config)``.

Every setting is declared once below with its parser; a bad value is reported
with the variable's name and what was expected, all problems at once.
"""

from __future__ import annotations

import json
import os
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from crm_core.errors import ConfigError

LOCALES = ("en", "vi", "pl", "zh", "zh_TW", "ru")
ENVIRONMENTS = ("production", "dev", "demo", "test")
# Values that appear in tutorials and sample files; a deployment using one of
# them has not set a key at all.
WELL_KNOWN_SECRETS = {
    "", "secret", "changeme", "change-me", "change_me", "default", "dev", "development",
    "devkey", "dev-key", "insecure", "test", "testing", "please-change-me", "your-secret-key",
    "secret-key", "secret_key", "supersecret", "crm", "password",
}
MIN_SECRET_LENGTH = 24
CONFIG_FILE_NAME = "crm.toml"


def _text(value):
    if not isinstance(value, str):
        raise ValueError("expected a text value")
    return value


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _choice(options):
    def parse(value):
        if value not in options:
            raise ValueError("expected one of " + ", ".join(options))
        return value

    return parse


def _plugin_list(value):
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    else:
        raise ValueError("expected a comma-separated list of plugin names")
    names = [item for item in items if item]
    for name in names:
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise ValueError(f"{name!r} is not a plugin name (letters, digits and _)")
    if len(set(names)) != len(names):
        raise ValueError("a plugin is listed twice")
    return tuple(names)


def _plugin_config(value):
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON object ({exc.msg} at position {exc.pos})")
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError('expected a JSON object of objects, e.g. {"territory": {"key": 1}}')
    return value


def _database_url(value):
    value = _text(value)
    scheme = urlparse(value).scheme
    if scheme not in ("sqlite", "postgres", "postgresql"):
        raise ValueError(
            "expected sqlite:///path/to/file.db or postgresql://user@host:port/dbname"
        )
    if scheme != "sqlite" and not urlparse(value).path.strip("/"):
        raise ValueError("the PostgreSQL URL names no database (postgresql://host/dbname)")
    return value


def _url(*schemes):
    def parse(value):
        value = _text(value)
        if urlparse(value).scheme not in schemes:
            raise ValueError("expected a URL starting with " + " or ".join(f"{s}://" for s in schemes))
        return value

    return parse


def _timezone(value):
    value = _text(value)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as Europe/Warsaw or Asia/Ho_Chi_Minh")
    return value


def _currency(value):
    from crm_core.money import _CURRENCIES

    value = _text(value).upper()
    if value not in _CURRENCIES:
        raise ValueError("expected a three-letter ISO 4217 currency code such as USD, VND or PLN")
    return value


def _path(value):
    return str(Path(_text(value)).expanduser())


def _positive_int(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("expected a whole number")
    if number < 1:
        raise ValueError("expected a number of at least 1")
    return number


@dataclass(frozen=True)
class SettingSpec:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    from_env: bool = True


SPECS = {
    spec.name: spec
    for spec in [
        SettingSpec("CRM_ENV", _choice(ENVIRONMENTS), "production",
                    "production, dev, demo or test; only dev, demo and test run without a secret key"),
        SettingSpec("CRM_SECRET_KEY", _text, None,
                    f"signs sessions; at least {MIN_SECRET_LENGTH} random characters"),
        SettingSpec("CRM_INSTANCE_PATH", _path, None,
                    "folder for the SQLite database, the job queue and crm.toml"),
        SettingSpec("CRM_DATABASE_URL", _database_url, None,
                    "sqlite:///file.db (default: crm.sqlite3 in the instance folder) or postgresql://..."),
        SettingSpec("CRM_DATABASE_POOL_SIZE", _positive_int, 16,
                    "connections a process keeps open at most"),
        SettingSpec("CRM_PLUGINS", _plugin_list, None,
                    "comma list of plugins to enable; unset: all bundled plugins; empty: core only"),
        SettingSpec("CRM_PLUGIN_CONFIG", _plugin_config, {},
                    'per-plugin settings as JSON: {"plugin": {"setting": value}}'),
        SettingSpec("CRM_SMTP_URL", _url("smtp", "smtps"), None,
                    "outgoing mail server, smtp://user:password@host:port"),
        SettingSpec("CRM_MAIL_FROM", _text, "crm@localhost", "the sender address of the CRM's emails"),
        SettingSpec("CRM_BASE_URL", _url("http", "https"), None,
                    "the address people open the CRM at, for links in emails"),
        SettingSpec("CRM_REDIS_URL", _url("redis", "rediss", "unix"), None,
                    "Redis for the job queue (default: SQLite storage in the instance folder)"),
        SettingSpec("CRM_JOBS_IMMEDIATE", _bool, False,
                    "run jobs inline instead of queueing them (tests and development only)"),
        SettingSpec("CRM_RECYCLE_RETENTION_DAYS", _positive_int, 15,
                    "days a deleted record stays in the recycle bin before it is purged"),
        SettingSpec("CRM_SNAPSHOT_DAILY_DAYS", _positive_int, 90,
                    "days of daily pipeline snapshots kept; older ones are thinned to one a month"),
        SettingSpec("CRM_IMPORT_MAX_MB", _positive_int, 100,
                    "largest file an import accepts, in megabytes (uploads: also Flask's limit)"),
        SettingSpec("CRM_IMPORT_MAX_ROWS", _positive_int, 1_000_000, "most rows an import accepts"),
        SettingSpec("CRM_IMPORT_INLINE_KB", _positive_int, 256,
                    "larger uploads are imported by the worker (crm worker), smaller ones at once"),
        SettingSpec("CRM_DEFAULT_LOCALE", _choice(LOCALES), "en",
                    "language when nothing else decides: " + ", ".join(LOCALES)),
        SettingSpec("CRM_TIMEZONE", _timezone, "UTC", "the company's time zone"),
        SettingSpec("CRM_CURRENCY", _currency, "USD",
                    "the company's currency: new amounts default to it, and converted totals use it"),
        SettingSpec("CRM_TRACE_HOOKS", _bool, False, "log every hook call and its result"),
        # Python objects only: fixture plugins in tests, applications embedding the CRM.
        SettingSpec("CRM_EXTRA_PLUGINS", lambda v: dict(v), {},
                    "name -> module (or dotted path) treated like discovered plugins", from_env=False),
    ]
}


def read_config_file(path):
    """Read a TOML config file whose keys are the ``CRM_*`` names."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([("CRM_CONFIG", f"file {path} does not exist")])
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([("CRM_CONFIG", f"{path} is not valid TOML: {exc}")])
    return data


def default_instance_path():
    return str(Path.cwd() / "instance")


def load_settings(overrides=None, environ=None):
    """Return a dict of validated settings, or raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}

    instance = overrides.get("CRM_INSTANCE_PATH") or environ.get("CRM_INSTANCE_PATH") \
        or default_instance_path()
    config_file = overrides.get("CRM_CONFIG") or environ.get("CRM_CONFIG")
    if not config_file and (Path(instance) / CONFIG_FILE_NAME).is_file():
        config_file = str(Path(instance) / CONFIG_FILE_NAME)
    problems = []
    if config_file:
        for key, value in read_config_file(config_file).items():
            if key not in SPECS or not SPECS[key].from_env:
                problems.append((key, f"unknown setting in {config_file}"))
                continue
            raw[key], sources[key] = value, config_file
    for key, value in environ.items():
        if key in SPECS and SPECS[key].from_env:
            raw[key], sources[key] = value, "environment"
    for key, value in overrides.items():
        if key == "CRM_CONFIG":
            continue
        if key not in SPECS and key.startswith("CRM_"):
            problems.append((key, "unknown setting"))
            continue
        raw[key], sources[key] = value, "create_app(config)"

    settings: dict[str, Any] = {}
    for name, spec in SPECS.items():
        if name in raw:
            try:
                settings[name] = spec.parse(raw[name])
            except ValueError as exc:
                problems.append((name, f"{exc} (got {raw[name]!r} from {sources[name]})"))
                settings[name] = spec.default
        else:
            settings[name] = spec.default
    # Flask keys (no CRM_ prefix) passed by embedding applications or tests.
    extra = {k: v for k, v in overrides.items() if not k.startswith("CRM_")}

    settings["CRM_INSTANCE_PATH"] = settings["CRM_INSTANCE_PATH"] or instance
    if not settings["CRM_DATABASE_URL"]:
        settings["CRM_DATABASE_URL"] = "sqlite:///" + str(
            Path(settings["CRM_INSTANCE_PATH"]) / "crm.sqlite3")
    secret = settings["CRM_SECRET_KEY"]
    if settings["CRM_ENV"] == "production":
        if secret is None:
            problems.append(("CRM_SECRET_KEY", "is not set; production needs a random key of at "
                             f"least {MIN_SECRET_LENGTH} characters (python -c 'import secrets; "
                             "print(secrets.token_urlsafe(48))')"))
        elif secret.strip().lower() in WELL_KNOWN_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            problems.append(("CRM_SECRET_KEY", "is a default or too short; production needs a random "
                             f"key of at least {MIN_SECRET_LENGTH} characters"))
    if problems:
        raise ConfigError(problems)
    settings["config_file"] = config_file
    settings.update(extra)
    return settings
