"""Fixture plugin ``tags``: requires ``notes`` and has its own 0001_initial migration."""

from crm_core import PluginManifest, hookimpl

manifest = PluginManifest(name="tags", label="Tags", version="0.3.0", requires=("notes",))


@hookimpl
def crm_register_models(app):
    from crm_tags.models import Tag

    return [Tag]


@hookimpl
def crm_register_migrations(app):
    return "crm_tags.migrations"
