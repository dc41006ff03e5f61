"""Pages of opportunities: the list (filters, sorting, saved views, export), the record
pages (form, detail with the stage path and the team), and the board of a pipeline.

Every page reads through the access engine; a stage move from any page goes through
``services.move`` so the stage gates apply, and a refused move lists every unmet
requirement on the opportunity's page, where the values a stage needs can be given."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core import exports
from crm_core.accounts.models import Account, Contact
from crm_core.accounts.services import contact_name
from crm_core.accounts.views import account_choices, people
from crm_core.errors import UserError, VersionConflict
from crm_core.leads.models import Campaign
from crm_core.opportunities import lists, saved_views, services
from crm_core.opportunities.models import LostReason, Opportunity, OpportunityMember, Pipeline, Stage, StageChange
from crm_core.opportunities.transitions import StageRequirements
from crm_core.org.models import Department
from crm_core.permissions import FIELD_EDIT, FIELD_HIDDEN, engine
from crm_core.users.models import User
from crm_core.web import record_pages as pages
from crm_core.web.record_pages import Input, RecordKind

blueprint = Blueprint("opportunities", __name__, url_prefix="/opportunities")

SOURCES = (("web", _l("Web")), ("email", _l("Email")), ("phone", _l("Phone")), ("referral", _l("Referral")),
           ("event", _l("Event")), ("partner", _l("Partner")), ("advertising", _l("Advertising")),
           ("import", _l("Import")), ("other", _l("Other")))
STATUSES = (("open", _l("Open")), ("won", _l("Won")), ("lost", _l("Lost")))
ROLES = {"owner": _l("Owner"), "presales": _l("Presales"), "executive_sponsor": _l("Executive sponsor"),
         "technical": _l("Technical"), "support": _l("Support"), "other": _l("Other")}
ACCESS = {"read": _l("Reads it"), "edit": _l("Changes it")}
BOARD_CARDS = 50  # per column; the count and the amounts cover the whole column
LIST_ARGUMENTS = (*lists.PARAMETERS, "sort")


def pipeline_choices():
    return [(p.id, p.name) for p in services.pipelines()]


def stage_choices():
    """Every stage in use, named with its pipeline ("Sales · Proposal")."""
    out = []
    for pipeline in services.pipelines():
        out += [(s.id, f"{pipeline.name} · {s.name}") for s in services.stages(pipeline)]
    return out


def lost_reason_choices():
    return [(r.id, r.name) for r in services.lost_reasons()]


def _contact_choices():
    return [(c.id, contact_name(c)) for c in engine().query(current_user.id, "contact")
            .order_by(Contact.last_name, Contact.first_name).limit(1000)]


def _campaign_choices():
    if not engine().object_permissions(current_user.id, "campaign").read:
        return []
    return [(c.id, c.name) for c in engine().query(current_user.id, "campaign").order_by(Campaign.name).limit(500)]


OPPORTUNITY = RecordKind(
    name="opportunity", endpoint="opportunities", title=_l("Opportunities"), singular=_l("Opportunity"),
    inputs=(
        Input("name", _l("Name"), required=True, max_length=200),
        Input("account_id", _l("Account"), "reference", required=True),
        Input("contact_id", _l("Contact"), "reference"),
        Input("owner_id", _l("Owner"), "user"),
        Input("pipeline_id", _l("Pipeline"), "reference",
              hint=_l("Without a stage, the opportunity starts in the pipeline's first stage.")),
        Input("stage_id", _l("Stage"), "reference"),
        Input("currency", _l("Currency"), "currency", max_length=3),
        Input("amount", _l("Amount"), "money"),
        Input("probability", _l("Probability"), "integer",
              hint=_l("In percent; empty: the stage's own.")),
        Input("expected_close_date", _l("Expected close date"), "date"),
        Input("closed_date", _l("Closed on"), "date"),
        Input("source", _l("Source"), "choice", SOURCES),
        Input("campaign_id", _l("Campaign"), "reference"),
        Input("next_step", _l("Next step"), max_length=300),
        Input("competitors", _l("Competitors"), "textarea", max_length=20000, hint=_l("One per line.")),
        Input("lost_reason_id", _l("Lost reason"), "reference"),
        Input("lost_note", _l("About the loss"), "textarea", max_length=20000),
        Input("description", _l("Description"), "textarea", max_length=20000),
    ),
    columns=("account_id", "stage_id", "amount", "expected_close_date", "probability", "owner_id"),
    create=services.create_opportunity, update=services.update_opportunity, delete=services.delete_opportunity,
    label_of=lambda opportunity: opportunity.name,
    search=lambda query, text: query.where(Opportunity.name.contains(text)),
    sorts={"expected_close_date": (_l("Expected close date"), Opportunity.expected_close_date),
           "name": (_l("Name"), Opportunity.name), "amount": (_l("Amount"), Opportunity.amount),
           "probability": (_l("Probability"), Opportunity.probability), "stage": (_l("Stage"), Stage.position),
           "updated_at": (_l("Last changed"), Opportunity.updated_at)},
    default_sort="expected_close_date",
    choice_sources={"owner_id": people, "account_id": account_choices, "contact_id": _contact_choices,
                    "pipeline_id": pipeline_choices, "stage_id": stage_choices, "campaign_id": _campaign_choices,
                    "lost_reason_id": lost_reason_choices},
    extra_template="crm_core/opportunities/_opportunity_extra.html",
)


# -- the list --------------------------------------------------------------------------------------

def _levels():
    return pages.levels_of(OPPORTUNITY)


def _list_args():
    """The filters of the request, and the sort (hidden fields are neither filtered nor sorted by)."""
    args, bad = lists.parse_args(request.args)
    sort = request.args.get("sort", lists.DEFAULT_SORT)
    if sort.lstrip("-") not in OPPORTUNITY.sorts:
        sort = lists.DEFAULT_SORT
    levels = _levels()
    for name in lists.hidden_arguments(levels, args):
        args.pop(name, None)
    if lists.hidden_arguments(levels, {}, sort):
        sort = lists.DEFAULT_SORT
    return args, sort, bad


def _filtered(args):
    return lists.where(engine().query(current_user.id, "opportunity"), args)


def _filter_choices(args):
    pipeline_id = args.get("pipeline_id")
    stages = [(s.id, s.name) for s in services.stages(pipeline_id)] if pipeline_id else stage_choices()
    departments = [(d.id, d.name) for d in Department.alive().order_by(Department.name)]
    return {"pipeline_id": pipeline_choices(), "stage_id": stages, "owner_id": people(),
            "department_id": departments, "status": STATUSES, "source": SOURCES}


@blueprint.get("", endpoint="list")
def list_page():
    pages.require_object(OPPORTUNITY, "read")
    args, sort, bad = _list_args()
    levels = _levels()
    query = _filtered(args)
    try:
        page = min(max(int(request.args.get("page", "1")), 1), pages.MAX_PAGE)
    except ValueError:
        page = 1
    total = query.count()
    records = list(lists.ordered(query, sort).paginate(page, pages.PER_PAGE))
    columns = [spec for name in OPPORTUNITY.columns for spec in OPPORTUNITY.inputs
               if spec.name == name and levels.get(name, FIELD_EDIT) > FIELD_HIDDEN]
    columns += [spec for spec in pages.custom_inputs(OPPORTUNITY)[:pages.CUSTOM_LIST_COLUMNS]
                if levels.get(spec.name, FIELD_EDIT) > FIELD_HIDDEN]
    current = {name: request.args.get(name, "") for name in lists.PARAMETERS}
    query_args = {k: v for k, v in {**current, "sort": sort}.items() if v}
    return render_template(
        "crm_core/opportunities/list.html", kind=OPPORTUNITY, records=records, total=total, page=page,
        pages=max(1, -(-total // pages.PER_PAGE)), columns=columns, display=_display(records),
        current=current, sort=sort, bad=bad, query_args=query_args, choices=_filter_choices(args),
        board_args={k: v for k, v in query_args.items() if k in ("pipeline_id", "owner_id", "department_id", "q")},
        views=saved_views.visible("opportunity", current_user.id),
        can_create=engine().object_permissions(current_user.id, "opportunity").create)


def _display(records):
    """Field text for lists and cards, with the accounts and stages of ``records`` read once."""
    show = pages._display(OPPORTUNITY)
    account_ids = {r.account_id for r in records}
    accounts = {a.id: a.name for a in Account.select(Account.id, Account.name).where(Account.id.in_(account_ids))}
    stages = {s.id: s.name for s in Stage.select(Stage.id, Stage.name).where(
        Stage.id.in_({r.stage_id for r in records}))}

    def display(record, spec):
        if spec.name == "account_id":
            return accounts.get(record.account_id, "")
        if spec.name == "stage_id":
            return stages.get(record.stage_id, "")
        if spec.name == "probability":
            return f"{record.probability} %"
        return show(record, spec)

    return display


@blueprint.get("/export", endpoint="export")
def export():
    pages.require_object(OPPORTUNITY, "read")
    file_format = request.args.get("format", "csv")
    if file_format not in exports.FORMATS:
        abort(400)
    args, _sort, _bad = _list_args()
    data, _count = exports.write("opportunity", current_user.id, file_format, _filtered(args))
    name = f"opportunities-{dt.date.today().isoformat()}.{file_format}"
    return Response(data, mimetype=exports.FORMATS[file_format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@blueprint.post("/views", endpoint="save_view")
def save_view():
    pages.require_object(OPPORTUNITY, "read")
    args = {name: request.form.get(name, "") for name in LIST_ARGUMENTS}
    try:
        view = saved_views.save("opportunity", current_user.id, request.form.get("name"), args,
                                shared=request.form.get("shared") == "1", allowed=LIST_ARGUMENTS)
    except UserError as problem:
        flash(str(next(iter(problem.fields.values()))), "error")
        return redirect(url_for("opportunities.list", **{k: v for k, v in args.items() if v}))
    flash(_("The view “%(name)s” has been saved.", name=view.name), "success")
    return redirect(url_for("opportunities.list", **view.args()))


@blueprint.get("/views/<int:view_id>", endpoint="view")
def open_view(view_id):
    view = saved_views.get_visible("opportunity", current_user.id, view_id)
    if view is None:
        abort(404)
    return redirect(url_for("opportunities.list", **view.args()))


@blueprint.post("/views/<int:view_id>/delete", endpoint="delete_view")
def delete_view(view_id):
    view = saved_views.get_visible("opportunity", current_user.id, view_id)
    if view is None:
        abort(404)
    try:
        saved_views.delete(view, current_user.id, current_user.is_admin)
    except UserError:
        abort(403)
    flash(_("The view “%(name)s” has been deleted.", name=view.name), "success")
    return redirect(url_for("opportunities.list"))


# -- the record pages --------------------------------------------------------------------------------

def _extra(opportunity, move_to=None, unmet=None, move_form=None):
    """What the detail page shows beside the fields: links, the stage path (with the form of
    a move that needs values), the team, the stage history."""
    access = engine()
    links = {}
    for name, endpoint, model, column, label in (
            ("account_id", "accounts", Account, opportunity.account_id, lambda a: a.name),
            ("contact_id", "contacts", Contact, opportunity.contact_id, contact_name),
            ("campaign_id", "campaigns", Campaign, opportunity.campaign_id, lambda c: c.name)):
        if column is None or not access.object_permissions(current_user.id, model._meta.table_name).read:
            continue
        record = access.query(current_user.id, model._meta.table_name).where(model.id == column).first()
        if record is not None:
            links[name] = (endpoint, record.id, label(record))
    for name, model in (("pipeline_id", Pipeline), ("stage_id", Stage), ("lost_reason_id", LostReason)):
        value = getattr(opportunity, name)
        if value is not None:
            target = model.get_or_none(model.id == value)
            links[name] = (None, value, target.name if target else f"#{value}")
    can_edit = (access.object_permissions(current_user.id, "opportunity").edit
                and access.can(current_user.id, opportunity, "update"))
    levels = _levels()
    members = services.members(opportunity)
    names = {u.id: u.name for u in User.select(User.id, User.name).where(
        User.id.in_([m.user_id for m in members] + [opportunity.owner_id]))}
    history = list(StageChange.select().where(StageChange.opportunity == opportunity.id)
                   .order_by(StageChange.changed_at.desc(), StageChange.id.desc()).limit(50))
    stage_names = {s.id: s.name for s in Stage.select(Stage.id, Stage.name).where(
        Stage.id.in_({h.to_stage_id for h in history} | {h.from_stage_id for h in history if h.from_stage_id}))}
    changers = {u.id: u.name for u in User.select(User.id, User.name).where(
        User.id.in_({h.changed_by_id for h in history if h.changed_by_id}))}
    return {"links": links, "can_edit": can_edit, "can_move": can_edit and levels.get("stage_id", FIELD_EDIT) == FIELD_EDIT,
            "path": services.stages(opportunity.pipeline_id), "move_to": move_to, "unmet": unmet or [],
            "move_form": move_form or {}, "lost_reasons": lost_reason_choices(), "members": members,
            "names": names, "roles": ROLES, "access_labels": ACCESS, "people": people() if can_edit else [],
            "stage_history": history, "stage_names": stage_names, "changers": changers}


def _register_record_pages():
    def new_view():
        pages.require_object(OPPORTUNITY, "create")
        return pages.form_page(OPPORTUNITY)

    def create_view():
        return pages.create(OPPORTUNITY)

    def detail_view(record_id):
        record = pages.readable_or_404(OPPORTUNITY, record_id)
        move_to = request.args.get("move_to", "")
        stage = Stage.get_or_none(Stage.id == int(move_to)) if move_to.isdigit() else None
        return pages.detail_page(OPPORTUNITY, record, _extra(
            record, move_to=stage if stage is not None and stage.pipeline_id == record.pipeline_id else None))

    def edit_view(record_id):
        pages.readable_or_404(OPPORTUNITY, record_id)
        pages.require_object(OPPORTUNITY, "edit")
        return pages.form_page(OPPORTUNITY, pages.readable_or_404(OPPORTUNITY, record_id))

    def update_view(record_id):
        return pages.update(OPPORTUNITY, record_id)

    def delete_view(record_id):
        record = pages.readable_or_404(OPPORTUNITY, record_id)
        return pages.delete(OPPORTUNITY, record_id, _extra(record))

    blueprint.add_url_rule("/new", "new", new_view, methods=["GET"])
    blueprint.add_url_rule("", "create", create_view, methods=["POST"])
    blueprint.add_url_rule("/<int:record_id>", "detail", detail_view, methods=["GET"])
    blueprint.add_url_rule("/<int:record_id>/edit", "edit", edit_view, methods=["GET"])
    blueprint.add_url_rule("/<int:record_id>", "update", update_view, methods=["POST"])
    blueprint.add_url_rule("/<int:record_id>/delete", "delete", delete_view, methods=["POST"])


_register_record_pages()


def _changeable(record_id):
    record = pages.readable_or_404(OPPORTUNITY, record_id)
    pages.require_object(OPPORTUNITY, "edit")
    if not engine().can(current_user.id, record, "update"):
        abort(403)
    return record


def _move_values(form):
    """The values a move form may carry besides the stage (what a gate may need)."""
    values, errors = {}, {}
    reason = form.get("lost_reason_id", "").strip()
    if reason:
        values["lost_reason_id"] = int(reason) if reason.isdigit() else -1
    note = form.get("lost_note", "").strip()
    if note:
        values["lost_note"] = note[:20000]
    closed = form.get("closed_date", "").strip()
    if closed:
        try:
            values["closed_date"] = dt.date.fromisoformat(closed)
        except ValueError:
            errors["closed_date"] = _("Enter a date such as 2026-12-31.")
    return values, errors


@blueprint.post("/<int:record_id>/move", endpoint="move")
def move(record_id):
    """A stage button of the detail page or the "move to" of a board card (without script)."""
    record = _changeable(record_id)
    if _levels().get("stage_id", FIELD_EDIT) < FIELD_EDIT:
        abort(403)
    stage_id = request.form.get("stage_id", "")
    stage = Stage.alive().where(Stage.id == int(stage_id)).first() if stage_id.isdigit() else None
    if stage is None or stage.pipeline_id != record.pipeline_id:
        abort(400)
    values, errors = _move_values(request.form)
    back = request.form.get("next") == "board"
    if errors:
        return pages.detail_page(OPPORTUNITY, record, _extra(record, stage, list(errors.values()),
                                                             request.form), status=422)
    try:
        version = int(request.form.get("version", "0") or 0)
        services.move(record, stage.id, actor_id=current_user.id, expected_version=version, **values)
    except StageRequirements as refused:
        return pages.detail_page(OPPORTUNITY, record, _extra(
            record, stage, [str(message) for _field, message in refused.unmet], request.form), status=422)
    except UserError as problem:
        return pages.detail_page(OPPORTUNITY, record, _extra(
            record, stage, [str(m) for m in problem.fields.values()], request.form), status=422)
    except VersionConflict:
        fresh = Opportunity.get_by_id(record.id)
        return pages.detail_page(OPPORTUNITY, fresh, _extra(fresh), status=409, action_error=_(
            "Someone else changed this opportunity in the meantime. Check it and try again."))
    flash(_("“%(name)s” is now in “%(stage)s”.", name=record.name, stage=stage.name), "success")
    if back:
        return redirect(url_for("opportunities.board", pipeline_id=record.pipeline_id))
    return redirect(url_for("opportunities.detail", record_id=record.id))


# -- the team -----------------------------------------------------------------------------------------

def _member(record, member_id):
    member = OpportunityMember.get_or_none((OpportunityMember.id == member_id)
                                           & (OpportunityMember.opportunity == record.id))
    if member is None:
        abort(404)
    return member


def _team_problem(record, problem):
    return pages.detail_page(OPPORTUNITY, record, _extra(record), status=409 if problem.code in UserError.CONFLICTS
                             else 422, action_error=" ".join(str(m) for m in problem.fields.values()))


@blueprint.post("/<int:record_id>/members", endpoint="add_member")
def add_member(record_id):
    record = _changeable(record_id)
    user_id = request.form.get("user_id", "")
    try:
        services.add_member(record, {"user_id": int(user_id) if user_id.isdigit() else None,
                                     "role": request.form.get("role") or "other",
                                     "access": request.form.get("access") or "read"}, actor_id=current_user.id)
    except UserError as problem:
        return _team_problem(record, problem)
    flash(_("The team has been changed."), "success")
    return redirect(url_for("opportunities.detail", record_id=record.id) + "#team-heading")


@blueprint.post("/<int:record_id>/members/<int:member_id>", endpoint="change_member")
def change_member(record_id, member_id):
    record = _changeable(record_id)
    try:
        services.update_member(_member(record, member_id), {"role": request.form.get("role"),
                                                            "access": request.form.get("access")},
                               actor_id=current_user.id)
    except UserError as problem:
        return _team_problem(record, problem)
    flash(_("The team has been changed."), "success")
    return redirect(url_for("opportunities.detail", record_id=record.id) + "#team-heading")


@blueprint.post("/<int:record_id>/members/<int:member_id>/delete", endpoint="remove_member")
def remove_member(record_id, member_id):
    record = _changeable(record_id)
    services.remove_member(_member(record, member_id), actor_id=current_user.id)
    flash(_("The team has been changed."), "success")
    return redirect(url_for("opportunities.detail", record_id=record.id) + "#team-heading")


# -- the board ------------------------------------------------------------------------------------------

def column_totals(query):
    """{stage id: (count, {currency: amount})} of ``query``'s opportunities."""
    from peewee import fn

    totals = {}
    rows = (query.select(Opportunity.stage, Opportunity.currency, fn.COUNT(Opportunity.id),
                         fn.SUM(Opportunity.amount))
            .group_by(Opportunity.stage, Opportunity.currency).tuples())
    for stage_id, currency, count, amount in rows:
        count_before, amounts = totals.get(stage_id, (0, {}))
        if amount is not None:
            amounts[currency] = Opportunity.amount.python_value(amount)
        totals[stage_id] = (count_before + count, amounts)
    return totals


