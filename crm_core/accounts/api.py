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
from crm_core.api import Blueprint, ListQuery, Schema, check_if_match, page_schema, with_etag
from crm_core.api import access
from crm_core.api.export import EXPORT_DOC, export_response, export_schema
from crm_core.api.fields import Amount, Currency

ID = ma.validate.Range(min=1, max=2**63 - 1)
IF_MATCH = {"parameters": [{"in": "header", "name": "If-Match", "required": True,
                            "schema": {"type": "string"}}]}
IF_MATCH_OPTIONAL = {"parameters": [{"in": "header", "name": "If-Match", "required": False,
                                     "schema": {"type": "string"}}]}

accounts_blueprint = Blueprint("accounts_api", __name__, url_prefix="/accounts",
                               description="Accounts: prospects, customers, resellers, vendors.")
contacts_blueprint = Blueprint("contacts_api", __name__, url_prefix="/contacts",
                               description="Contacts of accounts, with their org chart.")


def _text(length, **kwargs):
    return ma.fields.String(allow_none=True, validate=ma.validate.Length(max=length), **kwargs)


# -- accounts ------------------------------------------------------------------------------------

class AccountSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)
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
    return access.dump_visible("account", AccountSchema().dump(record))


def _writable(name, data):
    access.check_writable(name, {key: value for key, value in data.items()})


@accounts_blueprint.route("")
class Accounts(MethodView):
    @accounts_blueprint.arguments(accounts_list.schema, location="query")
    @accounts_blueprint.response(200, page_schema(AccountSchema))
    def get(self, args):
        """The accounts the caller may see."""
        access.check_list_arguments("account", args, accounts_list)
        page = accounts_list.page(access.readable("account"), args)
        return jsonify({**page, "items": [_account_out(r) for r in page["items"]]})

    @accounts_blueprint.arguments(AccountSchema)
    @accounts_blueprint.response(201, AccountSchema)
    def post(self, data):
        """A new account (owned by the caller unless owner_id says otherwise)."""
        access.require_object("account", "create")
        _writable("account", data)
        record = services.create_account(data, actor_id=current_user.id)
        return with_etag(jsonify(_account_out(record)), record), 201


@accounts_blueprint.route("/export")
class AccountExport(MethodView):
    @accounts_blueprint.arguments(export_schema(accounts_list), location="query")
    @accounts_blueprint.doc(**EXPORT_DOC)
    def get(self, args):
        """The accounts the caller may see, as CSV or XLSX (the list's filters apply)."""
        return export_response("account", accounts_list, args, "accounts")


@accounts_blueprint.route("/<int:account_id>")
class AccountItem(MethodView):
    @accounts_blueprint.response(200, AccountSchema)
    def get(self, account_id):
        record = access.get_readable("account", account_id)
        return with_etag(jsonify(_account_out(record)), record)

    @accounts_blueprint.arguments(AccountPatchSchema)
    @accounts_blueprint.response(200, AccountSchema)
    @accounts_blueprint.doc(**IF_MATCH)
    def patch(self, data, account_id):
        record = access.get_readable("account", account_id)
        access.require_object("account", "update")
        access.require(record, "transfer" if "owner_id" in data and data["owner_id"] != record.owner_id
                       else "update")
        _writable("account", data)
        version = check_if_match(record)
        services.update_account(record, data, actor_id=current_user.id, expected_version=version)
        return with_etag(jsonify(_account_out(record)), record)

    @accounts_blueprint.response(204)
    @accounts_blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, account_id):
        """Into the recycle bin, with the account's contacts."""
        record = access.get_readable("account", account_id)
        access.require_object("account", "delete")
        access.require(record, "delete")
        services.delete_account(record, actor_id=current_user.id,
                                expected_version=_optional_version(record))


def _optional_version(record):
    from flask import request

    return check_if_match(record) if request.headers.get("If-Match") else None


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

class ContactSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)
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
    return access.dump_visible("contact", ContactSchema().dump(record))


@contacts_blueprint.route("")
class Contacts(MethodView):
    @contacts_blueprint.arguments(contacts_list.schema, location="query")
    @contacts_blueprint.response(200, page_schema(ContactSchema))
    def get(self, args):
        """The contacts the caller may see."""
        access.check_list_arguments("contact", args, contacts_list)
        if args.get("email"):
            args["email"] = args["email"].strip().lower()
        page = contacts_list.page(access.readable("contact"), args)
        return jsonify({**page, "items": [_contact_out(r) for r in page["items"]]})

    @contacts_blueprint.arguments(ContactSchema)
    @contacts_blueprint.response(201, ContactSchema)
    def post(self, data):
        access.require_object("contact", "create")
        _writable("contact", data)
        record = services.create_contact(data, actor_id=current_user.id)
        return with_etag(jsonify(_contact_out(record)), record), 201


@contacts_blueprint.route("/export")
class ContactExport(MethodView):
    @contacts_blueprint.arguments(export_schema(contacts_list), location="query")
    @contacts_blueprint.doc(**EXPORT_DOC)
    def get(self, args):
        """The contacts the caller may see, as CSV or XLSX (the list's filters apply)."""
        return export_response("contact", contacts_list, args, "contacts")


@contacts_blueprint.route("/<int:contact_id>")
class ContactItem(MethodView):
    @contacts_blueprint.response(200, ContactSchema)
    def get(self, contact_id):
        record = access.get_readable("contact", contact_id)
        return with_etag(jsonify(_contact_out(record)), record)

    @contacts_blueprint.arguments(ContactPatchSchema)
    @contacts_blueprint.response(200, ContactSchema)
    @contacts_blueprint.doc(**IF_MATCH)
    def patch(self, data, contact_id):
        record = access.get_readable("contact", contact_id)
        access.require_object("contact", "update")
        access.require(record, "transfer" if "owner_id" in data and data["owner_id"] != record.owner_id
                       else "update")
        _writable("contact", data)
        version = check_if_match(record)
        services.update_contact(record, data, actor_id=current_user.id, expected_version=version)
        return with_etag(jsonify(_contact_out(record)), record)

    @contacts_blueprint.response(204)
    @contacts_blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, contact_id):
        record = access.get_readable("contact", contact_id)
        access.require_object("contact", "delete")
        access.require(record, "delete")
        services.delete_contact(record, actor_id=current_user.id,
                                expected_version=_optional_version(record))
