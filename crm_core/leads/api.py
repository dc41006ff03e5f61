"""API of campaigns and leads, under the access engine like every business record, and
``POST /leads/<id>/convert``."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.accounts.api import ACCOUNTS, CONTACTS, AccountSchema, ContactSchema
from crm_core.api import Blueprint, ListQuery, Schema, check_if_match, with_etag
from crm_core.api import access
from crm_core.api.fields import Amount, Currency
from crm_core.api.resources import ID, IF_MATCH, RecordSchema, Resource, may_change, register
from crm_core.api.resources import optional_text as _text
from crm_core.customfields.schema import CustomValues
from crm_core.leads import services
from crm_core.leads.models import CAMPAIGN_STATUSES, LEAD_RATINGS, LEAD_SOURCES, LEAD_STATUSES, Campaign, Lead


leads_blueprint = Blueprint("leads_api", __name__, url_prefix="/leads",
                            description="Leads: capture, qualification, conversion.")
campaigns_blueprint = Blueprint("campaigns_api", __name__, url_prefix="/campaigns",
                                description="Campaigns, with their cost.")


class CampaignSchema(RecordSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    owner_id = ma.fields.Integer(validate=ID)
    status = ma.fields.String(validate=ma.validate.OneOf(CAMPAIGN_STATUSES))
    channel = _text(50)
    start_date = ma.fields.Date(allow_none=True)
    end_date = ma.fields.Date(allow_none=True)
    currency = Currency(allow_none=True)
    cost = Amount(allow_none=True)
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=20000))


class CampaignPatchSchema(CampaignSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))


class LeadSchema(RecordSchema):
    owner_id = ma.fields.Integer(validate=ID)
    company = _text(200)
    first_name = _text(100)
    last_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    title = _text(100)
    email = _text(254)
    phone = _text(50)
    mobile = _text(50)
    country = _text(2)
    region = _text(100)
    city = _text(100)
    industry = _text(100)
    source = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(LEAD_SOURCES))
    campaign_id = ma.fields.Integer(allow_none=True, validate=ID)
    status = ma.fields.String(validate=ma.validate.OneOf(LEAD_STATUSES))
    rating = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(LEAD_RATINGS))
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=20000))
    converted_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    converted_account_id = ma.fields.Integer(dump_only=True, allow_none=True)
    converted_contact_id = ma.fields.Integer(dump_only=True, allow_none=True)
    custom = CustomValues("lead")
    external_id = ma.fields.String(dump_only=True, allow_none=True, metadata={
        "description": "the id in the system it was imported from (set by imports)"})


class LeadPatchSchema(LeadSchema):
    last_name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))


class ConvertOpportunitySchema(Schema):
    """The opportunity a conversion creates: all optional (the company's name, the default
    pipeline and its first open stage, the company's currency)."""

    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    amount = Amount(allow_none=True)
    currency = Currency()
    expected_close_date = ma.fields.Date(allow_none=True)
    pipeline_id = ma.fields.Integer(validate=ID)
    stage_id = ma.fields.Integer(validate=ID)
    probability = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=0, max=100))
    next_step = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300))


class ConvertSchema(Schema):
    account_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID,
                                   metadata={"description": "link to this account instead of a new one"})
    contact_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID,
                                   metadata={"description": "link to this contact instead of a new one"})
    create_opportunity = ma.fields.Boolean(load_default=True, metadata={
        "description": "false: no opportunity (by default the conversion creates one)"})
    opportunity = ma.fields.Nested(ConvertOpportunitySchema, load_default=dict, metadata={
        "description": "the new opportunity's values (campaign, source, owner and lead come from the lead)"})


