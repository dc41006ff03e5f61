"""Pages of imports: upload a file (with a saved mapping, as a dry run, partially), follow a
run's progress (the page refreshes itself while the worker imports), read and download its
errors, and keep named mappings for other files' layouts."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.errors import UserError
from crm_core.imports import services
from crm_core.imports.models import ImportMapping, ImportRun
from crm_core.imports.registry import import_objects
from crm_core.permissions import engine

blueprint = Blueprint("imports", __name__, url_prefix="/imports")

SHOWN_ERRORS = 200
STATUS_LABELS = {"queued": _l("Waiting for the worker"), "running": _l("Importing"),
                 "done": _l("Done"), "refused": _l("Refused: nothing was imported"),
                 "failed": _l("The file could not be imported")}


def importable():
    """(name, label) of the objects the user may create, for the form."""
    objects = engine().objects
    return [(name, objects[name].label) for name in import_objects()
            if name in objects and engine().object_permissions(current_user.id, name).create]


def _run_or_404(run_id):
    run = services.visible_runs(current_user.id).where(ImportRun.id == run_id).first()
    if run is None:
        abort(404)
    return run


@blueprint.route("/", methods=["GET", "POST"], endpoint="list")
def import_list():
    choices = importable()
    if not choices:
        abort(403)
    form = {"object": request.form.get("object", choices[0][0]), "mapping_id": request.form.get("mapping_id", ""),
            "dry_run": bool(request.form.get("dry_run")), "partial": bool(request.form.get("partial"))}
    errors, status = {}, 200
    if request.method == "POST":
        upload = request.files.get("file")
        mapping = None
        if form["object"] not in dict(choices):
            errors["object"] = _("These records cannot be imported.")
        if upload is None or not upload.filename:
            errors["file"] = _("Choose a file.")
        if form["mapping_id"]:
            saved = ImportMapping.get_or_none((ImportMapping.id == form["mapping_id"])
                                              & (ImportMapping.object_name == form["object"]))
            if saved is None:
                errors["mapping_id"] = _("No such mapping.")
            else:
                mapping = services.mapping_of(saved)
        if not errors:
            try:
                run = services.start_import(form["object"], upload.read(), upload.filename, current_user.id,
                                            mapping=mapping, dry_run=form["dry_run"], partial=form["partial"])
                return redirect(url_for("imports.detail", run_id=run.id))
            except UserError as exc:
                errors.update({k: str(v) for k, v in exc.fields.items()})
        status = 422
    runs = list(services.visible_runs(current_user.id).order_by(ImportRun.id.desc()).limit(50))
    saved = [(m.id, f"{m.name} ({m.object_name})") for m in services.mappings()]
    return render_template("crm_core/imports/list.html", choices=choices, form=form, errors=errors,
                           runs=runs, mappings=saved, labels=STATUS_LABELS), status


@blueprint.route("/<int:run_id>", endpoint="detail")
def detail(run_id):
    run = _run_or_404(run_id)
    done, total = services.progress(run)
    problems = services.errors(run)
    return render_template("crm_core/imports/detail.html", run=run, done=done, total=total,
                           percent=min(100, done * 100 // total), errors=problems[:SHOWN_ERRORS],
                           more=max(0, len(problems) - SHOWN_ERRORS), labels=STATUS_LABELS,
                           working=run.status in ("queued", "running"))


@blueprint.route("/<int:run_id>/errors.csv", endpoint="errors")
def errors_csv(run_id):
    run = _run_or_404(run_id)
    return Response(services.errors_csv(run), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="import-{run.id}-errors.csv"'})


def _parse_lines(text):
    """``Column in the file = field`` per line (an empty field ignores the column)."""
    mapping = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if "=" not in line:
            raise UserError(_l("Write one “column = field” per line."), field="mapping")
        column, target = line.rsplit("=", 1)
        mapping[column.strip()] = target.strip() or None
    return mapping


@blueprint.route("/mappings", methods=["GET", "POST"], endpoint="mappings")
def mappings():
    choices = importable()
    if not choices:
        abort(403)
    form = {"object": request.form.get("object", choices[0][0]), "name": request.form.get("name", ""),
            "mapping": request.form.get("mapping", "")}
    errors, status = {}, 200
    if request.method == "POST":
        if form["object"] not in dict(choices):
            errors["object"] = _("These records cannot be imported.")
        else:
            try:
                services.save_mapping(form["object"], form["name"], _parse_lines(form["mapping"]),
                                      current_user.id)
                flash(_("The mapping is saved."), "success")
                return redirect(url_for("imports.mappings"))
            except UserError as exc:
                errors.update({k: str(v) for k, v in exc.fields.items()})
        status = 422
    saved = [(m, mapping_text(services.mapping_of(m))) for m in services.mappings()]
    return render_template("crm_core/imports/mappings.html", choices=choices, form=form, errors=errors,
                           saved=saved), status


@blueprint.route("/mappings/<int:mapping_id>/delete", methods=["POST"], endpoint="delete_mapping")
def delete_mapping(mapping_id):
    record = ImportMapping.get_or_none(ImportMapping.id == mapping_id)
    if record is None:
        abort(404)
    if record.created_by_id != current_user.id and not current_user.is_admin:
        abort(403)
    services.delete_mapping(record, current_user.id)
    flash(_("The mapping is deleted."), "success")
    return redirect(url_for("imports.mappings"))


def mapping_text(mapping):
    return "\n".join(f"{column} = {target or ''}" for column, target in mapping.items())
