"""Segment pages: the list, and the builder: a server-rendered form of condition rows in
groups (the page has no JavaScript: adding a row or a group, removing one, previewing and
saving are submit buttons), with the reader's own matching records under it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from crm_core.errors import UserError, VersionConflict
from crm_core.org.models import Department, Team
from crm_core.permissions import engine
from crm_core.segments import services
from crm_core.segments.conditions import OPERATOR_LABELS, ConditionError, visible_fields
from crm_core.segments.models import Segment

blueprint = Blueprint("segments", __name__, url_prefix="/segments")
VISIBILITY_LABELS = {"private": _l("Only me"), "team": _l("A team"), "department": _l("A department"),
                     "everyone": _l("Everyone")}
DETAIL = {"account": "accounts.detail", "contact": "contacts.detail", "lead": "leads.detail"}
NO_VALUE = ("empty", "not_empty")
LISTS = ("in", "between")


@blueprint.before_request
@login_required
def _signed_in():
    return None


def _objects():
    """The objects the reader may list, with their labels."""
    access = engine()
    return [(name, str(access.objects[name].label or name)) for name in services.segment_objects()
            if access.object_permissions(current_user.id, name).read]


def _label_of(record):
    for name in ("name", "company"):
        if getattr(record, name, None) and not hasattr(record, "last_name"):
            return getattr(record, name)
    parts = [getattr(record, "first_name", None), getattr(record, "last_name", None)]
    return " ".join(p for p in parts if p) or getattr(record, "name", None) or f"#{record.id}"


# -- the form <-> the tree -------------------------------------------------------------------------

def _leaf_row(leaf):
    value = leaf.get("value")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = "yes" if value else "no"
    return {"field": leaf.get("field", ""), "op": leaf.get("op", ""), "value": "" if value is None else str(value)}


def groups_of(tree):
    """(match, [(group match, [rows])]) of a tree two levels deep; None when deeper."""
    if "field" in tree:
        tree = {"all": [tree]}
    match = "any" if "any" in tree else "all"
    groups = []
    for child in tree.get(match, []):
        if "field" in child:
            groups.append(("all", [_leaf_row(child)]))
        else:
            inner = "any" if "any" in child else "all"
            if any("field" not in leaf for leaf in child.get(inner, [])):
                return None
            groups.append((inner, [_leaf_row(leaf) for leaf in child.get(inner, [])]))
    return match, groups


def _form_groups(form):
    match = "any" if form.get("match") == "any" else "all"
    groups, g = [], 0
    while f"g{g}-match" in form and g < 20:
        rows, r = [], 0
        while f"g{g}-r{r}-field" in form and r < 30:
            rows.append({key: form.get(f"g{g}-r{r}-{key}", "") for key in ("field", "op", "value")})
            r += 1
        groups.append(("any" if form.get(f"g{g}-match") == "any" else "all", rows))
        g += 1
    return match, groups


def tree_of(match, groups):
    children = []
    for group_match, rows in groups:
        leaves = []
        for row in rows:
            if not row["field"]:
                continue
            leaf = {"field": row["field"], "op": row["op"]}
            if row["op"] in LISTS:
                leaf["value"] = [part.strip() for part in row["value"].split(",") if part.strip()]
            elif row["op"] not in NO_VALUE:
                leaf["value"] = row["value"]
            leaves.append(leaf)
        if leaves:
            children.append({group_match: leaves})
    return {match: children}


# -- pages ------------------------------------------------------------------------------------------

@blueprint.get("", endpoint="list")
def list_segments():
    segments = list(services.visible_segments(current_user.id).order_by(Segment.name, Segment.id))
    labels = dict(_objects())
    return render_template("crm_core/segments/list.html", segments=segments, labels=labels,
                           visibility=VISIBILITY_LABELS, objects=_objects())


def _builder(object_name, segment=None, form=None, groups=None, match="all", errors=None, run=False,
             status=200, conflict=False):
    if object_name not in dict(_objects()):
        abort(404)
    fields = visible_fields(object_name, current_user.id)
    results = None
    errors = dict(errors or {})
    tree = tree_of(match, groups or [])
    if run and not errors:
        try:
            page = max(1, min(int(request.args.get("page", "1") or 1), 10_000))
        except ValueError:
            page = 1
        try:
            results = services.run(object_name, current_user.id, tree, page=page, per_page=50)
        except ConditionError as problem:
            errors.update({k: str(v) for k, v in problem.fields.items()})
            status = 400 if problem.code == "hidden_field" else 422
    subject = engine().subject(current_user.id)
    return render_template(
        "crm_core/segments/builder.html", segment=segment, object_name=object_name, fields=fields,
        form=form or {}, groups=groups or [("all", [{"field": "", "op": "", "value": ""}])], match=match,
        errors=errors, results=results, operators=OPERATOR_LABELS, visibility=VISIBILITY_LABELS,
        teams=list(Team.alive().where(Team.id.in_(list(subject.teams) or [0])).order_by(Team.name)),
        departments=list(Department.alive().order_by(Department.name)), detail=DETAIL.get(object_name),
        label_of=_label_of, conflict=conflict, objects=_objects(),
        can_change=segment is None or services.may_change(current_user.id, segment)), status


@blueprint.get("/new", endpoint="new")
def new_segment():
    object_name = request.args.get("object") or (_objects()[0][0] if _objects() else "")
    return _builder(object_name, form={"object": object_name, "visibility": "private"})


@blueprint.get("/<int:segment_id>", endpoint="detail")
def segment_page(segment_id):
    segment = services.get_visible(current_user.id, segment_id) or abort(404)
    shaped = groups_of(services.tree_of(segment))
    form = {"name": segment.name, "visibility": segment.visibility, "team_id": str(segment.team_id or ""),
            "department_id": str(segment.department_id or ""), "description": segment.description or ""}
    if shaped is None:
        # Built through the API deeper than the page draws: shown, run, changed there.
        return _builder(segment.object, segment, form, [], "all", {"_form": _(
            "This segment has more levels than this page can show; change it through the API.")})
    match, groups = shaped
    return _builder(segment.object, segment, form, groups, match, run=True)


def _act(segment=None):
    form = request.form.to_dict()
    object_name = segment.object if segment else form.get("object", "")
    match, groups = _form_groups(form)
    action = request.form.get("action", "preview")
    if action == "add_group":
        groups.append(("all", [{"field": "", "op": "", "value": ""}]))
    elif action.startswith("add_row:"):
        index = int(action.split(":")[1]) if action.split(":")[1].isdigit() else -1
        if 0 <= index < len(groups):
            groups[index][1].append({"field": "", "op": "", "value": ""})
    elif action.startswith("remove:"):
        g, _sep, r = action.split(":")[1].partition("-")
        if g.isdigit() and r.isdigit() and int(g) < len(groups) and int(r) < len(groups[int(g)][1]):
            del groups[int(g)][1][int(r)]
            groups = [group for group in groups if group[1]] or [("all", [{"field": "", "op": "", "value": ""}])]
    elif action == "save":
        return _save(segment, object_name, form, match, groups)
    return _builder(object_name, segment, form, groups, match, run=action == "preview")


def _save(segment, object_name, form, match, groups):
    values = {"name": form.get("name", ""), "visibility": form.get("visibility", "private"),
              "description": form.get("description", "").strip() or None,
              "conditions": tree_of(match, groups)}
    for key in ("team_id", "department_id"):
        raw = form.get(key, "").strip()
        values[key] = int(raw) if raw.isdigit() else None
    try:
        if segment is None:
            segment = services.create_segment({**values, "object": object_name}, current_user.id)
        else:
            if not services.may_change(current_user.id, segment):
                abort(403)
            services.update_segment(segment, values, current_user.id,
                                    expected_version=int(form.get("version", "0") or 0))
    except ConditionError as problem:
        if problem.code != "hidden_field":
            raise
        return _builder(object_name, segment, form, groups, match,
                        {k: str(v) for k, v in problem.fields.items()}, status=400)
    except UserError as problem:
        return _builder(object_name, segment, form, groups, match,
                        {k: str(v) for k, v in problem.fields.items()}, status=422)
    except VersionConflict:
        return _builder(object_name, Segment.get_by_id(segment.id), form, groups, match, conflict=True, status=409)
    flash(_("The segment “%(name)s” has been saved.", name=segment.name), "success")
    return redirect(url_for("segments.detail", segment_id=segment.id))


@blueprint.post("/new", endpoint="build")
def build_new():
    return _act()


@blueprint.post("/<int:segment_id>", endpoint="update")
def build_existing(segment_id):
    return _act(services.get_visible(current_user.id, segment_id) or abort(404))


@blueprint.post("/<int:segment_id>/delete", endpoint="delete")
def delete_segment(segment_id):
    segment = services.get_visible(current_user.id, segment_id) or abort(404)
    if not services.may_change(current_user.id, segment):
        abort(403)
    services.delete_segment(segment, current_user.id)
    flash(_("The segment “%(name)s” has been deleted.", name=segment.name), "success")
    return redirect(url_for("segments.list"))

