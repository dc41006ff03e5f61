"""The territory pages (under /plugins/territory/): the tree of a model and the models,
one territory (its path, criteria, members, accounts and pipeline), the forms of models
and territories with the criteria editor, the switch-over, the realignment panel, and the
panel on a record's page that says where it is placed (and places an account or lead by
hand).

Any signed-in user reads the tree and the models; the records in a territory are shown
only as far as the access engine lets the reader see them. Changes need
``territory.manage`` (members: also the manager of the territory or of one above it) and
realignment ``territory.realign``; every change goes through ``services`` on the version
the page was drawn from."""

from __future__ import annotations

import json
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from peewee import fn

from crm_core.errors import UserError, VersionConflict
from crm_core.permissions import engine
from crm_core.users.models import User
from crm_territory import placement, realign, reporting, services
from crm_territory.models import PLACED_OBJECTS, TerritoryMember, TerritoryRealignment, TerritoryRecord

blueprint = Blueprint("territory_ui", __name__, template_folder="templates")

PER_PAGE = 50
MAX_PAGE = 100000
STATES = {"planning": _l("Planning"), "active": _l("Active"), "archived": _l("Archived")}
LEVELS = {"read": _l("Members read its records"), "edit": _l("Members change its records")}
STALE = _l("Someone else changed this in the meantime. Check it and try again.")
# The criteria the editor offers besides custom fields, in the order of the form.
TEXT_CRITERIA = (("country", _l("Countries")), ("region", _l("Regions")), ("industry", _l("Industries")))
RANGE_TYPES = ("number", "money")
LIST_TYPES = ("text", "choice", "multi_choice", "boolean")
RANGE_SEPARATOR = re.compile(r"\s*(?:\.\.|–|—)\s*")


# -- who may do what -------------------------------------------------------------------------------

def _may(permission):
    return engine().has_permission(current_user.id, permission)


def may_manage():
    return _may(services.MANAGE)


def may_realign():
    return _may(services.REALIGN)


def _require(permission):
    if not _may(permission):
        abort(403)


def _model_or_404(model_id):
    model = services.get_model(model_id)
    if model is None:
        abort(404)
    return model


def _territory_or_404(territory_id):
    territory = services.get_territory(territory_id)
    if territory is None:
        abort(404)
    return territory


def _int(raw, default=None):
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else default


def _version():
    return _int(request.form.get("version"), 0)


def _problems(problem):
    return {name: str(message) for name, message in problem.fields.items()}


def _message(problem):
    """A refusal as one notice (its messages side by side)."""
    return " ".join(_problems(problem).values())


def _user_names(ids):
    ids = sorted({i for i in ids if i is not None})
    if not ids:
        return {}
    return dict(User.select(User.id, User.name).where(User.id.in_(ids)).tuples())


def _people():
    return [(u.id, u.name) for u in User.alive().where(User.active == True).order_by(User.name)]  # noqa: E712


# -- criteria shown to people ----------------------------------------------------------------------

def _custom_specs():
    """{key: spec} of the custom fields of accounts and leads a territory can be decided by."""
    from crm_core.customfields.registry import definitions

    found = {}
    for object_name in ("account", "lead"):
        for spec in definitions(object_name):
            if spec.type in RANGE_TYPES + LIST_TYPES:
                found.setdefault(spec.key, spec)
    return found


def _range_text(bounds):
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None:
        return _("from %(low)s to %(high)s", low=low, high=high)
    if low is not None:
        return _("at least %(low)s", low=low)
    return _("at most %(high)s", high=high)


def country_names():
    """{code: name} of the countries in the reader's language."""
    from crm_core.web.record_pages import countries

    return dict(countries())


