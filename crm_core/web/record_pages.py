"""Pages of a business record kind: list, detail, new, edit, delete.

Each kind (accounts, contacts, and later leads, opportunities...) declares its inputs
once (``Input``) and its services; this module reads forms into typed values (with a
message per input), applies the access engine (a record the reader cannot see is a
404, fields hidden from them are not shown, fields they may not edit are read-only and
never written), and renders the shared templates. Forms carry the version they were
drawn from: a stale one is a 409 page that keeps what was typed.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from typing import Any, Callable

from babel import Locale
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from crm_core import money
from crm_core.audit.services import history_of
from crm_core.errors import FieldValueError, UserError, VersionConflict
from crm_core.i18n import current_locale
from crm_core.permissions import FIELD_EDIT, FIELD_HIDDEN, engine
from crm_core.users.models import User

PER_PAGE = 50
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Input:
    """One input of a record form: ``kind`` is text, textarea, email, choice, country,
    user, integer, money, currency, date or bool; ``choices`` [(value, label)]."""

    name: str
    label: Any
    kind: str = "text"
    choices: tuple = ()
    required: bool = False
    max_length: int | None = None
    hint: Any = None


@dataclass
class RecordKind:
    """What the shared pages need to know about one kind of record."""

    name: str                      # the access object: "account"
    endpoint: str                  # the blueprint's endpoint prefix: "accounts"
    title: Any                     # "Accounts"
    singular: Any                  # "Account"
    inputs: tuple                  # Input, in form order
    columns: tuple                 # list columns: input names
    create: Callable               # services.create_x(values, actor_id)
    update: Callable               # services.update_x(record, changes, actor_id, expected_version)
    delete: Callable               # services.delete_x(record, actor_id, expected_version)
    label_of: Callable             # record -> its name on the page
    search: Callable               # (query, text) -> query
    sorts: dict = field(default_factory=dict)   # {key: (label, column)}
    default_sort: str = "name"
    choice_sources: dict = field(default_factory=dict)  # {input: callable() -> [(id, label)]}
    extra_template: str | None = None  # drawn on the detail page after the fields
    list_links: tuple = ()  # (endpoint, label, named permission) shown on the list to holders

    @property
    def model(self):
        return engine().objects[self.name].model


# -- custom fields --------------------------------------------------------------------------------

CUSTOM_KINDS = {"text": "text", "number": "number", "money": "money", "date": "date", "choice": "choice",
                "multi_choice": "multi", "boolean": "bool"}
CUSTOM_LIST_COLUMNS = 3  # the first few custom fields (in form order) also show in lists


def custom_inputs(kind):
    """The kind's custom fields as inputs named "custom.<key>" (none when its records hold
    no custom values)."""
    from crm_core.customfields.registry import definitions, opted_in

    if not opted_in(kind.model):
        return ()
    return tuple(Input(spec.name, spec.label(), CUSTOM_KINDS[spec.type],
                       choices=tuple((value, spec.choice_label(value)) for value in spec.choice_values),
                       required=spec.required, hint=spec.currency) for spec in definitions(kind.name))


def inputs_of(kind):
    return tuple(kind.inputs) + custom_inputs(kind)


def _custom_spec(kind, name):
    from crm_core.customfields.registry import by_key

    return by_key(kind.name).get(name.removeprefix("custom."))


# -- reading a form -------------------------------------------------------------------------------

def countries():
    """[(code, name)] in the reader's language, by name."""
    names = Locale.parse(current_locale()).territories
    return sorted(((code, names[code]) for code in names if len(code) == 2 and code.isalpha()),
                  key=lambda pair: pair[1])


