"""The administrators' page of custom fields: the list per object, a form to add one, a
form to change one (labels per language, choices, required, order, type, currency) and
retiring or bringing it back. The rules are the services'; this reads and renders."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.customfields import services
from crm_core.customfields.registry import definitions, objects
from crm_core.errors import UserError, VersionConflict
from crm_core.web.auth import require_admin

blueprint = Blueprint("custom_fields", __name__, url_prefix="/admin/custom-fields")

TYPE_LABELS = {"text": _l("Text"), "number": _l("Number"), "money": _l("Amount of money"), "date": _l("Date"),
               "choice": _l("One choice"), "multi_choice": _l("Several choices"), "boolean": _l("Yes or no")}


@blueprint.before_request
def _administrators_only():
    require_admin()


def _object_label(name):
    from crm_core.permissions import engine

    return str(engine().objects[name].label or name)


def _choices_text(spec):
    lines = []
    for value, labels in spec.choices:
        label = labels.get("en")
        lines.append(f"{value} = {label}" if label and label != value else value)
    return "\n".join(lines)


def _form_of(spec):
    form = {"object": spec.object, "key": spec.key, "type": spec.type, "choices": _choices_text(spec),
            "currency": spec.currency or "", "required": "1" if spec.required else "",
            "position": str(spec.position)}
    form.update({f"label_{lang}": spec.labels.get(lang, "") for lang in services.LANGUAGES})
    return form


def _values(form, new):
    """The form as the service takes it; the choices' English labels from "value = label"."""
    values = {"type": form.get("type", ""),
              "labels": {lang: form.get(f"label_{lang}", "").strip() for lang in services.LANGUAGES
                         if form.get(f"label_{lang}", "").strip()},
              "required": form.get("required") == "1"}
    if new:
        values["object"], values["key"] = form.get("object", ""), form.get("key", "").strip()
    if values["type"] in ("choice", "multi_choice"):
        choices = []
        for line in form.get("choices", "").splitlines():
            value, _sep, label = line.partition("=")
            if value.strip():
                choices.append({"value": value.strip(), "labels": {"en": label.strip()} if label.strip() else {}})
        values["choices"] = choices
    if values["type"] == "money":
        values["currency"] = form.get("currency", "").strip().upper() or None
    position = form.get("position", "").strip()
    if position:
        values["position"] = int(position) if position.isdigit() else -1
    return values


def _page(form=None, errors=None, field=None, conflict=False, status=200):
    by_object = [(name, _object_label(name), definitions(name, include_retired=True)) for name in objects()]
    return render_template("crm_core/customfields/fields.html", by_object=by_object, form=form or {},
                           errors=errors or {}, field=field, conflict=conflict, types=TYPE_LABELS,
                           languages=services.LANGUAGES, objects=[(n, label) for n, label, _ in by_object]), status


@blueprint.get("", endpoint="list")
def list_fields():
    return _page(form={"object": objects()[0] if objects() else "", "type": "text"})


@blueprint.post("", endpoint="create")
def create_field():
    form = request.form.to_dict()
    try:
        spec = services.create_field(_values(form, new=True), actor_id=current_user.id)
    except UserError as problem:
        return _page(form, {k: str(v) for k, v in problem.fields.items()} or {"_form": problem.message}, status=422)
    flash(_("The field “%(name)s” has been added.", name=spec.label()), "success")
    return redirect(url_for("custom_fields.list"))


def _stored_or_404(field_id):
    from flask import abort

    spec = services.stored_field(field_id)
    if spec is None:
        abort(404)
    return spec


@blueprint.get("/<int:field_id>", endpoint="edit")
def edit_field(field_id):
    spec = _stored_or_404(field_id)
    return _page(_form_of(spec), field=spec)


@blueprint.post("/<int:field_id>", endpoint="update")
def update_field(field_id):
    spec = _stored_or_404(field_id)
    form = request.form.to_dict()
    try:
        services.update_field(spec, _values(form, new=False), actor_id=current_user.id,
                              expected_version=form.get("version") or 0)
    except UserError as problem:
        return _page(form, {k: str(v) for k, v in problem.fields.items()} or {"_form": problem.message},
                     field=spec, status=422)
    except VersionConflict:
        return _page(form, field=services.stored_field(field_id), conflict=True, status=409)
    flash(_("The field “%(name)s” has been saved.", name=spec.label()), "success")
    return redirect(url_for("custom_fields.list"))


@blueprint.post("/<int:field_id>/retire", endpoint="retire")
def retire_field(field_id):
    spec = _stored_or_404(field_id)
    if spec.retired:
        services.restore_field(spec, actor_id=current_user.id)
        flash(_("The field “%(name)s” is back.", name=spec.label()), "success")
    else:
        services.retire_field(spec, actor_id=current_user.id)
        flash(_("The field “%(name)s” has been retired; its values are kept.", name=spec.label()), "success")
    return redirect(url_for("custom_fields.list"))