def readable_criteria(criteria, names=None):
    """[(label, text)] of a territory's criteria in the reader's language; empty when the
    territory takes every record that reaches it. ``names``: ``country_names()``, for a page
    that shows many territories (read once, not per territory)."""
    specs = None
    out = []
    for key, value in criteria.items():
        if key == "country":
            names = country_names() if names is None else names
            out.append((_("Countries"), ", ".join(f"{names.get(code, code)} ({code})" for code in value)))
        elif key == "region":
            out.append((_("Regions"), ", ".join(value)))
        elif key == "industry":
            out.append((_("Industries"), ", ".join(value)))
        elif key == "postal_code":
            out.append((_("Postal codes"), ", ".join(low if low == high else f"{low}–{high}"
                                                   for low, high in value)))
        elif key == "employees":
            out.append((_("Employees"), _range_text(value)))
        elif key.startswith("custom."):
            if specs is None:
                specs = _custom_specs()
            spec = specs.get(key.removeprefix("custom."))
            label = spec.label() if spec is not None else key
            if isinstance(value, dict):
                out.append((label, _range_text(value)))
            else:
                shown = [spec.choice_label(v) if spec is not None and spec.choices else v for v in value]
                out.append((label, ", ".join(shown)))
    return out


# -- the criteria editor -----------------------------------------------------------------------------

def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def criteria_from_form(form):
    """The criteria a territory form describes, as the services take them (they check them)."""
    raw = {}
    countries = [code for code in re.split(r"[\s,;]+", form.get("country", "")) if code]
    if countries:
        raw["country"] = countries
    for key in ("region", "industry"):
        values = _lines(form.get(key))
        if values:
            raw[key] = values
    ranges = []
    for line in _lines(form.get("postal_code")):
        parts = RANGE_SEPARATOR.split(line, maxsplit=1)
        ranges.append(parts if len(parts) == 2 else line)
    if ranges:
        raw["postal_code"] = ranges
    specs = _custom_specs()
    for key in ["employees"] + [f"custom.{k}" for k, spec in specs.items() if spec.type in RANGE_TYPES]:
        bounds = {end: form.get(f"{key}.{end}", "").strip() for end in ("min", "max")}
        bounds = {end: value for end, value in bounds.items() if value}
        if bounds:
            raw[key] = bounds
    for key, spec in specs.items():
        if spec.type in LIST_TYPES:
            values = _lines(form.get(f"custom.{key}"))
            if values:
                raw[f"custom.{key}"] = values
    return raw


def criteria_form_values(criteria):
    """The editor's inputs filled from stored criteria."""
    values = {}
    for key, value in criteria.items():
        if key == "country":
            values[key] = ", ".join(value)
        elif key in ("region", "industry") or (key.startswith("custom.") and isinstance(value, list)):
            values[key] = "\n".join(value)
        elif key == "postal_code":
            values[key] = "\n".join(low if low == high else f"{low}..{high}" for low, high in value)
        elif isinstance(value, dict):
            for end in ("min", "max"):
                if value.get(end) is not None:
                    values[f"{key}.{end}"] = str(value[end])
    return values


def _custom_editor():
    """[(name, label, kind)] of the custom-field inputs of the editor (kind: range or list)."""
    return [(f"custom.{key}", spec.label(), "range" if spec.type in RANGE_TYPES else "list")
            for key, spec in sorted(_custom_specs().items(), key=lambda item: (item[1].position, item[0]))]


# -- the territories page -------------------------------------------------------------------------------

def _tree_rows(model_tree):
    """The tree flattened in (position, id) order: [(territory, depth)]."""
    rows = []

    def walk(ids, depth):
        for territory_id in ids:
            rows.append((model_tree.by_id[territory_id], depth))
            walk(model_tree.children.get(territory_id, ()), depth + 1)

    walk(model_tree.roots, 0)
    return rows


