"""The plugin host: discovery, allow-list, manifests, requirements, settings, tracing."""

import logging
import sys
import types

import pytest

from crm_core import PluginManifest, Setting, hookimpl
from crm_core.errors import PluginError
from crm_core.plugins import discover
from crm_core.testing import write_plugin_distribution


def plugin_module(name, requires=(), core=">=0.1", settings=(), version="1.0", **hooks):
    module = types.ModuleType(f"crm_{name}")
    module.manifest = PluginManifest(name=name, label=name.title(), version=version,
                                     requires=tuple(requires), core=core, settings=tuple(settings))
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def test_fixture_plugins_are_discovered_as_installed_entry_points():
    found = discover()
    assert {"notes", "tags", "broken"} <= set(found)
    assert found["notes"].distribution == "crm-fixture-plugins"
    assert found["notes"].distribution_version == "1.0"
    assert not found["notes"].bundled  # third-party: enabled only when listed


def test_a_plugin_not_on_the_allow_list_is_never_imported(app_factory):
    sys.modules.pop("crm_broken", None)
    app = app_factory(CRM_PLUGINS=["notes"])
    assert app.extensions["crm"].names == ["notes"]
    assert "crm_broken" not in sys.modules


def test_a_plugin_that_fails_to_import_is_named(app_factory):
    with pytest.raises(PluginError, match=r"plugin 'broken' \(entry point crm_broken\) failed to "
                                          r"import: RuntimeError: crm_broken must never"):
        app_factory(CRM_PLUGINS=["broken"])


def test_unknown_plugin_lists_the_available_ones(app_factory):
    with pytest.raises(PluginError) as caught:
        app_factory(CRM_PLUGINS=["notes", "territorry"])
    message = str(caught.value)
    assert "unknown plugin 'territorry' in CRM_PLUGINS" in message
    assert "Available plugins: broken, fx, notes, tags" in message


def test_empty_list_means_core_only(app_factory):
    assert app_factory(CRM_PLUGINS=[]).extensions["crm"].names == []


def test_unset_list_means_every_bundled_plugin(app_factory):
    host = app_factory().extensions["crm"]
    bundled = sorted(n for n, s in host.available.items() if s.bundled)
    assert host.names == bundled
    assert "notes" not in host.names  # third-party plugins are never on by default


def test_requirement_not_enabled(app_factory):
    with pytest.raises(PluginError, match="plugin 'tags' requires 'notes', which is installed but "
                                          "not enabled; add it to CRM_PLUGINS"):
        app_factory(CRM_PLUGINS=["tags"])


def test_requirement_not_installed(app_factory, register_plugin):
    register_plugin(plugin_module("needy", requires=("pricing",)))
    with pytest.raises(PluginError, match=r"plugin 'needy' requires 'pricing', which is not "
                                          r"installed \(available plugins: .*notes"):
        app_factory()


def test_requirements_come_first_whatever_the_listed_order(app_factory):
    host = app_factory(CRM_PLUGINS=["tags", "notes"]).extensions["crm"]
    assert host.names == ["notes", "tags"]
    assert [impl.plugin_name for impl in host.pm.hook.crm_register_migrations.get_hookimpls()] == [
        "core.hooks", "notes", "tags"]


def test_dependency_cycle_is_shown(app_factory, register_plugin):
    register_plugin(plugin_module("alpha", requires=("beta",)))
    register_plugin(plugin_module("beta", requires=("gamma",)))
    register_plugin(plugin_module("gamma", requires=("alpha",)))
    with pytest.raises(PluginError, match="plugins require each other in a cycle: "
                                          "alpha -> beta -> gamma -> alpha"):
        app_factory()


def test_incompatible_core_version(app_factory, register_plugin):
    register_plugin(plugin_module("ancient", core="<0.1", version="0.0.3"))
    with pytest.raises(PluginError, match=r"plugin 'ancient' 0.0.3 supports core versions <0.1; "
                                          r"this is core 0\.\d+\.\d+"):
        app_factory()


def test_missing_required_setting(app_factory, register_plugin):
    register_plugin(plugin_module("mailer", settings=[Setting("api_key", required=True),
                                                      Setting("sender", default="crm@example.com")]))
    with pytest.raises(PluginError, match=r"plugin 'mailer' needs the setting 'api_key': set it in "
                                          r"CRM_PLUGIN_CONFIG"):
        app_factory()
    app = app_factory(CRM_PLUGIN_CONFIG={"mailer": {"api_key": "k-1"}})
    assert app.extensions["crm"].settings("mailer") == {"api_key": "k-1", "sender": "crm@example.com"}


def test_unknown_setting_lists_the_known_ones(app_factory):
    with pytest.raises(PluginError, match=r"plugin 'notes' has no setting 'colour' .*its settings: "
                                          r"greeting, page_size"):
        app_factory(CRM_PLUGINS=["notes"], CRM_PLUGIN_CONFIG={"notes": {"colour": "red"}})


def test_settings_merge_over_defaults(app_factory):
    app = app_factory(CRM_PLUGINS=["notes"], CRM_PLUGIN_CONFIG={"notes": {"greeting": "xin chào"}})
    assert app.extensions["crm"].settings("notes") == {"greeting": "xin chào", "page_size": 20}


@pytest.mark.parametrize("manifest_kwargs, message", [
    ({"name": "Bad-Name"}, "must be 2-40 lowercase letters"),
    ({"name": "core"}, "is reserved"),
    ({"version": "one"}, "is not a PEP 440 version"),
    ({"core": "newest"}, "is not a version specifier"),
])
def test_bad_manifests_are_explained(app_factory, register_plugin, manifest_kwargs, message):
    module = types.ModuleType("crm_odd")
    fields = {"name": "odd", "label": "Odd", "version": "1.0", **manifest_kwargs}
    module.manifest = PluginManifest(**fields)
    register_plugin(module, name="odd")
    with pytest.raises(PluginError, match=message):
        app_factory()


