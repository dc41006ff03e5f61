"""Pages of web-to-lead: the forms, a form's snippet and what visitors sent (for
administrators and holders of ``webforms.manage``)."""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.accounts.views import people
from crm_core.errors import UserError, VersionConflict
from crm_core.leads.views import SOURCES, campaign_choices
from crm_core.webforms import services
from crm_core.webforms.api import action_url
from crm_core.webforms.models import WebForm

blueprint = Blueprint("webforms", __name__, url_prefix="/web-forms")

FIELD_LABELS = {"first_name": _l("First name"), "last_name": _l("Last name"), "company": _l("Company"),
                "title": _l("Job title"), "email": _l("Email"), "phone": _l("Phone"),
                "mobile": _l("Mobile phone"), "country": _l("Country"), "region": _l("Region"),
                "city": _l("City"), "industry": _l("Industry"), "description": _l("Description")}
ASSIGN_CHOICES = (("owner", _l("The target owner")), ("rules", _l("By assignment rules")))
RESULT_LABELS = {"lead": _l("Lead created"), "spam": _l("Spam")}
SHOWN_SUBMISSIONS = 100


@blueprint.before_request
def _managers_only():
    if not services.may_manage(current_user.id):
        abort(403)


def _form_or_404(form_id):
    form = WebForm.alive().where(WebForm.id == form_id).first()
    if form is None:
        abort(404)
    return form


def field_labels():
    """The label of every field a form may ask, custom fields of leads included."""
    return {**FIELD_LABELS, **{name: spec.label() for name, spec in services.custom_specs().items()}}


def _values_from(form_data, editing):
    """What the page's inputs say, as the service's values."""
    asked = []
    for name in services.askable():
        if form_data.get(f"ask_{name}"):
            asked.append({"name": name, "label": form_data.get(f"label_{name}", "").strip(),
                          "required": bool(form_data.get(f"required_{name}"))})
    target = form_data.get("target_owner_id", "").strip()
    campaign = form_data.get("campaign_id", "").strip()
    values = {"name": form_data.get("name", ""), "assign_by": form_data.get("assign_by", "owner"),
              "target_owner_id": int(target) if target.isdigit() else None,
              "campaign_id": int(campaign) if campaign.isdigit() else None,
              "source": form_data.get("source") or None,
              "thank_you_url": form_data.get("thank_you_url", ""),
              "allowed_origins": form_data.get("allowed_origins", ""), "fields": asked}
    rate = form_data.get("rate_limit", "").strip()
    values["rate_limit"] = int(rate) if rate.isdigit() else -1
    if editing:
        values["active"] = bool(form_data.get("active"))
    return values


def _shown(form):
    """The page's inputs for a stored form (or the defaults of a new one)."""
    if form is None:
        return {"name": "", "assign_by": "owner", "target_owner_id": "", "campaign_id": "", "source": "web",
                "thank_you_url": "", "allowed_origins": "", "rate_limit": 20, "active": True,
                "asked": {"first_name": (str(FIELD_LABELS["first_name"]), False),
                          "last_name": (str(FIELD_LABELS["last_name"]), True),
                          "email": (str(FIELD_LABELS["email"]), True)}}
    return {"name": form.name, "assign_by": form.assign_by, "target_owner_id": form.target_owner_id or "",
            "campaign_id": form.campaign_id or "", "source": form.source,
            "thank_you_url": form.thank_you_url or "", "allowed_origins": form.allowed_origins or "",
            "rate_limit": form.rate_limit, "active": form.active,
            "asked": {f["name"]: (f["label"], f["required"]) for f in services.form_fields(form)}}


def _typed(form_data):
    """The page's inputs as typed (shown again with the errors)."""
    return {"name": form_data.get("name", ""), "assign_by": form_data.get("assign_by", "owner"),
            "target_owner_id": form_data.get("target_owner_id", ""),
            "campaign_id": form_data.get("campaign_id", ""), "source": form_data.get("source", ""),
            "thank_you_url": form_data.get("thank_you_url", ""),
            "allowed_origins": form_data.get("allowed_origins", ""),
            "rate_limit": form_data.get("rate_limit", ""), "active": bool(form_data.get("active")),
            "asked": {name: (form_data.get(f"label_{name}", ""), bool(form_data.get(f"required_{name}")))
                      for name in services.FIELDS if form_data.get(f"ask_{name}")}}


def _edit_page(record, shown, errors=None, status=200, conflict=False):
    return render_template(
        "crm_core/webforms/form.html", record=record, shown=shown, errors=errors or {},
        field_names=services.askable(), field_labels=field_labels(), assign_choices=ASSIGN_CHOICES,
        people=people(), campaigns=campaign_choices(), sources=SOURCES, conflict=conflict), status


def _messages(problem):
    return {name: str(message) for name, message in problem.fields.items()}


@blueprint.get("/", endpoint="list")
def list_forms():
    forms = list(WebForm.alive().order_by(WebForm.name, WebForm.id))
    counts = {form.id: services.submissions(form).count() for form in forms}
    return render_template("crm_core/webforms/list.html", forms=forms, counts=counts)


@blueprint.route("/new", methods=["GET", "POST"], endpoint="new")
def new_form():
    if request.method == "GET":
        return _edit_page(None, _shown(None))
    try:
        form = services.create_form(_values_from(request.form, False), actor_id=current_user.id)
    except UserError as problem:
        return _edit_page(None, _typed(request.form), _messages(problem), 422)
    flash(_("The web form “%(name)s” is ready: copy its snippet into your site.", name=form.name), "success")
    return redirect(url_for("webforms.detail", form_id=form.id))


@blueprint.route("/<int:form_id>/edit", methods=["GET", "POST"], endpoint="edit")
def edit_form(form_id):
    form = _form_or_404(form_id)
    if request.method == "GET":
        return _edit_page(form, _shown(form))
    version = request.form.get("version", "")
    try:
        services.update_form(form, _values_from(request.form, True), actor_id=current_user.id,
                             expected_version=int(version) if version.isdigit() else -1)
    except UserError as problem:
        return _edit_page(form, _typed(request.form), _messages(problem), 422)
    except VersionConflict:
        fresh = _form_or_404(form_id)
        return _edit_page(fresh, _typed(request.form), status=409, conflict=True)
    flash(_("The web form has been saved."), "success")
    return redirect(url_for("webforms.detail", form_id=form.id))


@blueprint.get("/<int:form_id>", endpoint="detail")
def detail(form_id):
    form = _form_or_404(form_id)
    result = request.args.get("result") if request.args.get("result") in RESULT_LABELS else None
    query = services.submissions(form, result)
    rows = [(s, json.loads(s.payload), services.visible_link(s, current_user.id))
            for s in query.limit(SHOWN_SUBMISSIONS)]
    return render_template("crm_core/webforms/detail.html", form=form, fields=services.form_fields(form),
                           field_labels=field_labels(), assign_choices=dict(ASSIGN_CHOICES),
                           sources=dict(SOURCES), people=dict(people()), campaigns=dict(campaign_choices()),
                           action=action_url(form), snippet=services.snippet(form, action_url(form)),
                           rows=rows, total=query.count(), result=result, result_labels=RESULT_LABELS)
