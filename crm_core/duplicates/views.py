"""Pages: the duplicate groups a reader may see ("not a duplicate", compare and merge),
the rules (administrators), the side-by-side merge, and the mass transfer of ownership."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from crm_core.errors import UserError, VersionConflict
from crm_core.duplicates import merge as merging, rules, scan, transfer as transferring
from crm_core.permissions import FIELD_EDIT, FIELD_HIDDEN, engine
from crm_core.web import record_pages as pages

blueprint = Blueprint("duplicates", __name__, url_prefix="/duplicates")
transfers_blueprint = Blueprint("transfers", __name__, url_prefix="/transfers")

MODE_LABELS = (("warn", _l("Warn and ask to confirm")), ("block", _l("Block")), ("off", _l("Off")))


def kinds():
    from crm_core.accounts.views import ACCOUNT, CONTACT
    from crm_core.leads.views import LEAD

    return {"account": ACCOUNT, "contact": CONTACT, "lead": LEAD}


def _readable_objects():
    access = engine()
    return [name for name in rules.OBJECTS if name in kinds()
            and access.object_permissions(current_user.id, name).read]


def _object_arg(value, allowed):
    if value not in allowed:
        abort(404)
    return value


@blueprint.get("", endpoint="groups")
def groups():
    allowed = _readable_objects()
    if not allowed:
        abort(403)
    name = _object_arg(request.args.get("object", allowed[0]), allowed)
    kind = kinds()[name]
    found = scan.groups(name, current_user.id)
    return render_template("crm_core/duplicates/groups.html", objects=[(n, kinds()[n].title) for n in allowed],
                           name=name, kind=kind, groups=found[:200], total=len(found),
                           can_merge=engine().object_permissions(current_user.id, name).delete,
                           key_labels=rules.KEY_LABELS)


@blueprint.post("/pairs/<int:pair_id>/dismiss", endpoint="dismiss")
def dismiss(pair_id):
    from crm_core.duplicates.models import DuplicatePair

    pair = DuplicatePair.get_or_none(DuplicatePair.id == pair_id)
    if pair is None or pair.dismissed_at is not None or pair.object not in _readable_objects():
        abort(404)
    model = engine().objects[pair.object].model
    if engine().query(current_user.id, pair.object, model.id).where(
            model.id.in_([pair.low_id, pair.high_id])).count() != 2:
        abort(404)
    if not engine().object_permissions(current_user.id, pair.object).edit:
        abort(403)
    scan.dismiss(pair, current_user.id)
    flash(_("The two records are no longer proposed as duplicates."), "success")
    return redirect(url_for("duplicates.groups", object=pair.object))


@blueprint.post("/scan", endpoint="scan")
def start_scan():
    from flask import current_app

    if not current_user.is_admin:
        abort(403)
    name = request.form.get("object") or None
    if name is not None and name not in rules.OBJECTS:
        abort(404)
    current_app.extensions["crm_jobs"].enqueue("core.scan_duplicates", name)
    flash(_("The search for duplicates has started; its groups appear here when it is done."), "success")
    return redirect(url_for("duplicates.groups", object=name) if name else url_for("duplicates.groups"))


@blueprint.route("/settings", methods=["GET", "POST"], endpoint="settings")
def settings():
    if not current_user.is_admin:
        abort(403)
    errors, status = {}, 200
    if request.method == "POST":
        name = _object_arg(request.form.get("object", ""), list(rules.OBJECTS))
        new_rules = []
        for key in rules.spec_of(name).keys():
            if request.form.get(f"{key}_on") != "1":
                continue
            if key == "name":
                raw = request.form.get("threshold", "").strip()
                threshold = int(raw) if raw.isdigit() else -1
                new_rules.append({"key": "name", "method": "fuzzy", "threshold": threshold})
            else:
                new_rules.append({"key": key, "method": "exact"})
        try:
            rules.save_settings(name, request.form.get("mode", ""), new_rules, actor_id=current_user.id,
                                expected_version=int(request.form.get("version", "0") or 0))
            flash(_("The duplicate rules have been saved."), "success")
            return redirect(url_for("duplicates.settings"))
        except UserError as problem:
            errors, status = {name: dict(problem.fields)}, 422
        except VersionConflict:
            errors, status = {name: {"_schema": _("Someone else changed these rules in the meantime. "
                                                  "Check them and try again.")}}, 409
    objects = [(name, kinds()[name].title, rules.settings_of(name), rules.spec_of(name).keys())
               for name in rules.OBJECTS if name in kinds()]
    return render_template("crm_core/duplicates/settings.html", objects=objects, modes=MODE_LABELS,
                           key_labels=rules.KEY_LABELS, errors=errors), status


# -- merge ------------------------------------------------------------------------------------------

def _merge_records(name, survivor_id, other_id):
    if name not in kinds() or name not in _readable_objects():
        abort(404)
    kind = kinds()[name]
    survivor = pages.readable_or_404(kind, survivor_id)
    other = pages.readable_or_404(kind, other_id)
    access = engine()
    permissions = access.object_permissions(current_user.id, name)
    if not (permissions.edit and permissions.delete and merging.may_merge(current_user.id, survivor, other)):
        abort(403)
    return kind, survivor, other


@blueprint.route("/merge/<string:name>/<int:survivor_id>/<int:other_id>", methods=["GET", "POST"],
                 endpoint="merge")
def merge(name, survivor_id, other_id):
    kind, survivor, other = _merge_records(name, survivor_id, other_id)
    levels = pages.levels_of(kind)
    spec = rules.spec_of(name)
    # The object's own mergeable fields, then its custom fields; a hidden one is never shown.
    inputs = [i for i in pages.inputs_of(kind) if (i.name in spec.mergeable or i.name.startswith("custom."))
              and levels.get(i.name, FIELD_EDIT) > FIELD_HIDDEN]
    can_transfer = engine().can(current_user.id, survivor, "transfer")
    choosable = {i.name for i in inputs if levels.get(i.name, FIELD_EDIT) >= FIELD_EDIT
                 and (i.name != "owner_id" or can_transfer)}
    error, status = None, 200
    if request.method == "POST":
        take = [field for field in choosable if request.form.get(f"take_{field}") == "other"]
        try:
            merging.merge(name, survivor, other, actor_id=current_user.id,
                          survivor_version=int(request.form.get("survivor_version", "0") or 0),
                          other_version=int(request.form.get("other_version", "0") or 0), take=take)
        except UserError as problem:
            error, status = str(problem.message), 422
        except VersionConflict:
            error, status = _("Someone else changed one of the records in the meantime. "
                              "Check them and try again."), 409
            survivor, other = kind.model.get_by_id(survivor.id), kind.model.get_by_id(other.id)
        else:
            flash(_("“%(other)s” has been merged into “%(name)s”.", other=kind.label_of(other),
                    name=kind.label_of(survivor)), "success")
            return redirect(url_for(f"{kind.endpoint}.detail", record_id=survivor.id))
    show = pages._display(kind)
    rows = [(i, show(survivor, i) if i.kind != "reference" else _reference(survivor, i),
             show(other, i) if i.kind != "reference" else _reference(other, i)) for i in inputs]
    return render_template("crm_core/duplicates/merge.html", kind=kind, name=name, survivor=survivor,
                           other=other, rows=rows, choosable=choosable, error=error), status


def _reference(record, spec):
    """The name of a referenced record the reader may see (a parent account, a manager)."""
    value = getattr(record, spec.name, None)
    if value is None:
        return ""
    target = {"parent_id": "account", "account_id": "account", "reports_to_id": "contact",
              "campaign_id": "campaign"}.get(spec.name)
    if target is None:
        return str(value)
    model = engine().objects[target].model
    found = engine().query(current_user.id, target).where(model.id == value).first()
    if found is None:
        return "—"
    return getattr(found, "name", None) or " ".join(p for p in (found.first_name, found.last_name) if p)


# -- mass transfer ----------------------------------------------------------------------------------

@transfers_blueprint.route("", methods=["GET", "POST"], endpoint="transfer")
def transfer():
    """Choose records by owner (or the ids ticked on a list), preview, then transfer."""
    from crm_core.accounts.views import people

    allowed = [name for name in _readable_objects()
               if engine().object_permissions(current_user.id, name).edit]
    if not allowed:
        abort(403)
    source = request.form if request.method == "POST" else request.args
    form = {"object": source.get("object", allowed[0]), "from_owner_id": source.get("from_owner_id", ""),
            "to_owner_id": source.get("to_owner_id", ""), "ids": source.get("ids", "").strip(),
            "with_opportunities": source.get("with_opportunities", "") if source.get("object") == "account" else ""}
    _object_arg(form["object"], allowed)
    along = form["with_opportunities"] == "1"
    errors, preview, status = {}, None, 200
    if request.method == "POST":
        ids = [int(part) for part in form["ids"].replace(",", " ").split() if part.isdigit()] or None
        if form["ids"] and ids is None:
            errors["ids"] = _("Enter record numbers separated by spaces or commas.")
        from_owner = int(form["from_owner_id"]) if form["from_owner_id"].isdigit() else None
        to_owner = int(form["to_owner_id"]) if form["to_owner_id"].isdigit() else 0
        if not errors:
            try:
                if request.form.get("expected_count", "").isdigit():
                    moved = transferring.transfer(current_user.id, form["object"], to_owner,
                                                  int(request.form["expected_count"]), ids=ids,
                                                  from_owner_id=from_owner, with_opportunities=along)
                    flash(ngettext("%(num)s record has been transferred.",
                                   "%(num)s records have been transferred.", moved.count), "success")
                    if along:
                        flash(ngettext("%(num)s open opportunity went with them.",
                                       "%(num)s open opportunities went with them.", moved.opportunities),
                              "success")
                    return redirect(url_for("transfers.transfer", object=form["object"]))
                count, sample = transferring.preview(current_user.id, form["object"], to_owner, ids=ids,
                                                     from_owner_id=from_owner, with_opportunities=along)
                preview = {"count": count, "sample": sample}
                if along:
                    preview["opportunities"] = transferring.opportunities_count(
                        current_user.id, to_owner, ids=ids, from_owner_id=from_owner)
            except UserError as problem:
                errors, status = dict(problem.fields), (409 if problem.code == "changed" else 422)
                if problem.code == "changed":
                    count, sample = transferring.preview(current_user.id, form["object"], to_owner, ids=ids,
                                                         from_owner_id=from_owner)
                    preview = {"count": count, "sample": sample}
    kind = kinds()[form["object"]]
    return render_template("crm_core/duplicates/transfer.html", form=form, errors=errors, preview=preview,
                           objects=[(n, kinds()[n].title) for n in allowed], people=people(), kind=kind), status
