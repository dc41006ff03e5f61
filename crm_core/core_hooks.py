"""The core's own hook implementations: the core is built on the same hooks as plugins."""

from __future__ import annotations

from crm_core import hookimpl
from crm_core.migrator import MigrationSource


@hookimpl
def crm_register_models(app):
    from crm_core.users.models import User

    return [User]


@hookimpl
def crm_register_migrations(app):
    return MigrationSource("core", "crm_core.migrations")


@hookimpl
def crm_register_blueprints(app):
    from crm_core.web.views import blueprint

    return [blueprint]


@hookimpl
def crm_register_api_blueprints(app):
    from crm_core.api.meta import blueprint

    return [blueprint]
