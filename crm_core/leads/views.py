"""Pages of leads and campaigns (the shared record pages), and converting a lead."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.accounts.views import account_choices, people
from crm_core.errors import UserError, VersionConflict
from crm_core.leads import services
from crm_core.leads.models import Campaign, Lead
from crm_core.permissions import engine
from crm_core.web import record_pages as pages
from crm_core.web.record_pages import Input, RecordKind

blueprint = Blueprint("leads", __name__, url_prefix="/leads")
campaigns_blueprint = Blueprint("campaigns", __name__, url_prefix="/campaigns")

STATUSES = (("new", _l("New lead")), ("contacted", _l("Contacted")), ("qualified", _l("Qualified")),
            ("unqualified", _l("Unqualified")))
SOURCES = (("web", _l("Website")), ("referral", _l("Referral")), ("event", _l("Event")),
           ("phone", _l("Phone")), ("email", _l("Email")), ("partner", _l("Partner")),
           ("advertising", _l("Advertising")), ("other", _l("Other")))
RATINGS = (("hot", _l("Hot")), ("warm", _l("Warm")), ("cold", _l("Cold")))
CAMPAIGN_STATUSES = (("planned", _l("Planned")), ("active", _l("Active")),
                     ("completed", _l("Completed")), ("cancelled", _l("Cancelled")))


def campaign_choices():
    return [(c.id, c.name) for c in engine().query(current_user.id, "campaign", Campaign.id, Campaign.name)
            .order_by(Campaign.name).limit(1000)]


LEAD = RecordKind(
    name="lead", endpoint="leads", title=_l("Leads"), singular=_l("Lead"),
    inputs=(
        Input("company", _l("Company"), max_length=200),
        Input("first_name", _l("First name"), max_length=100),
        Input("last_name", _l("Last name"), required=True, max_length=100),
        Input("title", _l("Job title"), max_length=100),
        Input("status", _l("Status"), "choice", STATUSES, required=True),
        Input("rating", _l("Rating"), "choice", RATINGS),
        Input("source", _l("Source"), "choice", SOURCES),
        Input("campaign_id", _l("Campaign"), "reference"),
        Input("owner_id", _l("Owner"), "user"),
        Input("email", _l("Email"), "email", max_length=254),
        Input("phone", _l("Phone"), max_length=50),
        Input("mobile", _l("Mobile phone"), max_length=50),
        Input("industry", _l("Industry"), max_length=100),
        Input("city", _l("City"), max_length=100),
        Input("region", _l("Region"), max_length=100),
        Input("country", _l("Country"), "country"),
        Input("description", _l("Description"), "textarea", max_length=20000),
    ),
    columns=("company", "status", "source", "country", "owner_id"),
    create=services.create_lead, update=services.update_lead, delete=services.delete_lead,
    label_of=services.lead_name,
    search=lambda query, text: query.where(Lead.last_name.contains(text) | Lead.company.contains(text)
                                           | (Lead.email == text.lower())),
    sorts={"created_at": (_l("Created"), Lead.created_at), "name": (_l("Name"), Lead.last_name),
           "company": (_l("Company"), Lead.company)},
    default_sort="-created_at",
    choice_sources={"owner_id": people, "campaign_id": campaign_choices},
    extra_template="crm_core/leads/_lead_extra.html",
    list_links=(("leads.purge", _l("Purge inactive leads"), "leads.purge"),
                ("assignment.run", _l("Run the assignment rules"), "assignment.manage")),
)

CAMPAIGN = RecordKind(
    name="campaign", endpoint="campaigns", title=_l("Campaigns"), singular=_l("Campaign"),
    inputs=(
        Input("name", _l("Name"), required=True, max_length=200),
        Input("status", _l("Status"), "choice", CAMPAIGN_STATUSES, required=True),
        Input("channel", _l("Channel"), max_length=50, hint=_l("Trade fair, newsletter, online ads...")),
        Input("start_date", _l("Start"), "date"),
        Input("end_date", _l("End"), "date"),
        Input("currency", _l("Currency"), "currency", max_length=3),
        Input("cost", _l("Cost"), "money"),
        Input("owner_id", _l("Owner"), "user"),
        Input("description", _l("Description"), "textarea", max_length=20000),
    ),
    columns=("status", "channel", "start_date", "cost", "owner_id"),
    create=services.create_campaign, update=services.update_campaign, delete=services.delete_campaign,
    label_of=lambda campaign: campaign.name,
    search=lambda query, text: query.where(Campaign.name.contains(text)),
    sorts={"name": (_l("Name"), Campaign.name), "start_date": (_l("Start"), Campaign.start_date)},
    choice_sources={"owner_id": people},
)


def _lead_extra(lead):
    """The campaign link, and what a conversion would link to (among what the reader sees)."""
    access = engine()
    links = {}
    campaign = access.query(current_user.id, "campaign").where(
        Campaign.id == lead.campaign_id).first() if lead.campaign_id else None
    if campaign is not None:
        links["campaign_id"] = ("campaigns", campaign.id, campaign.name)
    account, contact = services.matches(lead, current_user.id)
    converted = {}
    if lead.status == "converted":
        for name, endpoint, column in (("account", "accounts", lead.converted_account_id),
                                       ("contact", "contacts", lead.converted_contact_id)):
            model = access.objects[name].model
            record = access.query(current_user.id, name).where(model.id == column).first() if column else None
            if record is not None:
                converted[name] = (endpoint, record.id, getattr(record, "name", None)
                                   or " ".join(p for p in (record.first_name, record.last_name) if p))
        from crm_core.opportunities.models import Opportunity

        deal = (access.query(current_user.id, "opportunity").where(Opportunity.lead == lead.id)
                .order_by(Opportunity.id).first())
        if deal is not None:
            # Linked once the opportunity pages are there (they come with their own module).
            endpoint = "opportunities" if "opportunities.detail" in current_app.view_functions else None
            converted["opportunity"] = (endpoint, deal.id, deal.name)
    can_convert = (lead.status not in ("converted", "unqualified")
                   and access.can(current_user.id, lead, "update"))
    can_create_deal = can_convert and access.object_permissions(current_user.id, "opportunity").create
    return {"links": links, "match_account": account, "match_contact": contact, "converted": converted,
            "can_convert": can_convert, "accounts": account_choices() if can_convert else [],
            "can_create_opportunity": can_create_deal,
            "stages": stage_choices() if can_create_deal else [],
            "currency": current_app.config.get("CRM_CURRENCY", "USD")}


def stage_choices():
    """[(pipeline name, [(stage id, stage name)])] of the open stages a new deal may start in."""
    from crm_core.opportunities import services as opportunities

    return [(pipeline.name, [(stage.id, stage.name) for stage in opportunities.stages(pipeline)
                             if stage.kind == "open"])
            for pipeline in opportunities.pipelines()]


def _opportunity_form(form):
    """The conversion form's opportunity values (False when declined): UserError on a
    value that cannot be read."""
    import datetime as dt
    import decimal

    from crm_core.opportunities.models import Stage

    if form.get("create_opportunity") != "1":
        return False
    values = {}
    if form.get("opportunity_name", "").strip():
        values["name"] = form["opportunity_name"].strip()
    amount = form.get("amount", "").strip().replace(" ", "").replace(",", ".")
    if amount:
        try:
            values["amount"] = decimal.Decimal(amount)
        except decimal.InvalidOperation:
            raise UserError(_l("Enter a number such as 1234.50."), field="amount")
        if not values["amount"].is_finite():
            raise UserError(_l("Enter a number such as 1234.50."), field="amount")
    if form.get("currency", "").strip():
        values["currency"] = form["currency"].strip().upper()
        if len(values["currency"]) != 3 or not values["currency"].isalpha():
            raise UserError(_l("Use a three-letter ISO 4217 currency code."), field="currency")
    if form.get("expected_close_date", "").strip():
        try:
            values["expected_close_date"] = dt.date.fromisoformat(form["expected_close_date"].strip())
        except ValueError:
            raise UserError(_l("Enter a date such as 2026-12-31."), field="expected_close_date")
    stage_id = form.get("stage_id", "")
    if stage_id.isdigit():
        stage = Stage.alive().where(Stage.id == int(stage_id)).first()
        if stage is None:
            raise UserError(_l("Choose a stage of the opportunity's pipeline."), field="stage_id")
        values["pipeline_id"], values["stage_id"] = stage.pipeline_id, stage.id
    return values


pages.register(blueprint, LEAD, _lead_extra, filters={"status": Lead.status, "source": Lead.source})
pages.register(campaigns_blueprint, CAMPAIGN, filters={"status": Campaign.status})


@blueprint.post("/<int:record_id>/convert", endpoint="convert")
def convert(record_id):
    lead = pages.readable_or_404(LEAD, record_id)
    pages.require_object(LEAD, "edit")
    if not engine().can(current_user.id, lead, "update"):
        abort(403)
    account_id = request.form.get("account_id", "").strip()
    try:
        opportunity = _opportunity_form(request.form)
        if opportunity is not False and not engine().object_permissions(current_user.id, "opportunity").create:
            abort(403)
        version = int(request.form.get("version", "0") or 0)
        done = services.convert(
            lead, actor_id=current_user.id, expected_version=version,
            account_id=int(account_id) if account_id.isdigit() else None, opportunity=opportunity)
    except UserError as problem:
        return pages.detail_page(LEAD, lead, _lead_extra(lead), status=422,
                                 action_error=str(problem.message))
    except VersionConflict:
        fresh = Lead.get_by_id(lead.id)
        return pages.detail_page(LEAD, fresh, _lead_extra(fresh), status=409, action_error=_(
            "Someone else changed or converted this lead in the meantime. Check it and try again."))
    flash(_("The lead has been converted into “%(name)s”.", name=done.account.name), "success")
    if done.opportunity is not None:
        flash(_("The opportunity “%(name)s” has been created.", name=done.opportunity.name), "success")
    return redirect(url_for("accounts.detail", record_id=done.account.id))


PURGE_STATUSES = tuple((key, label) for key, label in STATUSES if key in services.PURGEABLE)
PURGE_DEFAULT_DAYS = 180


@blueprint.route("/purge", methods=["GET", "POST"], endpoint="purge")
def purge():
    """Preview which inactive leads would go, then purge exactly those (into the bin)."""
    import datetime as dt

    from crm_core.leads.api import purge_since

    if not engine().has_permission(current_user.id, "leads.purge"):
        abort(403)
    default_day = (dt.date.today() - dt.timedelta(days=PURGE_DEFAULT_DAYS)).isoformat()
    form = {"statuses": request.form.getlist("statuses") if request.method == "POST" else ["unqualified"],
            "inactive_since": request.form.get("inactive_since", default_day).strip()}
    errors, preview, status = {}, None, 200
    if request.method == "POST":
        try:
            since = purge_since(dt.date.fromisoformat(form["inactive_since"]))
        except ValueError:
            since, errors["inactive_since"] = None, _("Enter a date such as 2026-12-31.")
        if since is not None:
            try:
                if request.form.get("expected_count", "").isdigit():
                    group = services.purge(current_user.id, form["statuses"], since,
                                           int(request.form["expected_count"]))
                    count = int(request.form["expected_count"])
                    flash(ngettext("%(num)s lead is in the recycle bin.",
                                   "%(num)s leads are in the recycle bin.", count), "success")
                    return redirect(url_for("leads.list") if group else url_for("leads.purge"))
                count, sample = services.purge_preview(current_user.id, form["statuses"], since)
                preview = {"count": count, "sample": sample}
            except UserError as problem:
                errors, status = dict(problem.fields), (409 if problem.code == "changed" else 422)
                if problem.code == "changed":
                    count, sample = services.purge_preview(current_user.id, form["statuses"], since)
                    preview = {"count": count, "sample": sample}
    return render_template("crm_core/leads/purge.html", form=form, errors=errors, preview=preview,
                           statuses=PURGE_STATUSES, name=services.lead_name), status
