"""Pages of assignment: the proposals a manager confirms, changes or rejects in bulk, running
the rules over chosen leads, and the progress of the reps below the manager."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from crm_core.accounts.views import people
from crm_core.assignment import services
from crm_core.assignment.api import proposal_items
from crm_core.errors import UserError, VersionConflict
from crm_core.permissions import engine

blueprint = Blueprint("assignment", __name__, url_prefix="/assignment")
OBJECTS = ("lead", "account")


def _object():
    name = request.args.get("object", "lead")
    if name not in OBJECTS:
        abort(404)
    if not engine().object_permissions(current_user.id, name).read:
        abort(403)
    return name


@blueprint.route("/proposals", methods=["GET", "POST"], endpoint="proposals")
def proposals():
    name = _object()
    error, status = None, 200
    if request.method == "POST":
        ids = [int(v) for v in request.form.getlist("ids") if v.isdigit()]
        owner = request.form.get("owner_id", "").strip()
        action = "reject" if request.form.get("action") == "reject" else "confirm"
        try:
            decided = services.decide(current_user.id, name, ids, action, int(owner) if owner.isdigit() else None)
            flash(ngettext("%(num)s proposal decided.", "%(num)s proposals decided.", len(decided)), "success")
            return redirect(url_for("assignment.proposals", object=name))
        except UserError as problem:
            error, status = str(problem.message), 422
        except (LookupError, VersionConflict):
            error, status = _("Someone else decided some of these in the meantime. Check them and try again."), 409
    query = services.proposals_query(current_user.id, name)
    items = proposal_items(name, list(query.limit(services.CHUNK)))
    names = dict(people())
    return render_template("crm_core/assignment/proposals.html", items=items, object=name, names=names,
                           people=people(), error=error, total=query.count()), status


@blueprint.get("/progress", endpoint="progress")
def progress():
    if not engine().object_permissions(current_user.id, "lead").read:
        abort(403)
    raw = request.args.get("days", "7")
    days = int(raw) if raw.isdigit() and 1 <= int(raw) <= 3650 else 7
    return render_template("crm_core/assignment/progress.html", rows=services.progress(current_user.id, days),
                           days=days)


RUN_LIMIT = 200


@blueprint.route("/run", methods=["GET", "POST"], endpoint="run")
def run():
    """Choose records (among those you may give away) and run the rules over them."""
    from crm_core.notifications.services import LABEL_FIELDS
    from crm_core.permissions import Level

    name = _object()
    model = engine().objects[name].model
    error, status = None, 200
    if request.method == "POST":
        ids = [int(v) for v in request.form.getlist("ids") if v.isdigit()]
        try:
            outcome = services.run_on_demand(name, ids, current_user.id)
        except UserError as problem:
            error, status = str(problem.message), 422
        except (LookupError, PermissionError):
            abort(404)
        else:
            counts = {kind: sum(1 for s, _ in outcome.values() if s == kind)
                      for kind in ("assigned", "proposed", "kept", "unmatched")}
            flash(_("Assigned: %(assigned)s, proposed: %(proposed)s, unchanged: %(kept)s, no rule matched: "
                    "%(unmatched)s.", **counts), "success")
            return redirect(url_for("assignment.run", object=name))
    records = list(engine().query(current_user.id, name, level=Level.TRANSFER)
                   .order_by(model.created_at.desc(), model.id.desc()).limit(RUN_LIMIT))
    from crm_core.api.access import dump_visible

    labels = {}
    for record in records:
        visible = dump_visible(name, {f: getattr(record, f, None) for f in LABEL_FIELDS.get(name, ("name",))})
        labels[record.id] = " · ".join(str(v) for k, v in visible.items() if v and k not in ("id", "version")) \
            or f"#{record.id}"
    return render_template("crm_core/assignment/run.html", object=name, records=records, labels=labels,
                           names=dict(people()), error=error, limit=RUN_LIMIT), status


def _manager_or_403():
    if not engine().has_permission(current_user.id, services.PERMISSION):
        abort(403)


@blueprint.route("/rules", methods=["GET", "POST"], endpoint="rules")
def rules():
    """The rules of an object and the round-robin groups: add, delete, settings."""
    from crm_core.assignment.conditions import OPERATORS
    from crm_core.assignment.models import RULE_SET_MODES, AssignmentGroup, AssignmentRule
    from crm_core.assignment.objects import assignable
    from crm_core.assignment.targets import targets_for

    _manager_or_403()
    name = _object()
    errors, status, form = {}, 200, {}
    if request.method == "POST":
        form = request.form.to_dict()
        action = form.get("action")
        try:
            if action == "settings":
                services.set_rule_set(name, actor_id=current_user.id, mode=form.get("mode"),
                                      run_on_create=form.get("run_on_create") == "on")
            elif action == "add_rule":
                conditions = []
                if form.get("field"):
                    conditions.append({"field": form["field"], "op": form.get("op", "equals"),
                                       "value": form.get("value") or None})
                target = form.get("target", "")
                services.create_rule(name, {
                    "name": form.get("name", ""), "conditions": conditions,
                    "owner_id": int(target[5:]) if target.startswith("user:") and target[5:].isdigit() else None,
                    "group_id": int(target[6:]) if target.startswith("group:") and target[6:].isdigit() else None,
                    "target": target[7:] or None if target.startswith("target:") else None},
                    actor_id=current_user.id)
            elif action == "delete_rule":
                rule = AssignmentRule.get_or_none(AssignmentRule.id == int(form.get("rule_id", "0") or 0))
                if rule is None:
                    abort(404)
                services.delete_rule(rule, actor_id=current_user.id)
            elif action == "add_group":
                members = [{"user_id": int(v)} for v in request.form.getlist("members") if v.isdigit()]
                capacity = form.get("capacity", "").strip()
                services.create_group(form.get("group_name", ""), members,
                                      int(capacity) if capacity.isdigit() else None, actor_id=current_user.id)
            elif action == "delete_group":
                group = AssignmentGroup.get_or_none(AssignmentGroup.id == int(form.get("group_id", "0") or 0))
                if group is None:
                    abort(404)
                services.delete_group(group, actor_id=current_user.id)
            else:
                abort(400)
            flash(_("Saved."), "success")
            return redirect(url_for("assignment.rules", object=name))
        except UserError as problem:
            errors, status = {k: str(v) for k, v in problem.fields.items()}, 422
        except VersionConflict:
            errors, status = {"_schema": _("Someone else changed this in the meantime. Check it and try again.")}, 409
    groups = list(AssignmentGroup.select().order_by(AssignmentGroup.name))
    return render_template(
        "crm_core/assignment/rules.html", object=name, rules=services.rules_of(name),
        conditions=services.rule_conditions, settings=services.rule_set(name), modes=RULE_SET_MODES,
        groups=groups, members=services.members_of, names=dict(people()), people=people(),
        targets=targets_for(name),
        fields=assignable(name).fields, operators=OPERATORS, errors=errors, form=form), status