class ConvertedOpportunitySchema(Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    name = ma.fields.String()
    account_id = ma.fields.Integer()
    contact_id = ma.fields.Integer(allow_none=True)
    owner_id = ma.fields.Integer()
    pipeline_id = ma.fields.Integer()
    stage_id = ma.fields.Integer()
    status = ma.fields.String()
    currency = ma.fields.String()
    amount = Amount(allow_none=True)
    probability = ma.fields.Integer()
    expected_close_date = ma.fields.Date(allow_none=True)
    source = ma.fields.String(allow_none=True)
    campaign_id = ma.fields.Integer(allow_none=True)
    lead_id = ma.fields.Integer(allow_none=True)


class ConversionSchema(Schema):
    lead = ma.fields.Nested(LeadSchema)
    account = ma.fields.Nested(AccountSchema)
    contact = ma.fields.Nested(ContactSchema)
    opportunity = ma.fields.Nested(ConvertedOpportunitySchema, allow_none=True)


def opportunity_out(record):
    return access.dump_visible("opportunity", ConvertedOpportunitySchema().dump(record)) if record else None


campaigns_list = ListQuery(
    "Campaign", sort={"id": Campaign.id, "name": Campaign.name, "start_date": Campaign.start_date,
                      "updated_at": Campaign.updated_at},
    filters={"status": (ma.fields.String(validate=ma.validate.OneOf(CAMPAIGN_STATUSES)), Campaign.status),
             "owner_id": (ma.fields.Integer(validate=ID), Campaign.owner_id)},
    default_sort="name")

leads_list = ListQuery(
    "Lead", sort={"id": Lead.id, "last_name": Lead.last_name, "company": Lead.company,
                  "created_at": Lead.created_at, "updated_at": Lead.updated_at},
    filters={"status": (ma.fields.String(validate=ma.validate.OneOf(LEAD_STATUSES)), Lead.status),
             "source": (ma.fields.String(validate=ma.validate.OneOf(LEAD_SOURCES)), Lead.source),
             "campaign_id": (ma.fields.Integer(validate=ID), Lead.campaign),
             "owner_id": (ma.fields.Integer(validate=ID), Lead.owner_id),
             "country": (ma.fields.String(), Lead.country)},
    default_sort="-created_at")


CAMPAIGNS = Resource("campaign", "campaigns", CampaignSchema, CampaignPatchSchema, campaigns_list,
                     services.create_campaign, services.update_campaign, services.delete_campaign)
LEADS = Resource("lead", "leads", LeadSchema, LeadPatchSchema, leads_list,
                 services.create_lead, services.update_lead, services.delete_lead,
                 checks_duplicates=True)
register(campaigns_blueprint, CAMPAIGNS)
register(leads_blueprint, LEADS)


@leads_blueprint.route("/<int:lead_id>/convert")
class LeadConvert(MethodView):
    @leads_blueprint.arguments(ConvertSchema)
    @leads_blueprint.response(200, ConversionSchema)
    @leads_blueprint.doc(**IF_MATCH)
    def post(self, data, lead_id):
        """Convert the lead into an account, a contact (linking to the given or matching
        ones) and an opportunity (unless declined), in one transaction; of two conversions of
        the same version, one wins, the other is a 412 and nothing of it is kept."""
        record = access.get_readable("lead", lead_id)
        may_change("lead", record, {"status": "converted"})
        for name in ("account", "contact"):
            access.require_object(name, "create" if data[f"{name}_id"] is None else "read")
        if data["create_opportunity"]:
            access.require_object("opportunity", "create")
            access.check_writable("opportunity", data["opportunity"])
        version = check_if_match(record)
        done = services.convert(record, actor_id=current_user.id, expected_version=version,
                                account_id=data["account_id"], contact_id=data["contact_id"],
                                opportunity=data["opportunity"] if data["create_opportunity"] else False)
        return with_etag(jsonify({"lead": LEADS.out(record), "account": ACCOUNTS.out(done.account),
                                  "contact": CONTACTS.out(done.contact),
                                  "opportunity": opportunity_out(done.opportunity)}), record)


class PurgeSchema(Schema):
    statuses = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(services.PURGEABLE)),
                              required=True, validate=ma.validate.Length(min=1))
    inactive_since = ma.fields.Date(required=True, metadata={
        "description": "leads unchanged since this day (UTC)"})
    expected_count = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0), metadata={
        "description": "the count the preview showed; without it, only a preview"})


class PurgeResultSchema(Schema):
    count = ma.fields.Integer()
    purged = ma.fields.Boolean()
    group_id = ma.fields.Integer(allow_none=True)
    sample = ma.fields.List(ma.fields.Nested(LeadSchema))


def purge_since(day):
    import datetime as dt

    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


@leads_blueprint.route("/purge")
class LeadPurge(MethodView):
    @leads_blueprint.arguments(PurgeSchema)
    @leads_blueprint.response(200, PurgeResultSchema)
    def post(self, data):
        """Purge inactive leads: without expected_count a preview (nothing written); with the
        preview's count, the leads go to the recycle bin as one deletion (409 when the set
        changed since the preview). Needs the permission leads.purge."""
        from crm_core.api.errors import ApiError
        from crm_core.permissions import engine

        if not engine().has_permission(current_user.id, "leads.purge"):
            raise ApiError(403)
        since = purge_since(data["inactive_since"])
        count, sample = services.purge_preview(current_user.id, data["statuses"], since)
        if data["expected_count"] is None:
            return jsonify({"count": count, "purged": False, "group_id": None,
                            "sample": [LEADS.out(lead) for lead in sample]})
        group = services.purge(current_user.id, data["statuses"], since, data["expected_count"])
        return jsonify({"count": data["expected_count"], "purged": True,
                        "group_id": group.id if group else None, "sample": []})
