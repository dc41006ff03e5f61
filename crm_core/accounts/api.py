"""API of accounts and contacts: every list, count, detail and change goes through the
access engine (a record the caller cannot read is a 404 like a missing one), fields
hidden from the caller are left out, and a field they may not edit is a 422."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.accounts import services
from crm_core.accounts.models import ACCOUNT_KINDS, Account, Contact
from crm_core.api import Blueprint, ListQuery, Schema
from crm_core.customfields.schema import CustomValues
from crm_core.api import access
from crm_core.api.resources import ID, RecordSchema, Resource, register
from crm_core.api.resources import optional_text as _text
from crm_core.api.fields import Amount, Currency


accounts_blueprint = Blueprint("accounts_api", __name__, url_prefix="/accounts",
                               description="Accounts: prospects, customers, resellers, vendors.")
contacts_blueprint = Blueprint("contacts_api", __name__, url_prefix="/contacts",
                               description="Contacts of accounts, with their org chart.")


# -- accounts ------------------------------------------------------------------------------------

class AccountSchema(RecordSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    kind = ma.fields.String(validate=ma.validate.OneOf(ACCOUNT_KINDS))
    owner_id = ma.fields.Integer(validate=ID)
    parent_id = ma.fields.Integer(allow_none=True, validate=ID)
    industry = _text(100)
    street = _text(300)
    city = _text(100)
    postal_code = _text(20)
    region = _text(100)
    country = _text(2)
    phone = _text(50)
    email = _text(254)
    website = _text(300)
    registration_number = _text(50)
    tax_id = _text(50)
    employees = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=0, max=10**9))
    currency = Currency(allow_none=True)
    credit_limit = Amount(allow_none=True)
    balance = Amount(allow_none=True)
    credit_rating = _text(20)
    legal_status = _text(100)
    financial_status = _text(20)
    became_customer_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=20000))
    custom = CustomValues("account")
    external_id = ma.fields.String(dump_only=True, allow_none=True, metadata={
        "description": "the id in the system it was imported from (set by imports)"})


class AccountPatchSchema(AccountSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))


accounts_list = ListQuery(
    "Account",
    sort={"id": Account.id, "name": Account.name, "created_at": Account.created_at,
          "updated_at": Account.updated_at, "country": Account.country, "industry": Account.industry},
    filters={"kind": (ma.fields.String(validate=ma.validate.OneOf(ACCOUNT_KINDS)), Account.kind),
             "owner_id": (ma.fields.Integer(validate=ID), Account.owner_id),
             "parent_id": (ma.fields.Integer(validate=ID), Account.parent),
             "industry": (ma.fields.String(), Account.industry),
             "country": (ma.fields.String(), Account.country)},
    default_sort="name")


def _account_out(record):
    return ACCOUNTS.out(record)


class OrgChartNodeSchema(Schema):
    contact = ma.fields.Dict()
    reports = ma.fields.List(ma.fields.Dict())


@accounts_blueprint.route("/<int:account_id>/org-chart")
class AccountOrgChart(MethodView):
    @accounts_blueprint.response(200, OrgChartNodeSchema(many=True))
    def get(self, account_id):
        """The account's contacts as a tree by reports-to (those the caller may see)."""
        account = access.get_readable("account", account_id)
        access.require_object("contact", "read")

        def node(item):
            return {"contact": _contact_out(item["contact"]),
                    "reports": [node(child) for child in item["reports"]]}

        return jsonify([node(item) for item in services.org_chart(account, current_user.id)])


# -- contacts -----------------------------------------------------------------------------------

class ContactSchema(RecordSchema):
    account_id = ma.fields.Integer(allow_none=True, validate=ID)
    owner_id = ma.fields.Integer(validate=ID)
    first_name = _text(100)
    last_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    salutation = _text(50)
    title = _text(100)
    department = _text(100)
    reports_to_id = ma.fields.Integer(allow_none=True, validate=ID)
    email = _text(254)
    phone = _text(50)
    mobile = _text(50)
    birthday = ma.fields.Date(allow_none=True)
    language = _text(10)
    interests = _text(500)
    family = _text(500)
    education = _text(300)
    preferred_channel = _text(20)
    do_not_call = ma.fields.Boolean()
    do_not_email = ma.fields.Boolean()
    notes = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=20000))
    custom = CustomValues("contact")
    external_id = ma.fields.String(dump_only=True, allow_none=True, metadata={
        "description": "the id in the system it was imported from (set by imports)"})


class ContactPatchSchema(ContactSchema):
    last_name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))


contacts_list = ListQuery(
    "Contact",
    sort={"id": Contact.id, "last_name": Contact.last_name, "first_name": Contact.first_name,
          "created_at": Contact.created_at, "updated_at": Contact.updated_at},
    filters={"account_id": (ma.fields.Integer(validate=ID), Contact.account),
             "owner_id": (ma.fields.Integer(validate=ID), Contact.owner_id),
             "email": (ma.fields.String(), Contact.email)},
    default_sort="last_name")


def _contact_out(record):
    return CONTACTS.out(record)


ACCOUNTS = Resource("account", "accounts", AccountSchema, AccountPatchSchema, accounts_list,
                    services.create_account, services.update_account, services.delete_account,
                    checks_duplicates=True)
CONTACTS = Resource("contact", "contacts", ContactSchema, ContactPatchSchema, contacts_list,
                    services.create_contact, services.update_contact, services.delete_contact,
                    checks_duplicates=True)
register(accounts_blueprint, ACCOUNTS)
register(contacts_blueprint, CONTACTS)