def _parse(spec, raw, errors):
    """The typed value of one input (None when empty); an error message when it is not one."""
    text = (raw or "").strip()
    if spec.kind == "bool":
        return raw == "1"
    if not text:
        return None
    if spec.max_length and len(text) > spec.max_length:
        errors[spec.name] = ngettext("Enter at most %(num)s character.", "Enter at most %(num)s characters.",
                                     spec.max_length)
        return None
    try:
        if spec.kind in ("integer", "user", "reference"):
            if not text.lstrip("-").isdigit() or len(text) > 18:
                raise ValueError(text)
            return int(text)
        if spec.kind == "money":
            value = decimal.Decimal(text.replace(" ", "").replace(",", "."))
            if not value.is_finite():
                raise ValueError(text)
            money.to_units(value)
            return value
        if spec.kind == "date":
            return dt.date.fromisoformat(text)
    except (ValueError, decimal.InvalidOperation, FieldValueError):
        errors[spec.name] = {"integer": _("Enter a whole number."), "money": _("Enter a number such as 1234.50."),
                             "date": _("Enter a date such as 2026-12-31.")}.get(
            spec.kind, _("This value is not valid."))
        return None
    if spec.kind == "currency":
        return text.upper()
    return text


def read_form(kind, levels, record=None):
    """(shown, values, errors): what was typed (to show again), the typed values of the
    inputs the reader may edit, and a message per input that is not valid."""
    shown, values, errors = {}, {}, {}
    custom = {}
    for spec in inputs_of(kind):
        if levels.get(spec.name, FIELD_EDIT) < FIELD_EDIT:
            continue  # hidden or read-only: never written from a form
        if spec.name not in request.form:
            continue  # not on the form that was sent: unchanged
        if spec.name.startswith("custom."):
            # The service converts and checks custom values (one message per field).
            raw = [v for v in request.form.getlist(spec.name) if v] if spec.kind == "multi" else (
                request.form.getlist(spec.name)[-1] if spec.kind == "bool" else request.form.get(spec.name))
            shown[spec.name] = raw if spec.kind == "multi" else (raw or "")
            if raw or record is not None or spec.required:
                custom[spec.name.removeprefix("custom.")] = raw or None
            continue
        # A checkbox comes after a hidden "0" of the same name: the last value wins.
        raw = request.form.getlist(spec.name)[-1] if spec.kind == "bool" else request.form.get(spec.name)
        shown[spec.name] = raw or ""
        value = _parse(spec, raw, errors)
        if record is None and value is None and spec.kind != "bool":
            continue  # a new record: leave what was not typed to its default
        values[spec.name] = value
    if record is not None:
        # Only what changed: a form shows every field, a change names a few.
        values = {k: v for k, v in values.items() if _stored(record, k) != v}
    if custom:
        values["custom"] = custom
    return shown, values, errors


def _stored(record, name):
    if name.startswith("custom."):
        return (record.custom or {}).get(name.removeprefix("custom."))
    value = record.__data__.get(name.removesuffix("_id") if name.endswith("_id") and
                                name.removesuffix("_id") in record._meta.fields else name)
    return value


def form_of(kind, record):
    """What a form shows for a stored record (text per input)."""
    from crm_core.customfields.values import form_text

    out = {}
    for spec in inputs_of(kind):
        value = _stored(record, spec.name)
        if spec.name.startswith("custom."):
            custom = _custom_spec(kind, spec.name)
            out[spec.name] = form_text(custom, value) if custom else ""
        elif spec.kind == "bool":
            out[spec.name] = "1" if value else ""
        elif spec.kind == "money" and value is not None:
            out[spec.name] = format(decimal.Decimal(value).normalize(), "f")
        else:
            out[spec.name] = "" if value is None else str(value)
    return out


# -- access ----------------------------------------------------------------------------------------

def levels_of(kind):
    levels = engine().field_levels(current_user.id, kind.name)
    if "*" in levels:
        return {spec.name: levels["*"] for spec in inputs_of(kind)}
    return levels


def readable_or_404(kind, record_id):
    access = engine()
    if not access.object_permissions(current_user.id, kind.name).read:
        abort(403)
    record = access.query(current_user.id, kind.name).where(kind.model.id == record_id).first()
    if record is None:
        abort(404)  # the same page as a record that does not exist
    return record


def require_object(kind, flag):
    if not getattr(engine().object_permissions(current_user.id, kind.name), flag):
        abort(403)


