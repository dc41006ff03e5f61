"""What a plugin says about itself: the manifest every plugin module exports as ``manifest``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from crm_core.errors import PluginError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# Names used by the core: URL segments, and `crm` commands (a plugin's commands are
# `crm <plugin> ...`, so a plugin named like a core command could never be reached).
RESERVED_NAMES = {"core", "crm", "api", "static", "plugins", "admin", "auth",
                  "init", "migrate", "run", "worker", "demo", "i18n", "user", "import", "export",
                  "backup", "restore"}


@dataclass(frozen=True)
class Setting:
    """A per-plugin setting: its default, or ``required=True`` when there is no sensible one."""

    name: str
    default: Any = None
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class PluginManifest:
    """Identity, compatibility and settings of a plugin.

    ``name`` is the entry-point name and the prefix of the plugin's tables,
    routes and hooks; ``core`` is a PEP 440 specifier of supported core versions.
    """

    name: str
    label: str
    version: str
    core: str = ">=0.1"
    requires: tuple[str, ...] = ()
    settings: tuple[Setting, ...] = ()
    description: str = ""
    ui_prefix: str | None = None
    api_prefix: str | None = None
    # The module holding the hookspecs the plugin offers to others (``crm_<name>_*``),
    # e.g. "crm_territory.hookspecs"; added to the manager before any plugin registers.
    hookspecs: str | None = None
    extra: dict = field(default_factory=dict)

    def validate(self):
        """Raise PluginError naming what is wrong with this manifest."""
        if not NAME_PATTERN.match(self.name or ""):
            raise PluginError(
                f"plugin name {self.name!r} must be 2-40 lowercase letters, digits or _ "
                "and start with a letter")
        if self.name in RESERVED_NAMES:
            raise PluginError(f"plugin name {self.name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
        try:
            Version(self.version)
        except InvalidVersion:
            raise PluginError(f"plugin {self.name}: version {self.version!r} is not a PEP 440 version")
        try:
            SpecifierSet(self.core)
        except InvalidSpecifier:
            raise PluginError(f"plugin {self.name}: core {self.core!r} is not a version specifier "
                              "such as '>=0.1,<1'")
        if isinstance(self.requires, str) or not all(isinstance(r, str) for r in self.requires):
            raise PluginError(f"plugin {self.name}: requires must be a tuple of plugin names")
        names = [s.name for s in self.settings]
        if len(names) != len(set(names)):
            raise PluginError(f"plugin {self.name}: a setting is declared twice")

    def supports_core(self, core_version):
        return Version(core_version) in SpecifierSet(self.core)

    @property
    def defaults(self):
        return {s.name: s.default for s in self.settings if not s.required}

    @property
    def required_settings(self):
        return tuple(s.name for s in self.settings if s.required)