@blueprint.get("/", endpoint="index")
def index():
    models = list(services.list_models())
    chosen = None
    wanted = _int(request.args.get("model_id"))
    if wanted is not None:
        chosen = services.get_model(wanted)
        if chosen is None:
            abort(404)
    else:
        chosen = services.active_model() or (models[0] if models else None)
    rows, member_counts, managers = [], {}, {}
    if chosen is not None:
        model_tree = services.tree(chosen.id)
        rows = _tree_rows(model_tree)
        member_counts = dict(TerritoryMember.select(TerritoryMember.territory_id, fn.COUNT(TerritoryMember.id))
                             .where(TerritoryMember.territory_id.in_(list(model_tree.by_id) or [0]))
                             .group_by(TerritoryMember.territory_id).tuples())
        managers = _user_names(t.manager_id for t, _d in rows)
    mine = services.territories_of_user(current_user.id)
    names = country_names() if rows else {}
    return render_template("crm_territory/index.html", models=models, chosen=chosen, rows=rows,
                           member_counts=member_counts, managers=managers, states=STATES, levels=LEVELS,
                           readable=lambda t: readable_criteria(services.criteria_of(t), names),
                           mine=set(mine["member"]) | set(mine["manager"]),
                           can_manage=may_manage(), can_realign=may_realign())


# -- one territory ---------------------------------------------------------------------------------------

def _accounts_page(territory, page):
    """One page of the accounts placed in the territory's subtree that the reader may see,
    with the territory each one is placed in."""
    from crm_core.accounts.models import Account

    query = (engine().query(current_user.id, "account", Account.id, Account.name, Account.country,
                            Account.region, Account.owner_id)
             .where(Account.id.in_(reporting.placed_accounts(territory))))
    total = query.count()
    accounts = list(query.order_by(Account.name, Account.id).paginate(page, PER_PAGE))
    placed = dict(TerritoryRecord.select(TerritoryRecord.record_id, TerritoryRecord.territory_id)
                  .where((TerritoryRecord.model_id == territory.model_id) & (TerritoryRecord.object == "account")
                         & TerritoryRecord.record_id.in_([a.id for a in accounts] or [0])).tuples())
    return accounts, placed, total


