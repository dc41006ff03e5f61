"""Pages of stage gates: per pipeline, each stage with what moving into it requires; add
and remove requirements (holders of ``opportunities.configure``). Works without JavaScript:
choosing a kind leads to a small form with that kind's inputs."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm_core.errors import UserError, VersionConflict
from crm_core.opportunities import services as opportunities
from crm_core.opportunities.models import Pipeline, Stage
from crm_core.stagegates import services
from crm_core.stagegates.models import StageGate
from crm_core.stagegates.registry import kinds

blueprint = Blueprint("stage_gates", __name__, url_prefix="/stage-gates")


@blueprint.before_request
def _configurers_only():
    if not services.may_configure(getattr(current_user, "id", None)):
        abort(403)


def _pipeline(pipeline_id):
    if pipeline_id is None:
        return opportunities.default_pipeline()
    pipeline = Pipeline.alive().where(Pipeline.id == pipeline_id).first()
    if pipeline is None:
        abort(404)
    return pipeline


@blueprint.route("/", endpoint="overview")
def overview():
    pipeline = _pipeline(request.args.get("pipeline_id", type=int))
    stages = opportunities.stages(pipeline, include_inactive=True) if pipeline else []
    by_stage = {}
    for gate in services.gates(pipeline_id=pipeline.id) if pipeline else []:
        by_stage.setdefault(gate.stage_id, []).append(gate)
    return render_template("crm_core/stagegates/overview.html", pipelines=opportunities.pipelines(True),
                           pipeline=pipeline, stages=stages, by_stage=by_stage, describe=services.describe,
                           kinds=kinds().items())


def _stage(stage_id):
    stage = Stage.alive().where(Stage.id == stage_id).first() if stage_id else None
    if stage is None:
        abort(404)
    return stage


def _params_from(kind, form):
    """What the kind's inputs say: empty text is left out (the schema's defaults apply)."""
    params = {}
    for item in kind.inputs:
        if item.type == "boolean":
            params[item.name] = form.get(f"param_{item.name}") == "on"
        elif form.get(f"param_{item.name}", "").strip():
            params[item.name] = form[f"param_{item.name}"].strip()
    return params


@blueprint.route("/new", methods=["GET", "POST"], endpoint="new")
def new():
    """The inputs of one kind for one stage; a POST adds the requirement."""
    source = request.form if request.method == "POST" else request.args
    stage = _stage(source.get("stage_id", type=int))
    kind_key = source.get("kind", "")
    if kind_key not in kinds():
        abort(404)
    kind = kinds()[kind_key]
    errors, status, form = {}, 200, {}
    if request.method == "POST":
        form = request.form.to_dict()
        try:
            services.create_gate({"stage_id": stage.id, "kind": kind_key, "params": _params_from(kind, form),
                                  "also_backwards": form.get("also_backwards") == "on"}, actor_id=current_user.id)
        except UserError as problem:
            errors, status = {k.removeprefix("params."): str(v) for k, v in problem.fields.items()}, 422
        else:
            flash(_("Requirement added."), "success")
            return redirect(url_for("stage_gates.overview", pipeline_id=stage.pipeline_id))
    return render_template("crm_core/stagegates/new.html", stage=stage, kind=kind, errors=errors,
                           form=form), status


@blueprint.route("/<int:gate_id>/delete", methods=["POST"], endpoint="delete")
def delete(gate_id):
    gate = StageGate.get_or_none(StageGate.id == gate_id)
    if gate is None:
        abort(404)
    pipeline_id = gate.stage.pipeline_id
    try:
        services.delete_gate(gate, actor_id=current_user.id,
                             expected_version=request.form.get("version", type=int))
    except VersionConflict:
        flash(_("Someone else changed this in the meantime. Check it and try again."), "error")
    else:
        flash(_("Requirement removed."), "success")
    return redirect(url_for("stage_gates.overview", pipeline_id=pipeline_id))


def record_panel(opportunity):
    """The opportunity page's panel: what moving to each stage would require, met or not
    (shown on the page of a record the reader may see; the requirements are settings)."""
    from markupsafe import Markup

    rows = services.preview(opportunity)
    if not rows:
        return None
    return Markup(render_template("crm_core/stagegates/_panel.html", rows=rows))
