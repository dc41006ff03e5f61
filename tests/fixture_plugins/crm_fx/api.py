"""An API on the access fixtures, written the way every business resource is: the
engine decides lists, counts, detail, changes, and field security."""

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import Blueprint, ListQuery, Schema, check_if_match, page_schema, with_etag
from crm_core.api import access
from crm_core.api.fields import Amount, Currency
from crm_core.records import create_record, update_record
from crm_fx.models import FxAccount

blueprint = Blueprint("fx_api", __name__, url_prefix="/accounts", description="Access fixture accounts.")


class FxAccountSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True)
    owner_id = ma.fields.Integer(load_default=None)
    industry = ma.fields.String(allow_none=True)
    amount = Amount(allow_none=True)
    currency = Currency(allow_none=True)


class FxAccountPatchSchema(Schema):
    name = ma.fields.String()
    industry = ma.fields.String(allow_none=True)
    amount = Amount(allow_none=True)
    currency = Currency(allow_none=True)


accounts = ListQuery("FxAccount", sort={"id": FxAccount.id, "name": FxAccount.name,
                                        "amount": FxAccount.amount},
                     filters={"industry": (ma.fields.String(), FxAccount.industry)})


def _out(record):
    return access.dump_visible("fx_account", FxAccountSchema().dump(record))


@blueprint.route("")
class Accounts(MethodView):
    @blueprint.arguments(accounts.schema, location="query")
    @blueprint.response(200, page_schema(FxAccountSchema))
    def get(self, args):
        access.check_list_arguments("fx_account", args, accounts)
        page = accounts.page(access.readable("fx_account"), args)
        return jsonify({**page, "items": [_out(r) for r in page["items"]]})

    @blueprint.arguments(FxAccountSchema)
    @blueprint.response(201, FxAccountSchema)
    def post(self, data):
        access.require_object("fx_account", "create")
        access.check_writable("fx_account", {k: v for k, v in data.items() if v is not None})
        data["owner_id"] = data.get("owner_id") or current_user.id
        return jsonify(_out(create_record(FxAccount, actor_id=current_user.id, **data))), 201


@blueprint.route("/<int:fx_account_id>")
class AccountItem(MethodView):
    @blueprint.response(200, FxAccountSchema)
    def get(self, fx_account_id):
        record = access.get_readable("fx_account", fx_account_id)
        return with_etag(jsonify(_out(record)), record)

    @blueprint.arguments(FxAccountPatchSchema)
    @blueprint.response(200, FxAccountSchema)
    @blueprint.doc(parameters=[{"in": "header", "name": "If-Match", "required": True,
                                "schema": {"type": "string"}}])
    def patch(self, data, fx_account_id):
        record = access.get_readable("fx_account", fx_account_id)
        access.require_object("fx_account", "update")
        access.require(record, "update")
        access.check_writable("fx_account", data)
        version = check_if_match(record)
        update_record(record, data, actor_id=current_user.id, expected_version=version)
        return with_etag(jsonify(_out(record)), record)