@blueprint.get("/board", endpoint="board")
def board():
    pages.require_object(OPPORTUNITY, "read")
    args, _sort, bad = _list_args()
    pipeline_id = args.get("pipeline_id")
    pipeline = (Pipeline.alive().where(Pipeline.id == pipeline_id).first() if pipeline_id
                else services.default_pipeline())
    if pipeline is None:
        abort(404)
    args["pipeline_id"] = pipeline.id
    args.pop("stage_id", None)
    query = _filtered(args)
    totals = column_totals(query)
    stages = services.stages(pipeline)
    columns = []
    for stage in stages:
        count, amounts = totals.get(stage.id, (0, {}))
        cards = list(lists.ordered(query.where(Opportunity.stage == stage.id), "expected_close_date")
                     .limit(BOARD_CARDS)) if count else []
        columns.append({"stage": stage, "count": count, "amounts": sorted(amounts.items()), "cards": cards})
    access = engine()
    levels = _levels()
    records = [card for column in columns for card in column["cards"]]
    movable = ({r.id for r in records if access.can(current_user.id, r, "update")}
               if access.object_permissions(current_user.id, "opportunity").edit
               and levels.get("stage_id", FIELD_EDIT) == FIELD_EDIT else set())
    owners = {u.id: u.name for u in User.select(User.id, User.name).where(User.id.in_({r.owner_id for r in records}))}
    accounts = {a.id: a.name for a in Account.select(Account.id, Account.name).where(
        Account.id.in_({r.account_id for r in records}))}
    return render_template("crm_core/opportunities/board.html", pipeline=pipeline, columns=columns,
                           pipelines=pipeline_choices(), movable=movable, owners=owners, accounts=accounts,
                           show_amount=levels.get("amount", FIELD_EDIT) > FIELD_HIDDEN, current=request.args,
                           filters={k: v for k, v in request.args.items() if k in ("owner_id", "department_id", "q")
                                    and v},
                           choices=_filter_choices(args), limit=BOARD_CARDS, bad=bad,
                           move_url=url_for("opportunities_api.OpportunityMove", opportunity_id=0))
