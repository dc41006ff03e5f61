"""create_app(config=None): the only place where the parts are wired together."""

from __future__ import annotations

import logging
import re
import secrets

import click
from flask import Flask, appcontext_pushed, g
from markupsafe import Markup

from crm_core import core_hooks
from crm_core.api.errors import register_error_handlers
from crm_core.api.frame import API_PREFIX, document_errors, init_api
from crm_core.config import load_settings
from crm_core.db import bind_database, open_database
from crm_core.errors import RegistryError
from crm_core.i18n import CatalogSource, init_i18n
from crm_core.imports.registry import collect as collect_import_objects
from crm_core.approvals.registry import collect as collect_approval_kinds
from crm_core.assignment.targets import collect as collect_assignment_targets
from crm_core.jobs import Jobs, TaskSpec, make_huey
from crm_core.migrator import MigrationSource
from crm_core.plugins import CORE, PluginHost, Registry, build_host
from crm_core.web.auth import init_auth
from crm_core.web.security import add_security_headers

log = logging.getLogger("crm")
hook_log = logging.getLogger("crm.hooks")

# The core's own hook implementations, registered before any plugin.
CORE_MODULES = [("hooks", core_hooks)]


def create_app(config=None):
    settings = load_settings(config)
    app = Flask("crm_core", instance_path=settings["CRM_INSTANCE_PATH"])
    app.config.update(settings)
    _configure_flask(app)

    db = open_database(settings["CRM_DATABASE_URL"], settings["CRM_DATABASE_POOL_SIZE"])
    app.extensions["crm_db"] = db
    bind_database(db)
    _manage_connections(app, db)

    trace = (lambda message: hook_log.info(message.rstrip())) if settings["CRM_TRACE_HOOKS"] else None
    host = build_host(settings, CORE_MODULES, trace_writer=trace)
    app.extensions["crm"] = host

    _collect_models(app, host)
    _collect_migrations(app, host)
    _collect_access_objects(app, host)
    _collect_custom_fields(app, host)
    _collect_pipelines(app, host)
    _collect_stage_requirements(app, host)
    collect_import_objects(app, host)
    collect_approval_kinds(app, host)
    collect_assignment_targets(app, host)
    _collect_report_dimensions(app, host)
    init_i18n(app, _catalog_sources(host))
    register_error_handlers(app)
    init_auth(app)
    every_blueprint = Registry("blueprint")
    _mount_api(app, host, every_blueprint)
    _mount_ui(app, host, every_blueprint)
    _collect_commands(app, host)
    _collect_jinja(app, host)
    _collect_tasks(app, host)
    app.after_request(add_security_headers)
    app.after_request(_send_request_id)
    host.call_in_order("crm_app_created", app=app)
    return app


def _configure_flask(app):
    secret = app.config["CRM_SECRET_KEY"]
    if not secret:
        # Only dev, demo and test get here (production refuses to start);
        # sessions then last as long as this process.
        log.warning("CRM_SECRET_KEY is not set: using a random key for this process")
        secret = secrets.token_urlsafe(48)
    app.config["SECRET_KEY"] = secret
    # Flask's defaults exist as keys already (SameSite None, no size limit): set ours
    # unless create_app(config) chose a value.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.json.sort_keys = False


def _manage_connections(app, db):
    """A pooled connection per request (or app context), taken at the first query and
    returned at teardown."""

    def bind(sender, **_):
        if sender is app:
            bind_database(db)

    appcontext_pushed.connect(bind, app, weak=False)

    @app.before_request
    def _connect():
        # Per-request caches live on `g`, which belongs to the app context; a request
        # inside an already pushed context (tests, jobs) must not see the last one's.
        for key in ("_login_user", "_flask_babel", "csrf_token", "_crm_access", "_crm_request_id",
                    "_crm_custom_fields"):
            g.pop(key, None)
        bind_database(db)  # the pool connects on the first query, not before

    @app.teardown_appcontext
    def _close(_exc):
        if not db.is_closed() and not db.in_transaction():
            db.close()


