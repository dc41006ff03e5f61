"""The analysis pages under /reports: the pipeline by a dimension (with a bar chart and a
CSV/XLSX export), lost deals, velocity and the trend. Thin: the reports module computes,
over what the reader may see; these pages read the query string and render."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from crm_core import exports
from crm_core.analysis import reports, snapshots
from crm_core.analysis.dimensions import dimensions
from crm_core.errors import UserError
from crm_core.opportunities.models import STAGE_KINDS, Pipeline
from crm_core.org.models import Department
from crm_core.permissions import engine

blueprint = Blueprint("analysis", __name__, url_prefix="/reports")
STATUS_LABELS = {"open": _l("Open"), "won": _l("Won"), "lost": _l("Lost")}


@blueprint.before_request
@login_required
def _signed_in():
    if not engine().object_permissions(current_user.id, "opportunity").read:
        abort(403)
    return None


# -- the query string ----------------------------------------------------------------------------------

class Query:
    """The filters of a report page read from the query string, with a message per input
    that is not valid (the report then runs without that input)."""

    def __init__(self, args):
        self.args, self.errors = args, {}
        self.values = {"pipeline_id": self._int("pipeline_id"), "owner_id": self._int("owner_id"),
                       "department_id": self._int("department_id"),
                       "status": self._choice("status", STAGE_KINDS),
                       "date_from": self._date("date_from"), "date_to": self._date("date_to")}
        if self.values["date_from"] and self.values["date_to"] and self.values["date_from"] > self.values["date_to"]:
            self.errors["date_to"] = _("The end of the period comes before its start.")
            self.values["date_to"] = None

    def _int(self, name):
        raw = (self.args.get(name) or "").strip()
        if not raw:
            return None
        if raw.isdigit() and 0 < int(raw) < 2**31:
            return int(raw)
        self.errors[name] = _("Choose from the list.")
        return None

    def _choice(self, name, choices):
        raw = self.args.get(name) or None
        if raw is not None and raw not in choices:
            self.errors[name] = _("Choose from the list.")
            return None
        return raw

    def _date(self, name):
        raw = (self.args.get(name) or "").strip()
        if not raw:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            self.errors[name] = _("Enter a date such as 2026-03-31.")
            return None

    def filters(self, **overrides):
        return reports.Filters(**{**self.values, **overrides})

    def link_args(self):
        """The filters as they go back into links (the export, the chooser)."""
        return {name: value.isoformat() if isinstance(value, dt.date) else value
                for name, value in self.values.items() if value is not None}


def _choices():
    return {"pipelines": list(Pipeline.alive().order_by(Pipeline.position, Pipeline.id)
                              .select(Pipeline.id, Pipeline.name).tuples()),
            "departments": list(Department.alive().order_by(Department.name)
                                .select(Department.id, Department.name).tuples()),
            "statuses": STATUS_LABELS}


def _hidden_message(names):
    return _("Field security hides %(fields)s from you: choose another grouping.", fields=", ".join(names))


def _chart(rows, totals):
    """(currency, {row key: bar width in percent}) for the bar chart: the amounts in the
    currency most of the opportunities use (amounts of different currencies do not add)."""
    if not totals or all(entry["amount"] is None for entry in totals):
        return None, {}
    currency = max(totals, key=lambda entry: entry["count"])["currency"]
    amounts = {row["key"]: next((e["amount"] for e in row["totals"] if e["currency"] == currency), 0) or 0
               for row in rows}
    largest = max(amounts.values(), default=0)
    if not largest:
        return currency, {}
    return currency, {key: round(float(amount / largest * 100), 1) for key, amount in amounts.items()}


# -- pages -----------------------------------------------------------------------------------------------

@blueprint.get("/", endpoint="index")
def index():
    return redirect(url_for("analysis.pipeline"))


@blueprint.get("/pipeline", endpoint="pipeline")
def pipeline():
    known = dimensions()
    by = request.args.get("by") or "owner"
    query = Query(request.args)
    if by not in known:
        query.errors["by"] = _("Choose from the list.")
        by = "owner"
    report, status = None, 200
    hidden = reports.hidden_fields(current_user.id, known[by].fields)
    if hidden:
        query.errors["by"] = _hidden_message(hidden)
        status = 400
    else:
        report = reports.pipeline_report(current_user.id, by, query.filters())
        file_format = request.args.get("format")
        if file_format in exports.FORMATS:
            return _export(report, file_format)
    currency, bars = _chart(report["rows"], report["totals"]) if report else (None, {})
    return render_template("crm_core/analysis/pipeline.html", report=report, by=by,
                           dimension_options=[(key, spec.label) for key, spec in known.items()],
                           query=query, chart_currency=currency, bars=bars, **_choices()), status


def _export(report, file_format):
    header = [report["label"], _("Currency"), _("Opportunities"), _("Amount"), _("Weighted amount")]
    values = [[row["label"], entry["currency"], entry["count"], entry["amount"], entry["weighted_amount"]]
              for row in report["rows"] for entry in row["totals"]]
    data, _count = exports.write_table("pipeline_report", header, values, file_format, current_user.id)
    name = f"pipeline-by-{report['by']}-{dt.date.today().isoformat()}.{file_format}"
    return Response(data, mimetype=exports.FORMATS[file_format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@blueprint.get("/lost-deals", endpoint="lost_deals")
def lost_deals():
    by = request.args.get("by") or "reason"
    query = Query(request.args)
    if by not in reports.LOST_DIMENSIONS:
        query.errors["by"] = _("Choose from the list.")
        by = "reason"
    report, status = None, 200
    hidden = reports.hidden_fields(current_user.id, reports.LOST_FIELDS[by])
    if hidden:
        query.errors["by"] = _hidden_message(hidden)
        status = 400
    else:
        report = reports.lost_deals_report(current_user.id, by, query.filters(status=None))
    currency, bars = _chart(report["rows"], report["totals"]) if report else (None, {})
    return render_template("crm_core/analysis/lost_deals.html", report=report, by=by,
                           dimension_options=list(reports.LOST_DIMENSIONS.items()), query=query, chart_currency=currency, bars=bars,
                           **_choices()), status


@blueprint.get("/velocity", endpoint="velocity")
def velocity():
    query = Query(request.args)
    report = reports.velocity_report(current_user.id, query.filters(status=None))
    return render_template("crm_core/analysis/velocity.html", report=report, query=query, **_choices())


@blueprint.get("/trend", endpoint="trend")
def trend():
    query = Query(request.args)
    days = snapshots.snapshot_days()
    since = query._date("since")
    category = query._choice("category", list(snapshots.CATEGORIES))
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) <= 100000 else 1
    report, status = None, 200
    if since is None and days:
        since = days[min(6, len(days) - 1)]  # about a week back, when snapshots go back so far
    if since is not None:
        try:
            report = snapshots.trend_report(current_user.id, since, query.filters(status=None),
                                            category or "added", page, 50)
        except UserError as error:
            query.errors["since"] = str(error.message)
            status = 422
    return render_template("crm_core/analysis/trend.html", report=report, query=query, since=since, days=days,
                           categories=snapshots.CATEGORIES, **_choices()), status


# -- the panel on an opportunity's page -----------------------------------------------------------------

def stage_history_panel(actor, record):
    """The stage history of ``record`` for the opportunity page's record_panels slot (only
    for a reader who may see it)."""
    from markupsafe import Markup

    if actor is None or record is None or not engine().can(actor.id, record, "read"):
        return None
    return Markup(render_template("crm_core/analysis/_stage_history.html", moves=reports.stage_history(record),
                                  hide_amount=bool(reports.hidden_fields(actor.id, [("opportunity", "amount")]))))
