"""Every hook of the core, in one place. The docstrings are the reference.

Conventions (see docs/hooks.md):
- names start with ``crm_``; arguments are keyword-only in spirit and have stable
  names (``app``, ``actor``, ``record``, ``slot``, ``context``, ``locale``);
- ``crm_register_*`` hooks run once while the application is created; what they
  return is collected into registries, and a name registered twice is an error;
- ``*_check`` hooks collect every result; ``*_context`` hooks merge dicts;
- past-tense hooks are notifications; their results are ignored;
- ``firstresult`` is used only where one provider must win, never for permissions.

Registration hooks are called once per plugin so the host knows who registered
what: a plugin's tables, routes, commands and tasks are attributed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click
    import flask
    import flask_smorest
    import peewee

    from crm_core.approvals import ApprovalKind
    from crm_core.assignment import AssignmentTarget
    from crm_core.analysis.dimensions import ReportDimension
    from crm_core.jobs import TaskSpec
    from crm_core.migrator import MigrationSource
    from crm_core.opportunities.pipelines import PipelineSpec
    from crm_core.permissions import AccessObject, Permission, QueryGrant, Reason, ShareTarget
    from crm_core.stagegates import RequirementKind
    from crm_core.web.slots import MenuItem

hookspec = pluggy.HookspecMarker("crm")


# -- data ---------------------------------------------------------------------

@hookspec
def crm_register_models(app: "flask.Flask") -> "list[type[peewee.Model]]":
    """Return the peewee model classes the plugin owns.

    Called once while the app is created. The models are bound to the app's
    database; a plugin's tables must start with ``<plugin name>_`` (BaseModel
    does this for packages named ``crm_<name>``). A table registered twice
    stops the start with a RegistryError naming both owners.
    """


@hookspec
def crm_register_migrations(app: "flask.Flask") -> "MigrationSource | str | None":
    """Return where the plugin's migrations live: a package name such as
    ``"crm_territory.migrations"`` or a ``MigrationSource``.

    Called once while the app is created. Migrations of a package run in file
    order (``NNNN_slug.py``), packages in dependency order (core first, then
    plugins as their ``requires`` sort them), each package with its own
    history table ``<name>_migrations``. At most one source per plugin.
    """


# -- HTTP ----------------------------------------------------------------------

@hookspec
def crm_register_blueprints(app: "flask.Flask") -> "list[flask.Blueprint]":
    """Return Flask blueprints for the web UI.

    Called once while the app is created. A plugin's blueprints are mounted
    under ``/plugins/<name>/`` (or the manifest's ``ui_prefix``) and their
    names must be unique; templates belong in ``templates/crm_<name>/``.
    """


@hookspec
def crm_register_api_blueprints(app: "flask.Flask") -> "list[flask_smorest.Blueprint]":
    """Return flask-smorest blueprints for the JSON API.

    Called once while the app is created. A plugin's API is mounted under
    ``/api/v1/plugins/<name>/`` (or the manifest's ``api_prefix``) and appears
    in the OpenAPI document at ``/api/v1/openapi.json``.
    """


# -- command line and jobs ------------------------------------------------------

@hookspec
def crm_register_commands(app: "flask.Flask") -> "list[click.Command]":
    """Return click commands.

    Called once while the app is created. A plugin's commands appear as
    ``crm <plugin> <command>``; core commands at the top level. They run
    inside an application context.
    """


@hookspec
def crm_register_tasks(app: "flask.Flask") -> "list[TaskSpec]":
    """Return background tasks and schedules as ``TaskSpec`` objects.

    Called once while the app is created. Task names are prefixed with the
    owner (``territory.realign``); a periodic task carries a huey ``crontab``.
    Tasks run in ``crm worker`` inside an application context with a database
    connection; enqueue them with ``app.extensions["crm_jobs"].enqueue(name, ...)``.
    """


@hookspec
def crm_register_import_objects(app: "flask.Flask") -> "list[Any]":
    """Return the kinds of record files can be imported into, as
    ``crm_core.imports.registry.ImportObject`` (the access object's name, its model, which
    must have an ``external_id`` column, its update service, choices, required fields,
    relation columns such as ``account`` and per-row checks).

    Called once while the app is created; a name registered twice is an error. Imports
    then accept the object in ``POST /api/v1/imports``, the import page and ``crm import``.
    """


# -- templates and pages ---------------------------------------------------------

@hookspec
def crm_register_template_filters(app: "flask.Flask") -> "dict[str, Any]":
    """Return Jinja filters as ``{name: function}``.

    Called once while the app is created; a filter name registered twice is an
    error. Filters are available in every template.
    """


@hookspec
def crm_register_template_globals(app: "flask.Flask") -> "dict[str, Any]":
    """Return Jinja globals as ``{name: value}``.

    Called once while the app is created; a name registered twice is an error.
    """


@hookspec
def crm_menu_items(app: "flask.Flask", actor: Any) -> "list[MenuItem]":
    """Return navigation entries for the signed-in ``actor`` (None when anonymous).

    Called while a page is rendered. All results are collected and sorted by
    ``(order, label)``; return only the entries this actor may use.
    """


@hookspec
def crm_page_slot(app: "flask.Flask", slot: str, actor: Any, context: "dict[str, Any]") -> Any:
    """Return markup for a named slot of a core page, or None.

    Called while a page is rendered, once per slot the page shows (for example
    ``head``, ``dashboard``, ``record_panels``, ``record_actions``). Every
    non-None result is shown, in plugin order. Return ``markupsafe.Markup``
    (render a template); plain strings are escaped.
    """


# -- life cycle -----------------------------------------------------------------

@hookspec
def crm_app_created(app: "flask.Flask") -> None:
    """Notification: the application is fully wired.

    Called once at the end of ``create_app``, after every registry is collected,
    in plugin order. Results are ignored; an exception stops the start.
    """


# -- records --------------------------------------------------------------------------

@hookspec
def crm_records_merged(app: "flask.Flask", object: str, survivor: Any, merged: Any,
                       actor_id: "int | None") -> None:
    """Notification: ``merged`` (a record of ``object``: "account", "contact", "lead")
    was merged into ``survivor``; re-parent what you attach to ``merged`` to ``survivor``.

    Called inside the merge's transaction, after the core re-parented its own records and
    before ``merged`` goes to the recycle bin, so a plugin's re-parenting commits or rolls
    back with the merge. Results are ignored; an exception rolls the whole merge back.
    """


@hookspec
def crm_record_ext(app: "flask.Flask", actor: Any, object: str,
                   records: "list[Any]") -> "dict[str, dict[int, Any]]":
    """Return parts to add to the API's JSON of ``records`` (of ``object``: "account",
    "contact", "lead", "opportunity"...) as ``{part: {record_id: value}}``; the record's
    JSON shows them under ``ext``: ``"ext": {"approval": {...}, "territory": {...}}``.

    Called while the API dumps records, once per page of a list (batch your queries) and
    once for a single record, with the signed-in ``actor`` (None outside a request);
    ``records`` are the ones ``actor`` may read. Leave out the records a part has nothing
    for; a value must be JSON (text, numbers, lists, dicts) and show only what ``actor``
    may see. The parts of every plugin are collected; a part name given by two
    implementations is an error (name a plugin's part after the plugin).
    """



@hookspec
def crm_records_written(app: "flask.Flask", actor_id: "int | None", object: str,
                        ids: "list[int]", fields: "set[str] | None") -> None:
    """Notification inside the write: records of ``object`` ("account", "contact",
    "lead", "opportunity"...) with ``ids`` were created (``fields`` is None) or changed
    (``fields``: the names of the fields whose stored values changed, API names such as
    ``country`` or ``custom.<key>``).

    Called inside the write's transaction, after the rows are written: once per record
    written through the services (a form, an API call, a lead's conversion, a merge's
    survivor, each record of an opportunity bulk edit and each row an import updates:
    each is its own write), once per batch for the rows an import inserts, for the
    records a merge re-points and for a mass transfer (``fields`` ``{"owner_id"}``). A
    write that changes nothing calls nothing. Read the rows again if you need their
    values. Results are ignored; an exception rolls the whole write back (the import,
    the transfer, the form's save) and reaches the caller.
    """


# -- assignment ---------------------------------------------------------------------------

@hookspec
def crm_register_assignment_targets(app: "flask.Flask") -> "list[AssignmentTarget]":
    """Return kinds of assignee an assignment rule can name instead of a user or a
    round-robin group (``crm_core.assignment.AssignmentTarget(key, label, objects,
    compile)``); the territory plugin's ``territory`` gives a record to a rep of the
    territory its values place it in.

    ``compile(object_name, block)`` is called once per rule set run (a form save, an
    import, a run on demand) and returns a picker: ``pick(values) -> user id | None``
    (``values``: the record's fields under API names), with an optional ``finish()``
    called when the run ends. A picker that gives None lets the next rule decide.
    Called once while the app is created; a key registered twice stops the start.
    """


# -- sharing rule targets ---------------------------------------------------------------

@hookspec
def crm_register_share_targets(app: "flask.Flask") -> "list[ShareTarget]":
    """Return kinds of group a sharing rule can share with beside user, team, department
    and department tree (``crm_core.permissions.ShareTarget(type, label, members,
    targets_of, names)``): ``members(target_id) -> set of user ids``,
    ``targets_of(user_id) -> set of target ids`` (the same relation seen from the user),
    ``names(actor_id) -> [(target_id, label)]`` for the rule form.

    Called once while the app is created; a type registered twice stops the start. The
    functions are called per request (never cached across requests), so a change of
    membership changes the very next decision.
    """


# -- demo data ------------------------------------------------------------------------------

@hookspec
def crm_demo_data(app: "flask.Flask", seed: int) -> None:
    """Notification: ``crm demo`` loaded the core's demo data; add the plugin's own.

    Called in an application context after the core's demo records exist (look them up
    by name or e-mail), in plugin order. It must be idempotent: a second ``crm demo``
    adds nothing twice. Results are ignored; an exception stops the command.
    """

# -- approvals ----------------------------------------------------------------------------

@hookspec
def crm_register_approval_kinds(app: "flask.Flask") -> "list[ApprovalKind]":
    """Return the kinds of approval the plugin adds (``crm_core.approvals.ApprovalKind(
    name, object, label, apply, current, ...)``): what a request of the kind proposes for
    a record of ``object``, how the last approval applies it (``apply(record, proposed,
    actor_id)``, inside the approval's transaction; raise ``UserError`` to refuse) and the
    kind's policy settings. Requests are made with
    ``crm_core.approvals.services.request_approval``; their approvers are the managers
    above the record's owner in the organisation tree.

    Called once while the app is created; a name registered twice is an error and a
    plugin's names must start with ``<plugin>.``. The core registers
    ``opportunity_change``.
    """


# -- stages: pipelines, stage gates, transitions -------------------------------------------

@hookspec
def crm_register_pipelines(app: "flask.Flask") -> "list[PipelineSpec]":
    """Return the sales processes the plugin contributes
    (``crm_core.opportunities.PipelineSpec(key, name, stages=[StageSpec(key, name,
    probability, kind)])``). ``kind`` is ``open``, ``won`` or ``lost``; a pipeline needs at
    least one open stage and one won stage.

    Called once while the app is created; a pipeline key registered twice is an error and a
    plugin's keys must start with ``<plugin>.``. The pipelines are written to the database
    when first needed (after migrations); an administrator may rename them and their stages,
    change probabilities and add stages, but cannot delete them while the plugin is on.
    """


@hookspec
def crm_stage_transition_check(app: "flask.Flask", actor_id: "int | None", opportunity: Any,
                               from_stage: Any, to_stage: Any,
                               values: "dict[str, Any]") -> "list[tuple[str, Any]]":
    """Return the unmet requirements of moving ``opportunity`` from ``from_stage`` (None
    for a new opportunity) into ``to_stage`` as ``(field, message)`` pairs: ``field`` is
    the API name of the opportunity field at fault (``amount``, ``custom.budget``) or
    ``stage_id`` for a requirement that is no field; ``message`` is a translatable string
    (``lazy_gettext``), shown in the user's language.

    ``values`` holds the opportunity's values as they would be after the change (API
    names), so a check can accept a field filled in the same request. Called before
    anything is written, for every stage change: form, board, API, import, bulk edit,
    conversion. Results of every plugin are collected (the core's own stage gates are an
    implementation of this hook); any requirement stops the move and nothing is written.
    """


@hookspec
def crm_register_stage_requirements(app: "flask.Flask") -> "list[RequirementKind]":
    """Return the kinds of requirement the plugin lets the company put on stages
    (``crm_core.stagegates.RequirementKind(key, label, check, params_schema, inputs,
    describe, field)``): "a completed activity of type X", "a quote in state Y".

    ``check(opportunity, values, params)`` returns a translatable message when a configured
    gate is not met, else None (``opportunity`` is None for a new one; ``values`` as in
    ``crm_stage_transition_check``); ``params_schema`` (a marshmallow schema class)
    validates what an administrator configures. Called once while the app is created; a
    key registered twice is an error and a plugin's keys must start with ``<plugin>.``.
    The core registers ``field`` and ``team_role`` through this hook.
    """


@hookspec
def crm_stage_transition(app: "flask.Flask", actor_id: "int | None", opportunity: Any,
                         from_stage: Any, to_stage: Any) -> None:
    """Called inside the transaction of a stage move, after the opportunity and its stage
    history are written and before the commit: work that must commit or roll back with
    the move (a plugin's own row, a derived record).

    Implement it as a wrapper (``@hookimpl(wrapper=True)``, ``yield``) to run code before
    and after the other implementations in the same transaction. Results are ignored; an
    exception rolls the whole move back and reaches the caller.
    """


@hookspec
def crm_stage_changed(app: "flask.Flask", actor_id: "int | None", opportunity: Any,
                      from_stage: Any, to_stage: Any) -> None:
    """Notification: ``opportunity`` moved from ``from_stage`` (None when it was created)
    into ``to_stage``; called after the commit, so the move is final. Results are
    ignored; an exception is logged and does not undo the move.
    """


# -- reports: pipeline analysis ---------------------------------------------------------------

@hookspec
def crm_register_report_dimensions(app: "flask.Flask") -> "list[ReportDimension]":
    """Return dimensions the pipeline analysis can group opportunities by
    (``crm_core.analysis.ReportDimension(key, label, expression, join, names, fields,
    order)``): ``expression`` is a peewee expression on the opportunity query (or a function
    of the database's vendor returning one), ``join`` a function adding the joins the
    expression needs (LEFT OUTER, so no opportunity drops out), ``names`` a function
    ``(values, user_id) -> {value: label}`` naming the groups, ``fields`` the
    ``(object, field)`` pairs the grouping reveals (a reader from whom one is hidden gets
    a 400).

    Called once while the app is created; a key registered twice stops the start. The
    dimension then answers ``GET /api/v1/reports/pipeline?by=<key>`` and appears in the
    chooser of the pipeline analysis page, always over the opportunities the reader may
    see (the access engine's query).
    """


# -- access (see ACCESS_MODEL.md) ---------------------------------------------------------
# Every access hook is collected from every plugin (never firstresult): grants are OR-ed,
# restrictions AND-ed, field rules only narrow. A hook that raises denies and is logged.

@hookspec
def crm_register_access_objects(app: "flask.Flask") -> "list[AccessObject]":
    """Return the kinds of record the plugin puts under the access rules
    (``crm_core.permissions.AccessObject``: name, model, owner column, child links for
    the implicit parent read, default object permissions of the built-in roles).

    Called once while the app is created; an object name registered twice is an error.
    """


@hookspec
def crm_register_permissions(app: "flask.Flask") -> "list[Permission]":
    """Return named permissions that are not about one kind of record
    (``crm_core.permissions.Permission(name, label, roles)``), such as
    ``territory.realign``; ``roles`` names the built-in roles that have it until an
    administrator decides otherwise.

    Called once while the app is created; a name registered twice is an error, and a
    plugin's names must start with ``<plugin>.``. Check one with
    ``engine().has_permission(user, name)``.
    """


@hookspec
def crm_access_grants(app: "flask.Flask", actor: Any, object: str) -> "list[QueryGrant]":
    """Return grants in query form: ``QueryGrant(level, expression, reason)`` where
    ``expression`` (a peewee expression on the object's model) selects the records
    ``actor`` gets at ``level``.

    Called when a list, count, sum or export of ``object`` is built for ``actor``
    (a ``crm_core.permissions.Subject``). Grants of every plugin are OR-ed with the
    core's. It must select exactly the records for which ``crm_access_record_grants``
    gives the same level.
    """


@hookspec
def crm_access_record_grants(app: "flask.Flask", actor: Any, object: str, record: Any) -> "list[Reason]":
    """Return grants on one record: ``Reason(level, code, detail)`` objects.

    Called when one record's level is decided or explained. The highest level wins.
    Must agree with ``crm_access_grants``.
    """


@hookspec
def crm_access_restrictions(app: "flask.Flask", actor: Any, object: str) -> "list[Any]":
    """Return peewee expressions every visible record must satisfy (AND-ed; nothing
    overrides them, not even View All or an administrator).

    Called when a list of ``object`` is built for ``actor``. Must agree with
    ``crm_access_record_restrictions``.
    """


@hookspec
def crm_access_record_restrictions(app: "flask.Flask", actor: Any, object: str, record: Any) -> "list[str]":
    """Return reasons why ``actor`` may not see ``record`` at all (empty: no objection).

    Called when one record's level is decided; any reason makes the level NONE.
    """


@hookspec
def crm_access_field_rules(app: "flask.Flask", actor: Any, object: str) -> "dict[str, int]":
    """Return ``{field: level}`` (0 hidden, 1 read, 2 edit) for ``actor`` on ``object``.

    Called when records of ``object`` are shown or written. Rules only narrow: the
    lowest level of all plugins and the roles' field security applies.
    """


# -- custom fields ------------------------------------------------------------------------------

@hookspec
def crm_register_custom_fields(app: "flask.Flask") -> "list[CustomFieldSpec]":
    """Return custom fields the plugin adds to records
    (``crm_core.customfields.CustomFieldSpec(object, key, type, labels, choices, required,
    position, currency)``); ``object`` is an access object whose model has a ``custom``
    column (accounts, contacts, leads and any object that opts in).

    Called once while the app is created. The fields of every plugin are collected; the
    same key twice on one object, a bad key or type, or a choice field without choices
    stops the start. They validate, show and filter like administrators' fields, who
    cannot change or retire them.
    """
