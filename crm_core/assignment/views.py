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