def _collect_models(app, host):
    models = Registry("table")
    for owner, result in host.call_per_owner("crm_register_models", app=app):
        for model in result or ():
            table = model._meta.table_name
            if owner != CORE and table_owner(table, host.names) != owner:
                raise RegistryError(
                    f"{owner}: table {table!r} of {model.__name__} must start with {owner + '_'!r}"
                    + (f" and not look like a table of {table_owner(table, host.names)!r}"
                       if table_owner(table, host.names) else ""))
            models.add(table, model, owner)
    host.registries["models"] = models


def _collect_access_objects(app, host):
    from crm_core.permissions import AccessEngine, AccessObject, Permission

    objects = Registry("access object")
    for owner, result in host.call_per_owner("crm_register_access_objects", app=app):
        for obj in result or ():
            if not isinstance(obj, AccessObject):
                raise RegistryError(f"{owner}: {obj!r} is not a crm_core.permissions.AccessObject")
            objects.add(obj.name, obj, owner)
    for name, obj in objects.items():
        for link in obj.children:
            if link.child not in objects:
                raise RegistryError(f"{objects.owner(name)}: access object {name!r} names a child "
                                    f"{link.child!r} that nobody registered")
    host.registries["access objects"] = objects
    permissions = Registry("permission")
    for owner, result in host.call_per_owner("crm_register_permissions", app=app):
        for permission in result or ():
            if not isinstance(permission, Permission):
                raise RegistryError(f"{owner}: {permission!r} is not a crm_core.permissions.Permission")
            if owner != CORE and not permission.name.startswith(owner + "."):
                raise RegistryError(f"{owner}: permission {permission.name!r} must start with "
                                    f"{owner + '.'!r}")
            permissions.add(permission.name, permission, owner)
    host.registries["permissions"] = permissions
    share_targets = host.collect("crm_register_share_targets", "share target type", "share targets",
                                 lambda target: target.type, _check_share_target, app=app)
    app.extensions["crm_access"] = AccessEngine(app, [obj for _, obj in objects.items()],
                                                [perm for _, perm in permissions.items()],
                                                [target for _, target in share_targets.items()])


def _check_share_target(target, owner):
    from crm_core.org.models import TARGET_TYPES
    from crm_core.permissions import ShareTarget

    if not isinstance(target, ShareTarget):
        raise RegistryError(f"{owner}: {target!r} is not a crm_core.permissions.ShareTarget")
    if target.type in TARGET_TYPES:
        raise RegistryError(f"{owner}: share target type {target.type!r} is the core's own")
    if not isinstance(target.type, str) or not re.fullmatch(r"[a-z][a-z0-9_.]{0,19}", target.type):
        # Stored in sharing_rule.target_type (20 characters).
        raise RegistryError(f"{owner}: share target type {target.type!r} must be lower-case letters, "
                            "digits, '_' or '.' (at most 20)")
    for name in ("members", "targets_of", "names"):
        if not callable(getattr(target, name)):
            raise RegistryError(f"{owner}: share target {target.type!r}: {name} must be a function")


def _collect_custom_fields(app, host):
    from crm_core.customfields.registry import collect

    collect(app, host)


def _collect_report_dimensions(app, host):
    from crm_core.analysis.dimensions import collect

    collect(app, host)


def _collect_pipelines(app, host):
    from crm_core.opportunities.pipelines import collect

    collect(app, host)


def _collect_stage_requirements(app, host):
    from crm_core.stagegates.registry import collect

    collect(app, host)


def table_owner(table, plugin_names):
    """The plugin a table name belongs to: the longest plugin name it starts with + '_'."""
    matches = [name for name in plugin_names if table.startswith(name + "_")]
    return max(matches, key=len) if matches else None


