"""Settings pages of the company's pipelines, their stages and the lost reasons (for
holders of ``opportunities.configure``). Every change goes through the services, on the
version the page was drawn from."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.errors import UserError, VersionConflict
from crm_core.opportunities import services
from crm_core.opportunities.models import LostReason, Pipeline, Stage
from crm_core.permissions import engine

blueprint = Blueprint("pipelines", __name__, url_prefix="/settings/pipelines")

KIND_LABELS = {"open": _l("Open"), "won": _l("Won"), "lost": _l("Lost")}
STALE = _l("Someone else changed this in the meantime. Check it and try again.")


@blueprint.before_request
def _configurers_only():
    if not engine().has_permission(current_user.id, "opportunities.configure"):
        abort(403)


def _int(name, default=None):
    raw = request.form.get(name, "").strip()
    return int(raw) if raw.lstrip("-").isdigit() and len(raw) < 10 else default


def _version():
    return _int("version", 0)


def _pipeline(pipeline_id):
    pipeline = Pipeline.alive().where(Pipeline.id == pipeline_id).first()
    if pipeline is None:
        abort(404)
    return pipeline


def _problems(problem):
    return {field: str(message) for field, message in problem.fields.items()}


@blueprint.route("", methods=["GET", "POST"], endpoint="list")
def pipeline_list():
    errors, form, status = {}, {}, 200
    if request.method == "POST":
        form = {"name": request.form.get("name", "")}
        try:
            pipeline = services.create_pipeline({"name": form["name"], "stages": [
                {"name": _("Qualified"), "probability": 10, "kind": "open"},
                {"name": _("Won"), "probability": 100, "kind": "won"},
                {"name": _("Lost"), "probability": 0, "kind": "lost"}]}, actor_id=current_user.id)
        except UserError as problem:
            errors, status = _problems(problem), 422
        else:
            flash(_("“%(name)s” has been created.", name=pipeline.name), "success")
            return redirect(url_for("pipelines.detail", pipeline_id=pipeline.id))
    return render_template("crm_core/opportunities/pipelines.html", pipelines=services.pipelines(True),
                           errors=errors, form=form), status


@blueprint.get("/<int:pipeline_id>", endpoint="detail")
def detail(pipeline_id, errors=None, status=200, notice=None):
    pipeline = _pipeline(pipeline_id)
    return render_template("crm_core/opportunities/pipeline.html", pipeline=pipeline,
                           stages=services.stages(pipeline, include_inactive=True), kinds=KIND_LABELS,
                           errors=errors or {}, notice=notice), status


@blueprint.post("/<int:pipeline_id>", endpoint="update")
def update(pipeline_id):
    pipeline = _pipeline(pipeline_id)
    changes = {"name": request.form.get("name", ""), "description": request.form.get("description", ""),
               "active": request.form.get("active") == "1"}
    if request.form.get("is_default") == "1":
        changes["is_default"] = True
    try:
        services.update_pipeline(pipeline, changes, actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        return detail(pipeline_id, _problems(problem), 422)
    except VersionConflict:
        return detail(pipeline_id, status=409, notice=STALE)
    flash(_("“%(name)s” has been saved.", name=pipeline.name), "success")
    return redirect(url_for("pipelines.detail", pipeline_id=pipeline.id))


@blueprint.post("/<int:pipeline_id>/stages", endpoint="add_stage")
def add_stage(pipeline_id):
    pipeline = _pipeline(pipeline_id)
    try:
        services.create_stage(pipeline, {"name": request.form.get("name", ""),
                                         "probability": _int("probability", 0),
                                         "kind": request.form.get("kind") or "open"}, actor_id=current_user.id)
    except UserError as problem:
        return detail(pipeline_id, {f"new.{k}": v for k, v in _problems(problem).items()}, 422)
    flash(_("The stage has been added."), "success")
    return redirect(url_for("pipelines.detail", pipeline_id=pipeline.id))


def _stage(pipeline, stage_id):
    stage = Stage.alive().where((Stage.id == stage_id) & (Stage.pipeline == pipeline.id)).first()
    if stage is None:
        abort(404)
    return stage


@blueprint.post("/<int:pipeline_id>/stages/<int:stage_id>", endpoint="update_stage")
def update_stage(pipeline_id, stage_id):
    pipeline = _pipeline(pipeline_id)
    stage = _stage(pipeline, stage_id)
    changes = {"name": request.form.get("name", ""), "probability": _int("probability", stage.probability),
               "kind": request.form.get("kind") or stage.kind, "active": request.form.get("active") == "1"}
    try:
        services.update_stage(stage, changes, actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        return detail(pipeline_id, {f"{stage.id}.{k}": v for k, v in _problems(problem).items()}, 422)
    except VersionConflict:
        return detail(pipeline_id, status=409, notice=STALE)
    flash(_("The stage has been saved."), "success")
    return redirect(url_for("pipelines.detail", pipeline_id=pipeline.id))


@blueprint.post("/<int:pipeline_id>/stages/<int:stage_id>/move", endpoint="move_stage")
def move_stage(pipeline_id, stage_id):
    """One step up or down in the pipeline's order (keyboard and script free)."""
    pipeline = _pipeline(pipeline_id)
    ids = [s.id for s in services.stages(pipeline, include_inactive=True)]
    if stage_id not in ids:
        abort(404)
    index = ids.index(stage_id)
    other = index - 1 if request.form.get("direction") == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
        services.reorder_stages(pipeline, ids, actor_id=current_user.id)
    return redirect(url_for("pipelines.detail", pipeline_id=pipeline.id) + f"#stage-{stage_id}")


@blueprint.route("/lost-reasons", methods=["GET", "POST"], endpoint="lost_reasons")
def lost_reasons():
    errors, status = {}, 200
    if request.method == "POST":
        try:
            services.create_lost_reason({"name": request.form.get("name", ""),
                                         "position": _int("position", 0)}, actor_id=current_user.id)
        except UserError as problem:
            errors, status = {f"new.{k}": v for k, v in _problems(problem).items()}, 422 if problem.code not in \
                UserError.CONFLICTS else 409
        else:
            flash(_("The reason has been added."), "success")
            return redirect(url_for("pipelines.lost_reasons"))
    return render_template("crm_core/opportunities/lost_reasons.html",
                           reasons=services.lost_reasons(include_inactive=True), errors=errors), status


@blueprint.post("/lost-reasons/<int:reason_id>", endpoint="update_lost_reason")
def update_lost_reason(reason_id):
    reason = LostReason.alive().where(LostReason.id == reason_id).first()
    if reason is None:
        abort(404)
    errors, status = {}, 200
    try:
        services.update_lost_reason(reason, {"name": request.form.get("name", ""),
                                             "position": _int("position", reason.position),
                                             "active": request.form.get("active") == "1"},
                                    actor_id=current_user.id, expected_version=_version())
    except UserError as problem:
        errors = {f"{reason.id}.{k}": v for k, v in _problems(problem).items()}
        status = 409 if problem.code in UserError.CONFLICTS else 422
    except VersionConflict:
        errors, status = {f"{reason.id}.name": str(STALE)}, 409
    if errors:
        return render_template("crm_core/opportunities/lost_reasons.html",
                               reasons=services.lost_reasons(include_inactive=True), errors=errors), status
    flash(_("The reason has been saved."), "success")
    return redirect(url_for("pipelines.lost_reasons"))


