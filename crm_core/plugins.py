"""The plugin host: entry points -> allow-list -> manifests -> requires -> register -> check.

One ``PluginHost`` per application, kept in ``app.extensions["crm"]``; it owns
a fresh pluggy manager and the registries collected at start.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from crm_core import hookspecs
from crm_core.errors import PluginError, RegistryError
from crm_core.manifest import PluginManifest
from crm_core.version import __version__ as CORE_VERSION

ENTRY_POINT_GROUP = "crm.plugins"
DISTRIBUTION = "crm-framework"
CORE = "core"

log = logging.getLogger("crm.plugins")


@dataclass
class PluginSource:
    """A plugin that can be enabled: found as an entry point or given in CRM_EXTRA_PLUGINS."""

    name: str
    load: Callable[[], types.ModuleType]
    origin: str
    distribution: str | None = None
    distribution_version: str | None = None
    bundled: bool = False


@dataclass
class LoadedPlugin:
    name: str
    module: types.ModuleType
    manifest: PluginManifest
    settings: dict
    source: PluginSource


def _normalize(dist_name):
    return (dist_name or "").lower().replace("_", "-").replace(".", "-")


def discover(extra=None):
    """Every plugin that could be enabled, by name, without importing any of them."""
    found: dict[str, PluginSource] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        source = PluginSource(
            name=ep.name, load=ep.load, origin=f"entry point {ep.value}",
            distribution=dist_name, distribution_version=dist.version if dist else None,
            bundled=_normalize(dist_name) == DISTRIBUTION)
        previous = found.get(ep.name)
        if previous and previous.origin != source.origin:
            both = sorted([f"{previous.distribution} ({previous.origin})",
                           f"{dist_name} ({source.origin})"])
            raise PluginError(f"plugin name {ep.name!r} is provided twice: by {both[0]} and by "
                              f"{both[1]}; uninstall one")
        found[ep.name] = source
    for name, target in (extra or {}).items():
        if isinstance(target, str):
            source = PluginSource(name, (lambda t=target: importlib.import_module(t)),
                                  origin=f"module {target}")
        else:
            source = PluginSource(name, (lambda t=target: t),
                                  origin=f"module {getattr(target, '__name__', target)}")
        if name in found:
            raise PluginError(f"plugin name {name!r} is both installed and given in CRM_EXTRA_PLUGINS")
        found[name] = source
    return found


def _available_text(available):
    return ", ".join(sorted(available)) or "none installed"


def resolve_enabled(requested, available):
    """The plugin names to enable, in the order given; None means all bundled plugins."""
    if requested is None:
        return [name for name, src in sorted(available.items()) if src.bundled]
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise PluginError(
            f"unknown plugin {', '.join(repr(n) for n in unknown)} in CRM_PLUGINS. "
            f"Available plugins: {_available_text(available)}")
    return list(requested)


def load_manifest(source):
    try:
        module = source.load()
    except Exception as exc:  # the plugin's own import failed: say which plugin
        raise PluginError(f"plugin {source.name!r} ({source.origin}) failed to import: "
                          f"{type(exc).__name__}: {exc}") from exc
    manifest = getattr(module, "manifest", None)
    if not isinstance(manifest, PluginManifest):
        raise PluginError(f"plugin {source.name!r} ({source.origin}) has no `manifest` "
                          "(a crm_core.PluginManifest) at module level")
    manifest.validate()
    if manifest.name != source.name:
        raise PluginError(f"plugin {source.name!r}: its manifest is named {manifest.name!r}; "
                          "the entry-point name and the manifest name must be the same")
    return module, manifest


def order_by_requirements(manifests, available):
    """Sort plugins so every plugin comes after what it requires; report cycles and gaps."""
    for name, manifest in manifests.items():
        for required in manifest.requires:
            if required not in manifests:
                where = ("is installed but not enabled; add it to CRM_PLUGINS"
                         if required in available else
                         f"is not installed (available plugins: {_available_text(available)})")
                raise PluginError(f"plugin {name!r} requires {required!r}, which {where}")
    ordered, state = [], {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise PluginError("plugins require each other in a cycle: " + " -> ".join(cycle))
        state[name] = "visiting"
        for required in manifests[name].requires:
            visit(required, path + [name])
        state[name] = "done"
        ordered.append(name)

    for name in manifests:
        visit(name, [])
    return ordered


def merge_settings(manifest, configured):
    known = {s.name for s in manifest.settings}
    unknown = sorted(set(configured) - known)
    if unknown:
        raise PluginError(
            f"plugin {manifest.name!r} has no setting {', '.join(repr(u) for u in unknown)} "
            f"(CRM_PLUGIN_CONFIG[{manifest.name!r}]); its settings: "
            f"{', '.join(sorted(known)) or 'none'}")
    missing = [name for name in manifest.required_settings if configured.get(name) in (None, "")]
    if missing:
        raise PluginError(
            f"plugin {manifest.name!r} needs the setting {', '.join(repr(m) for m in missing)}: "
            f"set it in CRM_PLUGIN_CONFIG, e.g. "
            f'{{"{manifest.name}": {{"{missing[0]}": ...}}}}')
    return {**manifest.defaults, **configured}


class Registry:
    """Names registered once at start; a second registration of a name is an error."""

    def __init__(self, kind):
        self.kind = kind
        self._items: dict[str, tuple[str, Any]] = {}

    def add(self, name, value, owner):
        if name in self._items:
            raise RegistryError(f"{self.kind} {name!r} is registered twice: by "
                                f"{self._items[name][0]} and by {owner}")
        self._items[name] = (owner, value)

    def __getitem__(self, name):
        return self._items[name][1]

    def __contains__(self, name):
        return name in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def items(self):
        return [(name, value) for name, (_, value) in self._items.items()]

    def owner(self, name):
        return self._items[name][0]

    def by_owner(self, owner):
        return [name for name, (o, _) in self._items.items() if o == owner]


@dataclass
class PluginHost:
    """The plugins of one application and what they registered."""

    pm: pluggy.PluginManager
    available: dict[str, PluginSource]
    plugins: list[LoadedPlugin]
    registries: dict[str, Registry] = field(default_factory=dict)
    _callers: dict[str, list] = field(default_factory=dict, repr=False)

    @property
    def hook(self):
        return self.pm.hook

    @property
    def names(self):
        return [p.name for p in self.plugins]

    def plugin(self, name):
        for loaded in self.plugins:
            if loaded.name == name:
                return loaded
        raise KeyError(name)

    def settings(self, name):
        return self.plugin(name).settings

    def owners(self):
        """Every owner of hook implementations in registration order: core first."""
        return [CORE] + self.names

    def _owner_callers(self, hook_name):
        """[(owner, caller limited to that owner's implementations)] in registration order.

        Built once per hook: plugins are fixed after start.
        """
        cached = self._callers.get(hook_name)
        if cached is None:
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()
            every = [impl.plugin for impl in impls]
            cached = []
            for owner in self.owners():
                mine = [impl.plugin for impl in impls if owner_of(impl.plugin_name) == owner]
                if mine:
                    others = [p for p in every if p not in mine]
                    cached.append((owner, self.pm.subset_hook_caller(hook_name, others)))
            self._callers[hook_name] = cached
        return cached

    def call_per_owner(self, hook_name, **kwargs):
        """Call a hook owner by owner, yielding (owner, result) so every result is attributed.

        An exception is re-raised as a PluginError naming the owner.
        """
        for owner, caller in self._owner_callers(hook_name):
            try:
                results = caller(**kwargs)
            except (PluginError, RegistryError):
                raise
            except Exception as exc:
                raise PluginError(f"{owner}: hook {hook_name} failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
            for result in reversed(results):
                yield owner, result

    def collect(self, hook_name, kind, into, key, check, **kwargs):
        """A registry hook's items, owner by owner: each passes ``check(item, owner)`` (which
        raises RegistryError) and is registered under ``key(item)``; the Registry (of
        ``kind``, the word its errors use) is kept in ``registries[into]`` and returned. A key
        registered twice is an error."""
        registry = Registry(kind)
        for owner, result in self.call_per_owner(hook_name, **kwargs):
            for item in result or ():
                check(item, owner)
                registry.add(key(item), item, owner)
        self.registries[into] = registry
        return registry

    def call_in_order(self, hook_name, **kwargs):
        """Call a hook owner by owner (a plugin after what it requires); non-None results in order."""
        ordered = []
        for _owner, caller in self._owner_callers(hook_name):
            ordered.extend(reversed(caller(**kwargs)))
        return ordered


def owner_of(registered_name):
    """'core', 'core.web' -> 'core'; a plugin's registered name is its own name."""
    return registered_name.split(".", 1)[0]


def new_plugin_manager(trace_writer=None):
    pm = pluggy.PluginManager("crm")
    pm.add_hookspecs(hookspecs)
    if trace_writer is not None:
        pm.trace.root.setwriter(trace_writer)
        pm.enable_tracing()
    return pm


def add_plugin_hookspecs(pm, plugin):
    """Add the hooks ``plugin`` offers to other plugins (its manifest's ``hookspecs``
    module); each must be named ``crm_<plugin>_*`` so that no plugin can shadow a core
    hook or another plugin's."""
    module_name = plugin.manifest.hookspecs
    if not module_name:
        return
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PluginError(f"plugin {plugin.name!r}: its hookspecs module {module_name!r} failed to "
                          f"import: {type(exc).__name__}: {exc}") from exc
    prefix = f"crm_{plugin.name}_"
    offered = list(hookspecs_of(module))
    if not offered:
        raise PluginError(f"plugin {plugin.name!r}: {module_name} declares no hookspec")
    wrong = sorted(name for name in offered if not name.startswith(prefix))
    if wrong:
        raise PluginError(f"plugin {plugin.name!r} offers hooks {', '.join(wrong)}: a plugin's "
                          f"hooks must be named {prefix}*")
    pm.add_hookspecs(module)


def hookspecs_of(module):
    """{name: function} of the hookspecs ``module`` declares (marked by ``crm_core.hookspec``:
    crm_core.hookspecs or a plugin's hookspecs module), in the module's order."""
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return {name: obj for name, obj in vars(module).items() if callable(obj) and hasattr(obj, marker)}


def plugin_hookspecs(host):
    """{plugin name: [hook names]} of the hooks enabled plugins offer."""
    return {plugin.name: list(hookspecs_of(importlib.import_module(plugin.manifest.hookspecs)))
            for plugin in host.plugins if plugin.manifest.hookspecs}


def build_host(settings, core_modules, trace_writer=None):
    """Discover, select, check and register plugins; return the PluginHost.

    ``core_modules`` are the core's own hook implementations, registered first
    under names ``core.<part>`` so that the core is built on the same hooks.
    """
    available = discover(settings.get("CRM_EXTRA_PLUGINS"))
    enabled_names = resolve_enabled(settings.get("CRM_PLUGINS"), available)
    modules, manifests = {}, {}
    for name in enabled_names:
        modules[name], manifests[name] = load_manifest(available[name])
        if not manifests[name].supports_core(CORE_VERSION):
            raise PluginError(
                f"plugin {name!r} {manifests[name].version} supports core versions "
                f"{manifests[name].core}; this is core {CORE_VERSION}. Upgrade the plugin "
                "or remove it from CRM_PLUGINS")
    order = order_by_requirements(manifests, available)
    plugin_config = settings.get("CRM_PLUGIN_CONFIG") or {}
    for name in sorted(set(plugin_config) - set(order)):
        log.warning("CRM_PLUGIN_CONFIG has settings for %r, which is not enabled", name)
    loaded = [LoadedPlugin(name, modules[name], manifests[name],
                           merge_settings(manifests[name], plugin_config.get(name, {})),
                           available[name]) for name in order]

    pm = new_plugin_manager(trace_writer)
    for plugin in loaded:
        add_plugin_hookspecs(pm, plugin)
    try:
        for part, module in core_modules:
            pm.register(module, name=f"{CORE}.{part}")
        for plugin in loaded:
            pm.register(plugin.module, name=plugin.name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        # pluggy names the plugin and the hook; an unknown hook is usually a typo.
        raise PluginError(f"a plugin does not match the hook specifications: {exc}") from exc
    return PluginHost(pm=pm, available=available, plugins=loaded)