def _collect_migrations(app, host):
    sources = Registry("migrations")
    packages = Registry("migrations package")
    for owner, result in host.call_per_owner("crm_register_migrations", app=app):
        if result is None:
            continue
        source = result if isinstance(result, MigrationSource) else MigrationSource(owner, result)
        if source.label != owner:
            raise RegistryError(f"{owner}: migrations must be labelled {owner!r}, not {source.label!r}")
        sources.add(owner, source, owner)
        packages.add(source.package, source, owner)
    host.registries["migrations"] = sources


def _catalog_sources(host):
    sources = [CatalogSource.for_module(core_hooks)]
    for plugin in host.plugins:
        source = CatalogSource.for_module(plugin.module)
        if source is not None and source not in sources:
            sources.append(source)
    return sources


def _mount_api(app, host, every_blueprint):
    api = init_api(app)
    app.extensions["crm_api"] = api
    names = Registry("API blueprint")
    for owner, result in host.call_per_owner("crm_register_api_blueprints", app=app):
        for blueprint in result or ():
            every_blueprint.add(blueprint.name, blueprint, owner)  # one Flask namespace
            names.add(blueprint.name, blueprint, owner)
            if owner == CORE:
                prefix = API_PREFIX
            else:
                prefix = host.plugin(owner).manifest.api_prefix or f"{API_PREFIX}/plugins/{owner}"
            api.register_blueprint(blueprint, url_prefix=prefix + (blueprint.url_prefix or ""))
    host.registries["api_blueprints"] = names
    document_errors(api)


def _mount_ui(app, host, every_blueprint):
    names = Registry("blueprint")
    for owner, result in host.call_per_owner("crm_register_blueprints", app=app):
        for blueprint in result or ():
            every_blueprint.add(blueprint.name, blueprint, owner)
            names.add(blueprint.name, blueprint, owner)
            if owner == CORE:
                app.register_blueprint(blueprint)
            else:
                prefix = host.plugin(owner).manifest.ui_prefix or f"/plugins/{owner}"
                app.register_blueprint(blueprint, url_prefix=prefix + (blueprint.url_prefix or ""))
    host.registries["blueprints"] = names


def _collect_commands(app, host):
    commands = Registry("command")
    for owner, result in host.call_per_owner("crm_register_commands", app=app):
        for command in result or ():
            if not isinstance(command, click.Command):
                raise RegistryError(f"{owner}: {command!r} is not a click command")
            commands.add(f"{owner} {command.name}" if owner != CORE else command.name, command, owner)
    host.registries["commands"] = commands


def _collect_jinja(app, host):
    from crm_core.web import slots

    # The core's own names first, so the "would replace a built-in" check covers them.
    app.jinja_env.globals.update(slot=slots.render_slot, menu_items=slots.menu_items, menu=slots.menu)
    app.jinja_env.filters.setdefault("markup", Markup)
    for hook, kind, target in (("crm_register_template_filters", "template filter", app.jinja_env.filters),
                               ("crm_register_template_globals", "template global", app.jinja_env.globals)):
        registry = Registry(kind)
        for owner, result in host.call_per_owner(hook, app=app):
            for name, value in (result or {}).items():
                if name in target and name not in registry:
                    raise RegistryError(f"{owner}: {kind} {name!r} would replace a built-in one")
                registry.add(name, value, owner)
                target[name] = value
        host.registries[kind] = registry


def _collect_tasks(app, host):
    jobs = Jobs(app, make_huey(app.config))
    tasks = Registry("task")
    for owner, result in host.call_per_owner("crm_register_tasks", app=app):
        for spec in result or ():
            if not isinstance(spec, TaskSpec):
                raise RegistryError(f"{owner}: {spec!r} is not a crm_core.jobs.TaskSpec")
            spec.validate(owner)
            full_name = f"{owner}.{spec.name}"
            tasks.add(full_name, spec, owner)
            jobs.register(full_name, spec)
    host.registries["tasks"] = tasks
    app.extensions["crm_jobs"] = jobs


def _send_request_id(response):
    from crm_core.audit.services import request_id

    response.headers.setdefault("X-Request-ID", request_id())
    return response


def host_of(app) -> PluginHost:
    return app.extensions["crm"]
