"""Funnel pages: the funnel of a pipeline for the reader, one of their people, a team, a
department or everyone they may see (a server-rendered chart: no script), the dashboard
widget with the reader's own funnel, and the currency rates page."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from crm_core.errors import UserError
from crm_core.funnel import rates, services
from crm_core.funnel.models import CurrencyRate
from crm_core.opportunities.models import Pipeline
from crm_core.org.models import Department, Team
from crm_core.permissions import engine

blueprint = Blueprint("funnel", __name__, url_prefix="/reports")
rates_blueprint = Blueprint("currency_rates", __name__, url_prefix="/currency-rates")
OPPORTUNITY_LIST = "/opportunities/"  # the list page (the opportunities' views own it)


@blueprint.before_request
@login_required
def _signed_in():
    if not engine().object_permissions(current_user.id, "opportunity").read:
        abort(403)


@rates_blueprint.before_request
@login_required
def _signed_in_for_rates():
    return None


def _int(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _date(value):
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def scope_choices(user_id):
    """[(value, label)]: the reader, the people below them, the teams, the departments and
    everyone; whichever is chosen, the funnel counts only what the reader may see."""
    from crm_core.users.models import User

    access = engine()
    subject = access.subject(user_id)
    choices = [("me", _("My opportunities"))]
    people = (User.select(User.id, User.name).where(User.id.in_(sorted(subject.subordinates))
                                                  & User.deleted_at.is_null()).order_by(User.name)
              if subject.subordinates else [])
    choices += [(f"owner:{u.id}", u.name) for u in people]
    choices += [(f"team:{t.id}", _("Team: %(name)s", name=t.name)) for t in Team.select().order_by(Team.name)]
    choices += [(f"department:{d.id}", _("Department: %(name)s", name=d.name))
                for d in Department.select().where(Department.deleted_at.is_null()).order_by(Department.name)]
    choices.append(("all", _("Everyone I may see")))
    return choices


def scope_arguments(scope, user_id):
    """The service's scope arguments for a scope choice."""
    if scope == "all":
        return {}
    kind, _sep, raw = (scope or "").partition(":")
    number = _int(raw)
    if kind in ("owner", "team", "department") and number is not None:
        return {f"{kind}_id": number}
    return {"owner_id": user_id}


def stage_link(stage_id, arguments, pipeline_id):
    """The opportunity list filtered to the stage and the funnel's people."""
    query = {"pipeline_id": pipeline_id, "stage_id": stage_id}
    for name in ("owner_id", "department_id"):
        if arguments.get(name) is not None:
            query[name] = arguments[name]
    return f"{request.script_root}{OPPORTUNITY_LIST}?{urlencode(query)}"


def bar_widths(stages):
    """Each open stage's bar in percent of the widest (by count); a thin bar for none."""
    most = max([s["count"] for s in stages if s["kind"] == "open"] or [0])
    return {s["stage_id"]: (max(2.0, round(100.0 * s["count"] / most, 1)) if most else 2.0) for s in stages}


@blueprint.get("/funnel", endpoint="funnel")
def funnel_page():
    args = request.args
    scope = args.get("scope", "me")
    arguments = scope_arguments(scope, current_user.id)
    currency = (args.get("currency") or "").strip().upper() or None
    values = {"pipeline_id": _int(args.get("pipeline_id")), "currency": currency,
              "closed_from": _date(args.get("closed_from")), "closed_to": _date(args.get("closed_to"))}
    if args.get("dimension"):  # a report dimension's value (the pipeline analysis, a territory page)
        values.update(dimension=args["dimension"], value=args.get("value", ""))
    report, errors, status = None, {}, 200
    try:
        report = services.funnel(current_user.id, **arguments, **values)
    except UserError as problem:
        errors = {name: message for name, message in problem.fields.items()}
        if not errors:
            errors = {"currency": problem.message}
        status = 400 if problem.code in ("unknown_dimension", "hidden_field") else 422
    return render_template(
        "crm_core/funnel/funnel.html", report=report, errors=errors, scope=scope,
        scopes=scope_choices(current_user.id), form={**args, "currency": currency or ""},
        pipelines=Pipeline.alive().where(Pipeline.active == True).order_by(Pipeline.position, Pipeline.id),  # noqa: E712
        widths=bar_widths(report["stages"]) if report else {},
        link=lambda stage_id: stage_link(stage_id, arguments, report["pipeline_id"]),
        without_dimension=url_for("funnel.funnel", **{k: v for k, v in args.items() if k not in ("dimension", "value")}),
        percent=_percent), status


def _percent(fraction):
    from flask_babel import format_percent

    return "–" if fraction is None else format_percent(fraction, "#,##0.#%")


def dashboard_widget(actor):
    """The reader's own funnel on the dashboard (nothing without opportunities to read)."""
    if not engine().object_permissions(actor.id, "opportunity").read:
        return None
    try:
        report = services.funnel(actor.id, owner_id=actor.id)
    except UserError:  # no pipeline yet
        return None
    return Markup(render_template("crm_core/funnel/_widget.html", report=report,
                                  widths=bar_widths(report["stages"]),
                                  link=lambda stage_id: stage_link(stage_id, {"owner_id": actor.id},
                                                                   report["pipeline_id"]),
                                  percent=_percent))


# -- currency rates -----------------------------------------------------------------------------

def _may_manage():
    return engine().has_permission(current_user.id, "currency_rates.manage")


def _rates_page(form=None, errors=None, status=200):
    return render_template("crm_core/funnel/rates.html", rates=list(rates.rates()), form=form or {},
                           errors=errors or {}, may_manage=_may_manage(),
                           company_currency=rates.company_currency()), status


@rates_blueprint.get("", endpoint="list")
def rates_list():
    return _rates_page()


@rates_blueprint.post("")
def create_rate():
    if not _may_manage():
        abort(403)
    form = {name: request.form.get(name, "").strip() for name in ("currency", "rate", "valid_from")}
    try:
        rate = rates.create_rate(form, actor_id=current_user.id)
    except UserError as problem:
        return _rates_page(form, dict(problem.fields), 422)
    flash(_("The rate of %(currency)s from %(day)s has been saved.", currency=rate.currency,
            day=rate.valid_from.isoformat()), "success")
    return redirect(url_for("currency_rates.list"))


@rates_blueprint.post("/<int:rate_id>/delete")
def delete_rate(rate_id):
    if not _may_manage():
        abort(403)
    rate = CurrencyRate.get_or_none(CurrencyRate.id == rate_id)
    if rate is None:
        abort(404)
    rates.delete_rate(rate)
    flash(_("The rate has been deleted."), "success")
    return redirect(url_for("currency_rates.list"))