def territory_page(territory, errors=None, status=200, notice=None, form=None):
    model = services.get_model(territory.model_id)
    model_tree = services.tree(territory.model_id)
    page = min(max(_int(request.args.get("page"), 1), 1), MAX_PAGE)
    accounts, placed, total = _accounts_page(territory, page)
    members = services.members_of(territory)
    names = _user_names([m.user_id for m in members] + [territory.manager_id]
                        + [a.owner_id for a in accounts])
    reads_accounts = engine().object_permissions(current_user.id, "account").read
    reads_deals = engine().object_permissions(current_user.id, "opportunity").read
    may_edit_members = model.state != "archived" and services.may_manage_members(current_user.id, territory)
    member_ids = {m.user_id for m in members}
    return render_template(
        "crm_territory/territory.html", territory=territory, model=model, states=STATES, levels=LEVELS,
        path=[model_tree.by_id[t] for t in model_tree.path_ids(territory.id)],
        children=[model_tree.by_id[t] for t in model_tree.children.get(territory.id, ())],
        criteria=readable_criteria(services.criteria_of(territory)), members=members, names=names,
        reads_accounts=reads_accounts, accounts=accounts if reads_accounts else [], placed=placed,
        by_id=model_tree.by_id, total=total if reads_accounts else 0, page=page,
        pages=max(1, -(-total // PER_PAGE)), pipeline=reporting.pipeline_of(territory, current_user.id)
        if reads_deals else None, in_active=model.state == "active",
        may_edit_members=may_edit_members, can_manage=may_manage() and model.state != "archived",
        candidates=[(uid, name) for uid, name in _people() if uid not in member_ids] if may_edit_members else [],
        errors=errors or {}, notice=notice, form=form or {}), status


@blueprint.get("/territories/<int:territory_id>", endpoint="territory")
def territory_view(territory_id):
    return territory_page(_territory_or_404(territory_id))


@blueprint.post("/territories/<int:territory_id>/members", endpoint="add_member")
def add_member(territory_id):
    territory = _territory_or_404(territory_id)
    if not services.may_manage_members(current_user.id, territory):
        abort(403)
    user_id = _int(request.form.get("user_id"))
    try:
        services.add_member(territory, user_id, actor_id=current_user.id)
    except UserError as problem:
        return territory_page(territory, errors=_problems(problem),
                              status=409 if problem.code in UserError.CONFLICTS else 422)
    flash(_("The members have been changed."), "success")
    return redirect(url_for("territory_ui.territory", territory_id=territory.id) + "#members-heading")


@blueprint.post("/territories/<int:territory_id>/members/<int:user_id>/delete", endpoint="remove_member")
def remove_member(territory_id, user_id):
    territory = _territory_or_404(territory_id)
    if not services.may_manage_members(current_user.id, territory):
        abort(403)
    try:
        removed = services.remove_member(territory, user_id, actor_id=current_user.id)
    except UserError as problem:
        return territory_page(territory, errors=_problems(problem), status=422)
    if not removed:
        abort(404)
    flash(_("The members have been changed."), "success")
    return redirect(url_for("territory_ui.territory", territory_id=territory.id) + "#members-heading")


# -- models -----------------------------------------------------------------------------------------------

def _model_form(model=None, form=None, errors=None, status=200, notice=None):
    return render_template("crm_territory/model_form.html", model=model, form=form or {}, errors=errors or {},
                           notice=notice), status


@blueprint.route("/models/new", methods=["GET", "POST"], endpoint="new_model")
def new_model():
    _require(services.MANAGE)
    if request.method == "GET":
        return _model_form()
    form = {"name": request.form.get("name", ""), "description": request.form.get("description", "")}
    try:
        model = services.create_model(form["name"], form["description"], actor_id=current_user.id)
    except UserError as problem:
        return _model_form(form=form, errors=_problems(problem), status=422)
    flash(_("“%(name)s” has been created.", name=model.name), "success")
    return redirect(url_for("territory_ui.index", model_id=model.id))


@blueprint.route("/models/<int:model_id>/edit", methods=["GET", "POST"], endpoint="edit_model")
def edit_model(model_id):
    _require(services.MANAGE)
    model = _model_or_404(model_id)
    if request.method == "GET":
        return _model_form(model, {"name": model.name, "description": model.description})
    form = {"name": request.form.get("name", ""), "description": request.form.get("description", "")}
    try:
        services.update_model(model, form, actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        return _model_form(model, form, _problems(problem), 422)
    except VersionConflict:
        fresh = _model_or_404(model_id)
        return _model_form(fresh, {"name": fresh.name, "description": fresh.description}, status=409,
                           notice=STALE)
    flash(_("“%(name)s” has been saved.", name=model.name), "success")
    return redirect(url_for("territory_ui.index", model_id=model.id))


@blueprint.route("/models/<int:model_id>/activate", methods=["GET", "POST"], endpoint="activate_model")
def activate_model(model_id):
    """A confirmation page, then the switch-over: the model active until now is archived."""
    _require(services.MANAGE)
    model = _model_or_404(model_id)
    current = services.active_model()
    notice, status = None, 200
    if request.method == "POST":
        try:
            services.activate_model(model, actor_id=current_user.id, expected_version=_version())
        except UserError as problem:
            notice, status = _message(problem), 409 if problem.code == "stale" else 422
        except VersionConflict:
            notice, status, model = STALE, 409, _model_or_404(model_id)
        else:
            flash(_("“%(name)s” is now the active territory model.", name=model.name), "success")
            return redirect(url_for("territory_ui.index", model_id=model.id))
    return render_template("crm_territory/activate.html", model=model, current=current, states=STATES,
                           notice=notice), status


@blueprint.post("/models/<int:model_id>/delete", endpoint="delete_model")
def delete_model(model_id):
    _require(services.MANAGE)
    model = _model_or_404(model_id)
    try:
        services.delete_model(model, actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        flash(_message(problem), "error")
        return redirect(url_for("territory_ui.index", model_id=model.id))
    except VersionConflict:
        flash(str(STALE), "error")
        return redirect(url_for("territory_ui.index", model_id=model.id))
    flash(_("“%(name)s” has been deleted.", name=model.name), "success")
    return redirect(url_for("territory_ui.index"))


# -- territory forms ----------------------------------------------------------------------------------------

def _territory_form(model, territory=None, form=None, errors=None, status=200, notice=None):
    model_tree = services.tree(model.id)
    below = set(model_tree.subtree(territory.id)) if territory is not None else set()
    parents = [(t.id, " › ".join(model_tree.path(t.id))) for t, _d in _tree_rows(model_tree) if t.id not in below]
    editor = _custom_editor()
    return render_template("crm_territory/territory_form.html", model=model, territory=territory,
                           form=form or {}, errors=errors or {}, notice=notice, parents=parents,
                           people=_people(), levels=LEVELS, text_criteria=TEXT_CRITERIA,
                           range_inputs=[("employees", _("Employees"))] + [
                               (name, label) for name, label, kind in editor if kind == "range"],
                           list_inputs=[(name, label) for name, label, kind in editor if kind == "list"]), status


def _territory_values(form):
    return {"name": form.get("name", ""), "description": form.get("description", ""),
            "parent_id": _int(form.get("parent_id")), "manager_id": _int(form.get("manager_id")),
            "access_level": form.get("access_level", ""), "position": _int(form.get("position"), -1)
            if (form.get("position") or "").strip() else 0,
            "criteria": criteria_from_form(form)}


def _writable_model(model):
    if model.state == "archived":
        abort(404)  # an archived model is frozen: no form to draw


@blueprint.route("/models/<int:model_id>/territories/new", methods=["GET", "POST"], endpoint="new_territory")
def new_territory(model_id):
    _require(services.MANAGE)
    model = _model_or_404(model_id)
    _writable_model(model)
    if request.method == "GET":
        return _territory_form(model, form={"parent_id": request.args.get("parent_id", ""), "access_level": "edit"})
    values = _territory_values(request.form)
    try:
        territory = services.create_territory(model.id, actor_id=current_user.id, **values)
    except UserError as problem:
        return _territory_form(model, form=request.form, errors=_problems(problem), status=422)
    flash(_("“%(name)s” has been created.", name=territory.name), "success")
    return redirect(url_for("territory_ui.territory", territory_id=territory.id))


@blueprint.route("/territories/<int:territory_id>/edit", methods=["GET", "POST"], endpoint="edit_territory")
def edit_territory(territory_id):
    _require(services.MANAGE)
    territory = _territory_or_404(territory_id)
    model = _model_or_404(territory.model_id)
    _writable_model(model)
    if request.method == "GET":
        stored = {"name": territory.name, "description": territory.description,
                  "parent_id": territory.parent_id or "", "manager_id": territory.manager_id or "",
                  "access_level": territory.access_level, "position": territory.position,
                  **criteria_form_values(services.criteria_of(territory))}
        return _territory_form(model, territory, stored)
    try:
        services.update_territory(territory, _territory_values(request.form), actor_id=current_user.id,
                                  expected_version=_version())
    except UserError as problem:
        return _territory_form(model, territory, request.form, _problems(problem), 422)
    except VersionConflict:
        return _territory_form(model, _territory_or_404(territory_id), request.form, status=409, notice=STALE)
    flash(_("“%(name)s” has been saved.", name=territory.name), "success")
    return redirect(url_for("territory_ui.territory", territory_id=territory.id))


@blueprint.post("/territories/<int:territory_id>/delete", endpoint="delete_territory")
def delete_territory(territory_id):
    _require(services.MANAGE)
    territory = _territory_or_404(territory_id)
    try:
        services.delete_territory(territory, actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        return territory_page(territory, notice=_message(problem),
                              status=409 if problem.code in UserError.CONFLICTS else 422)
    except VersionConflict:
        return territory_page(_territory_or_404(territory_id), notice=str(STALE), status=409)
    flash(_("“%(name)s” has been deleted.", name=territory.name), "success")
    return redirect(url_for("territory_ui.index", model_id=territory.model_id))


# -- realignment -------------------------------------------------------------------------------------------

RUN_STATES = {"queued": _l("Waiting for the worker"), "running": _l("Running"), "previewed": _l("Preview"),
              "applied": _l("Applied"), "failed": _l("Failed")}
OBJECTS = {"account": _l("Accounts"), "lead": _l("Leads")}


def _progress(run):
    """How far the run is, in percent."""
    if run.total:
        return min(100, round(100 * run.examined / run.total))
    return 100 if run.state in ("applied", "previewed") else 0


def _run_view(run):
    """What the pages show of a run: its counts, progress and the moves per territory pair."""
    stored = json.loads(run.summary or "{}")
    pairs = stored.get("pairs", [])
    names = realign.territory_names([t for _o, f, to, _n in pairs for t in (f, to)])
    return {"run": run, "progress": _progress(run), "totals": stored.get("totals") or {},
            "moves": [(OBJECTS.get(o, o), names.get(f), names.get(to), n) for o, f, to, n in pairs],
            "error": _run_error(run.error)}


def _run_error(code):
    from crm_territory.realign_api import ERRORS

    return str(ERRORS.get(code, code)) if code else None


def realign_page(model, preview=None, sample=None, notice=None, status=200):
    from crm_territory.realign_api import _label

    runs = list(realign.runs_of(model.id).order_by(TerritoryRealignment.id.desc()).limit(20))
    names = realign.territory_names([t for _o, _r, f, to in (sample or ()) for t in (f, to)])
    people = _user_names(r.created_by_id for r in runs)
    return render_template("crm_territory/realign.html", model=model, states=STATES, run_states=RUN_STATES,
                           # the list shows a run's progress only: no moves, no territory names to read
                           runs=[{"run": r, "progress": _progress(r)} for r in runs],
                           preview=_run_view(preview) if preview else None,
                           sample=[(OBJECTS.get(o, o), _label(o, record), names.get(f), names.get(to))
                                   for o, record, f, to in (sample or ())],
                           under_way=realign.running(model.id), people=people, notice=notice,
                           frozen=model.state == "archived"), status


@blueprint.get("/models/<int:model_id>/realign", endpoint="realign")
def realign_view(model_id):
    _require(services.REALIGN)
    return realign_page(_model_or_404(model_id))


@blueprint.post("/models/<int:model_id>/realign/preview", endpoint="realign_preview")
def realign_preview(model_id):
    """What a realignment would move now (recorded as a "previewed" run)."""
    _require(services.REALIGN)
    model = _model_or_404(model_id)
    try:
        run, sample = realign.preview(model, current_user.id)
    except UserError as problem:
        return realign_page(model, notice=_message(problem), status=409)
    return realign_page(model, run, sample)


@blueprint.post("/models/<int:model_id>/realign", endpoint="realign_start")
def realign_start(model_id):
    _require(services.REALIGN)
    model = _model_or_404(model_id)
    try:
        run = realign.start(model, current_user.id)
    except UserError as problem:
        return realign_page(model, notice=_message(problem), status=409)
    flash(_("The realignment has started."), "success")
    return redirect(url_for("territory_ui.realignment", realignment_id=run.id))


@blueprint.get("/realignments/<int:realignment_id>", endpoint="realignment")
def realignment(realignment_id):
    _require(services.REALIGN)
    run = realign.get_run(realignment_id)
    model = services.get_model(run.model_id) if run is not None else None
    if model is None:
        abort(404)
    return render_template("crm_territory/realignment.html", model=model, view=_run_view(run),
                           run_states=RUN_STATES, people=_user_names([run.created_by_id]))


# -- the menu and the record panel ---------------------------------------------------------------------------

def menu_items(actor):
    from crm_core.web.slots import MenuItem

    if actor is None:
        return []
    # Every signed-in user may read the tree and find their own territory there.
    return [MenuItem("territory_ui.index", _l("Territories"), order=170, group="tools")]


PANEL_OBJECTS = ("account", "lead", "contact", "opportunity")


def placement_of(object_name, record, model_tree):
    """(territory, source) where ``record`` is placed in the tree's model (contacts and
    opportunities by their account), or None."""
    placed_object, record_id = object_name, record.id
    if object_name in ("contact", "opportunity"):
        placed_object, record_id = "account", getattr(record, "account_id", None)
        if record_id is None:
            return None
    row = TerritoryRecord.get_or_none((TerritoryRecord.model_id == model_tree.model_id)
                                      & (TerritoryRecord.object == placed_object)
                                      & (TerritoryRecord.record_id == record_id))
    if row is None:
        return None
    territory = model_tree.by_id.get(row.territory_id)
    return (territory, row.source) if territory is not None else None


def placeable_territories(user_id, model_tree):
    """[(id, path text)] of the territories of the tree where ``user_id`` may place records
    by hand: all with ``territory.manage``, else those they manage and those below them."""
    everywhere = engine().has_permission(user_id, services.MANAGE)
    out = []
    for territory, _depth in _tree_rows(model_tree):
        path_ids = model_tree.path_ids(territory.id)
        if everywhere or any(model_tree.by_id[t].manager_id == user_id for t in path_ids):
            out.append((territory.id, " › ".join(model_tree.by_id[t].name for t in path_ids)))
    return out


def page_slot(slot, actor, context):
    """On a record's page (the page is drawn only for a reader of the record): where the
    active model places it, and for who may, placing it by hand or giving it back to the
    rules (accounts and leads: contacts and opportunities follow their account)."""
    if slot != "record_panels" or actor is None or context.get("object") not in PANEL_OBJECTS:
        return None
    record = context.get("record")
    model = services.active_model()
    if record is None or model is None:
        return None
    model_tree = services.tree(model.id)
    placed = placement_of(context["object"], record, model_tree)
    path = [model_tree.by_id[t] for t in model_tree.path_ids(placed[0].id)] if placed is not None else []
    placed_itself = context["object"] in PLACED_OBJECTS
    choices = placeable_territories(actor.id, model_tree) if placed_itself else []
    to_rules = (placed is not None and placed[1] == "manual" and placed_itself
                and services.may_manage_members(actor.id, placed[0]))
    return Markup(render_template("crm_territory/record_panel.html", placement=placed, path=path,
                                  model=model, follows=not placed_itself, object_name=context["object"],
                                  record=record, choices=choices, to_rules=to_rules))


def _placed_record_or_404(object_name, record_id):
    """A record of ``object_name`` (account or lead) the reader may read, else 404."""
    if object_name not in PLACED_OBJECTS:
        abort(404)
    record_model = placement.object_model(object_name)
    record = engine().query(current_user.id, object_name).where(record_model.id == record_id).first()
    if record is None:
        abort(404)
    return record


def _back_to_record(object_name, record_id):
    return redirect(url_for(f"{object_name}s.detail", record_id=record_id) + "#territory-heading")


@blueprint.post("/records/<object_name>/<int:record_id>/place", endpoint="place_by_hand")
def place_by_hand(object_name, record_id):
    """Place a record by hand in a territory of the active model (the rules and realignment
    then leave it there)."""
    _placed_record_or_404(object_name, record_id)
    territory = services.get_territory(_int(request.form.get("territory_id")) or 0)
    model = services.active_model()
    if territory is None or model is None or territory.model_id != model.id:
        abort(404)
    if not placement.may_place_by_hand(current_user.id, territory):
        abort(403)
    try:
        placement.place_by_hand(object_name, record_id, territory, actor_id=current_user.id)
    except UserError as problem:
        flash(_message(problem), "error")
        return _back_to_record(object_name, record_id)
    flash(_("It is now placed by hand in “%(name)s”.", name=territory.name), "success")
    return _back_to_record(object_name, record_id)


@blueprint.post("/records/<object_name>/<int:record_id>/rules", endpoint="back_to_rules")
def back_to_rules(object_name, record_id):
    """Give a record placed by hand in the active model back to the rules."""
    _placed_record_or_404(object_name, record_id)
    model = services.active_model()
    row = placement.placement_of(model.id, object_name, record_id) if model is not None else None
    if row is None or row.source != "manual":
        abort(404)
    territory = services.get_territory(row.territory_id)
    if not (may_manage() or (territory is not None and placement.may_place_by_hand(current_user.id, territory))):
        abort(403)
    try:
        placement.back_to_rules(object_name, record_id, model.id, actor_id=current_user.id)
    except UserError as problem:
        flash(_message(problem), "error")
        return _back_to_record(object_name, record_id)
    flash(_("It is placed by the rules again."), "success")
    return _back_to_record(object_name, record_id)