def test_manifest_name_must_match_entry_point(app_factory, register_plugin):
    register_plugin(plugin_module("real"), name="alias")
    with pytest.raises(PluginError, match="plugin 'alias': its manifest is named 'real'; the entry-point name and "
                                          "the manifest name must be the same"):
        app_factory()


def test_module_without_manifest(app_factory, register_plugin):
    register_plugin(types.ModuleType("crm_bare"), name="bare")
    with pytest.raises(PluginError, match="has no `manifest`"):
        app_factory()


def test_an_implementation_of_an_unknown_hook_is_refused(app_factory, register_plugin):
    def crm_register_modles(app):
        return []

    register_plugin(plugin_module("typo", crm_register_modles=crm_register_modles))
    with pytest.raises(PluginError, match="crm_register_modles"):
        app_factory()


def test_a_hook_with_wrong_arguments_is_refused(app_factory, register_plugin):
    def crm_register_models(application):
        return []

    register_plugin(plugin_module("wrongargs", crm_register_models=crm_register_models))
    with pytest.raises(PluginError, match=r"(?s)Plugin 'wrongargs' for hook 'crm_register_models'.*"
                                          r"\{'application'\} are declared in the hookimpl"):
        app_factory()


def _offering_plugins(monkeypatch, *names_and_hooks):
    """Plugins whose manifest offers hookspecs from a module of their own."""
    from crm_core import hookspec

    modules = []
    for name, hook_names in names_and_hooks:
        specs = types.ModuleType(f"crm_{name}_specs")
        for hook_name in hook_names:
            def spec(app, value):
                """A hook offered to other plugins."""
            spec.__name__ = hook_name
            setattr(specs, hook_name, hookspec(spec))
        monkeypatch.setitem(sys.modules, specs.__name__, specs)
        module = plugin_module(name)
        module.manifest = PluginManifest(name=name, label=name.title(), version="1.0",
                                         hookspecs=specs.__name__)
        modules.append(module)
    return modules


def test_a_plugin_offers_hooks_that_another_plugin_implements(app_factory, register_plugin, monkeypatch):
    offering, = _offering_plugins(monkeypatch, ("zones", ["crm_zones_changed"]))
    seen = []
    listener = plugin_module("listener", requires=("zones",),
                             crm_zones_changed=lambda app, value: seen.append(value) or value)
    register_plugin(offering)
    register_plugin(listener)
    app = app_factory()
    assert app.extensions["crm"].pm.hook.crm_zones_changed(app=app, value=7) == [7]
    assert seen == [7]
    from crm_core.plugins import plugin_hookspecs

    assert plugin_hookspecs(app.extensions["crm"])["zones"] == ["crm_zones_changed"]


def test_a_plugin_cannot_offer_a_hook_outside_its_own_prefix(app_factory, register_plugin, monkeypatch):
    offering, = _offering_plugins(monkeypatch, ("zones", ["crm_stage_moved", "crm_zones_ok"]))
    register_plugin(offering)
    with pytest.raises(PluginError, match=r"offers hooks crm_stage_moved: a plugin's hooks must be "
                                          r"named crm_zones_\*"):
        app_factory()


def test_a_hookspecs_module_that_does_not_import_is_named(app_factory, register_plugin):
    module = plugin_module("zones")
    module.manifest = PluginManifest(name="zones", label="Zones", version="1.0",
                                     hookspecs="crm_zones_no_such_module")
    register_plugin(module)
    with pytest.raises(PluginError, match="hookspecs module 'crm_zones_no_such_module' failed to import"):
        app_factory()


def test_each_app_has_its_own_plugin_manager(app_factory):
    first = app_factory(CRM_PLUGINS=["notes"])
    second = app_factory(CRM_PLUGINS=[])
    assert first.extensions["crm"].pm is not second.extensions["crm"].pm
    assert first.extensions["crm"].pm.has_plugin("notes")
    assert not second.extensions["crm"].pm.has_plugin("notes")


def test_trace_hooks_logs_every_call(app_factory, caplog):
    with caplog.at_level(logging.INFO, logger="crm.hooks"):
        app_factory(CRM_PLUGINS=["notes"], CRM_TRACE_HOOKS=True)
    traced = "\n".join(r.getMessage() for r in caplog.records if r.name == "crm.hooks")
    assert "crm_register_models" in traced and "crm_app_created" in traced
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="crm.hooks"):
        app_factory(CRM_PLUGINS=["notes"])
    assert not [r for r in caplog.records if r.name == "crm.hooks"]


def test_plugin_installed_twice_under_one_name_is_refused(tmp_path, monkeypatch):
    write_plugin_distribution(tmp_path, "other-notes", {"notes": "crm_other_notes"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"plugin name 'notes' is provided twice: by "
                                          r"crm-fixture-plugins \(entry point crm_notes\) and by "
                                          r"other-notes \(entry point crm_other_notes\); uninstall one"):
        discover()


@pytest.mark.crm_plugins("notes")
def test_crm_plugins_command_lists_enabled_and_disabled(cli):
    output = cli("plugins").output
    lines = output.splitlines()
    notes = next(line for line in lines if line.startswith("notes"))
    assert "enabled  1.2.0  Notes  (crm-fixture-plugins 1.0)" in notes
    assert "tables: notes_note" in output
    assert "pages: notes_ui" in output and "API: notes_api" in output
    assert "commands: notes count" in output
    assert "tasks: notes.add, notes.nightly_cleanup" in output
    assert "broken  disabled  (crm-fixture-plugins 1.0; not imported)" in output