# -- the pages --------------------------------------------------------------------------------------

def _filtered(kind, extra_filters):
    """(query, search text, only mine) of the list as the request asks for it."""
    query = engine().query(current_user.id, kind.name)
    text = request.args.get("q", "").strip()[:200]
    if text:
        query = _search(kind, query, text)
    mine = request.args.get("mine") == "1"
    if mine:
        query = query.where(kind.model.owner_id == current_user.id)
    for name, column in (extra_filters or {}).items():
        value = request.args.get(name, "").strip()
        if value:
            query = query.where(column == value)
    return query, text, mine


def _search(kind, query, text):
    """The kind's own search, or a match in one of its text custom fields the reader may see."""
    from crm_core.segments import sql

    fields = [spec for spec in custom_inputs(kind) if spec.kind in ("text", "choice")
              and levels_of(kind).get(spec.name, FIELD_EDIT) > FIELD_HIDDEN]
    if not fields:
        return kind.search(query, text)
    model = kind.model
    own = kind.search(model.select(model.id), text)
    custom = [sql.contains_text(sql.value_of(model, spec.name.removeprefix("custom.")), text.lower())
              for spec in fields]
    condition = model.id.in_(own)
    for part in custom:
        condition |= part
    return query.where(condition)


def list_page(kind, extra_filters=None):
    require_object(kind, "read")
    levels = levels_of(kind)
    query, text, mine = _filtered(kind, extra_filters)
    sort = request.args.get("sort", kind.default_sort)
    if sort.lstrip("-") not in kind.sorts:
        sort = kind.default_sort
    _label, column = kind.sorts[sort.lstrip("-")]
    if levels.get(sort.lstrip("-"), FIELD_EDIT) == FIELD_HIDDEN:
        sort, column = kind.default_sort, kind.sorts[kind.default_sort][1]
    order = column.desc() if sort.startswith("-") else column.asc()
    try:
        page = min(max(int(request.args.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        page = 1
    total = query.count()
    records = list(query.order_by(order, kind.model.id).paginate(page, PER_PAGE))
    columns = [spec for name in kind.columns for spec in kind.inputs
               if spec.name == name and levels.get(name, FIELD_EDIT) > FIELD_HIDDEN]
    columns += [spec for spec in custom_inputs(kind)[:CUSTOM_LIST_COLUMNS]
                if levels.get(spec.name, FIELD_EDIT) > FIELD_HIDDEN]
    return render_template("crm_core/records/list.html", kind=kind, records=records, total=total,
                           page=page, pages=max(1, -(-total // PER_PAGE)), columns=columns, q=text,
                           mine=mine, sort=sort, display=_display(kind),
                           export_args={k: v for k, v in request.args.items()
                                        if k not in ("page", "sort", "format") and v},
                           can_create=engine().object_permissions(current_user.id, kind.name).create,
                           links=[(endpoint, label) for endpoint, label, permission in kind.list_links
                                  if engine().has_permission(current_user.id, permission)])


def export(kind, extra_filters=None):
    """The list as the request filters it, as a CSV or XLSX download."""
    from flask import Response

    from crm_core import exports

    require_object(kind, "read")
    file_format = request.args.get("format", "csv")
    if file_format not in exports.FORMATS:
        abort(400)
    query, _text, _mine = _filtered(kind, extra_filters)
    data, _count = exports.write(kind.name, current_user.id, file_format, query)
    name = f"{kind.endpoint}-{dt.date.today().isoformat()}.{file_format}"
    return Response(data, mimetype=exports.FORMATS[file_format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _display(kind):
    """A function (record, Input) -> the text of that field, for lists and detail pages."""
    choice_labels = {spec.name: dict(spec.choices) for spec in kind.inputs if spec.choices}
    country_names = Locale.parse(current_locale()).territories
    users = {}

    def show(record, spec):
        value = _stored(record, spec.name)
        if value is None or value == "":
            return ""
        if spec.name.startswith("custom."):
            from crm_core.customfields.values import display

            custom = _custom_spec(kind, spec.name)
            return display(custom, value) if custom else ""
        if spec.kind == "bool":
            return _("Yes") if value else _("No")
        if spec.kind == "country":
            return country_names.get(value, value)
        if spec.kind == "user":
            if value not in users:
                user = User.get_or_none(User.id == value)
                users[value] = user.name if user else f"#{value}"
            return users[value]
        if spec.kind in ("reference",) and spec.name in kind.choice_sources:
            return ""  # drawn as a link by the template
        if spec.name in choice_labels:
            return str(choice_labels[spec.name].get(value, value))
        if spec.kind == "money":
            from crm_core.formatting import money as format_money

            return format_money(value, getattr(record, "currency", None))
        return value

    return show


def detail_page(kind, record, extra=None, status=200, delete_error=None, action_error=None):
    """The record's page; ``delete_error``/``action_error``: why a deletion or an action of
    the kind's own (a lead's conversion) was refused."""
    levels = levels_of(kind)
    visible = [spec for spec in inputs_of(kind) if levels.get(spec.name, FIELD_EDIT) > FIELD_HIDDEN]
    readable = {spec.name for spec in visible} | {
        spec.name.removesuffix("_id") for spec in visible} | {"deleted_at", "merged_from", "merged_into"}
    history = history_of(kind.model, record.id, readable_fields=readable)[:100]
    access = engine()
    return render_template(
        "crm_core/records/detail.html", kind=kind, record=record, fields=visible,
        display=_display(kind), history=history, extra=extra or {}, delete_error=delete_error,
        action_error=action_error,
        labels={"merged_from": _("Merged from"), "merged_into": _("Merged into"),
                **{spec.name: spec.label for spec in inputs_of(kind)}},
        can_edit=access.object_permissions(current_user.id, kind.name).edit
        and access.can(current_user.id, record, "update"),
        can_delete=access.object_permissions(current_user.id, kind.name).delete
        and access.can(current_user.id, record, "delete"),
        users={u.id: u.name for u in User.select(User.id, User.name).where(
            User.id.in_({h.changed_by_id for h in history if h.changed_by_id}))}), status


def _confirm(kind):
    """The "save anyway" of a possible duplicate, for kinds checked for duplicates."""
    from crm_core.duplicates.rules import OBJECTS

    if kind.name not in OBJECTS:
        return {}
    return {"confirm_duplicates": request.form.get("confirm_duplicates") == "1"}


def _problem_page(kind, record, shown, problem):
    from crm_core.duplicates.check import PossibleDuplicates

    duplicates = problem if isinstance(problem, PossibleDuplicates) else None
    return form_page(kind, record, shown, _messages(problem), status=422, duplicates=duplicates)


def form_page(kind, record=None, form=None, errors=None, conflict=False, status=200, duplicates=None):
    from crm_core.duplicates.rules import KEY_LABELS

    levels = levels_of(kind)
    inputs = [spec for spec in inputs_of(kind) if levels.get(spec.name, FIELD_EDIT) > FIELD_HIDDEN]
    if record is not None and not engine().can(current_user.id, record, "transfer"):
        levels = {**levels, "owner_id": min(levels.get("owner_id", FIELD_EDIT), 1)}
    choices = {name: source() for name, source in kind.choice_sources.items()}
    return render_template(
        "crm_core/records/form.html", kind=kind, record=record, inputs=inputs, levels=levels,
        form=form if form is not None else (form_of(kind, record) if record else _new_form(kind)),
        errors=errors or {}, conflict=conflict, choices=choices, countries=countries(),
        saved=form_of(kind, record) if conflict and record else None, duplicates=duplicates,
        key_labels=KEY_LABELS), status


def _new_form(kind):
    form = {spec.name: "" for spec in inputs_of(kind)}
    form["owner_id"] = str(current_user.id)
    for spec in kind.inputs:
        if spec.name in request.args:  # "new contact" from an account page
            form[spec.name] = request.args.get(spec.name, "")[:200]
    return form


def create(kind):
    require_object(kind, "create")
    shown, values, errors = read_form(kind, levels_of(kind))
    if errors:
        return form_page(kind, form=shown, errors=errors, status=422)
    try:
        record = kind.create(values, actor_id=current_user.id, **_confirm(kind))
    except (UserError, FieldValueError) as problem:
        return _problem_page(kind, None, shown, problem)
    flash(_("“%(name)s” has been created.", name=kind.label_of(record)), "success")
    return redirect(url_for(f"{kind.endpoint}.detail", record_id=record.id))


def update(kind, record_id):
    record = readable_or_404(kind, record_id)
    require_object(kind, "edit")
    if not engine().can(current_user.id, record, "update"):
        abort(403)
    shown, values, errors = read_form(kind, levels_of(kind), record)
    if "owner_id" in values and not engine().can(current_user.id, record, "transfer"):
        errors["owner_id"] = _("You may not give this record to someone else.")
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        version = 0
    if errors:
        return form_page(kind, record, shown, errors, status=422)
    try:
        kind.update(record, values, actor_id=current_user.id, expected_version=version, **_confirm(kind))
    except (UserError, FieldValueError) as problem:
        return _problem_page(kind, record, shown, problem)
    except VersionConflict:
        return form_page(kind, kind.model.get_by_id(record.id), shown, conflict=True, status=409)
    flash(_("“%(name)s” has been saved.", name=kind.label_of(record)), "success")
    return redirect(url_for(f"{kind.endpoint}.detail", record_id=record.id))


def delete(kind, record_id, extra=None):
    record = readable_or_404(kind, record_id)
    require_object(kind, "delete")
    if not engine().can(current_user.id, record, "delete"):
        abort(403)
    try:
        kind.delete(record, actor_id=current_user.id,
                    expected_version=int(request.form.get("version", "0") or 0))
    except VersionConflict:
        return detail_page(kind, kind.model.get_by_id(record.id), extra, status=409, delete_error=_(
            "Someone else changed this record in the meantime. Check it and try again."))
    flash(_("“%(name)s” is in the recycle bin.", name=kind.label_of(record)), "success")
    return redirect(url_for(f"{kind.endpoint}.list"))


def _messages(problem):
    if isinstance(problem, FieldValueError):
        return {problem.field: problem.message}
    return dict(problem.fields)



def register(blueprint, kind, extra=None, filters=None):
    """The routes of ``kind``'s pages on ``blueprint`` (endpoints list, export, new, create,
    detail, edit, update, delete); ``extra(record)`` adds what the detail page shows beside
    the fields, ``filters`` the list's column filters ({query parameter: column})."""
    extra = extra or (lambda record: {})

    def list_view():
        return list_page(kind, filters)

    def export_view():
        return export(kind, filters)

    def new_view():
        require_object(kind, "create")
        return form_page(kind)

    def create_view():
        return create(kind)

    def detail_view(record_id):
        record = readable_or_404(kind, record_id)
        return detail_page(kind, record, extra(record))

    def edit_view(record_id):
        record = readable_or_404(kind, record_id)
        require_object(kind, "edit")
        return form_page(kind, record)

    def update_view(record_id):
        return update(kind, record_id)

    def delete_view(record_id):
        return delete(kind, record_id, extra(readable_or_404(kind, record_id)))

    blueprint.add_url_rule("", "list", list_view, methods=["GET"])
    blueprint.add_url_rule("/new", "new", new_view, methods=["GET"])
    blueprint.add_url_rule("/export", "export", export_view, methods=["GET"])
    blueprint.add_url_rule("", "create", create_view, methods=["POST"])
    blueprint.add_url_rule("/<int:record_id>", "detail", detail_view, methods=["GET"])
    blueprint.add_url_rule("/<int:record_id>/edit", "edit", edit_view, methods=["GET"])
    blueprint.add_url_rule("/<int:record_id>", "update", update_view, methods=["POST"])
    blueprint.add_url_rule("/<int:record_id>/delete", "delete", delete_view, methods=["POST"])
