"""API of duplicates: the rules (administrators), the check a client runs before saving,
the scan job, the groups found and "not a duplicate"; ``POST /accounts|contacts|leads/<id>/merge``;
``POST /transfers`` (mass transfer of ownership, preview first)."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.accounts.api import ACCOUNTS, CONTACTS, accounts_blueprint, contacts_blueprint
from crm_core.api import ApiError, Blueprint, Schema, check_if_match, with_etag
from crm_core.api import access
from crm_core.api.resources import ID, IF_MATCH
from crm_core.duplicates import check, merge as merging, rules, scan, transfer as transferring
from crm_core.leads.api import LEADS, leads_blueprint
from crm_core.web.auth import require_admin

blueprint = Blueprint("duplicates_api", __name__, url_prefix="/duplicates",
                      description="Duplicates: rules, the check on entry, the scan and its groups.")
transfers_blueprint = Blueprint("transfers_api", __name__, url_prefix="/transfers",
                                description="Mass transfer of ownership.")

OBJECTS = tuple(rules.OBJECTS)
RESOURCES = {"account": ACCOUNTS, "contact": CONTACTS, "lead": LEADS}


class RuleSchema(Schema):
    key = ma.fields.String(required=True, validate=ma.validate.OneOf(rules.KEYS))
    method = ma.fields.String(required=True, validate=ma.validate.OneOf(rules.METHODS))
    threshold = ma.fields.Integer(validate=ma.validate.Range(min=50, max=100))


class SettingsSchema(Schema):
    object = ma.fields.String(dump_only=True)
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(rules.MODES),
                            metadata={"description": "warn: 409 until confirmed; block: 422; off"})
    rules = ma.fields.List(ma.fields.Nested(RuleSchema), required=True)
    version = ma.fields.Integer(dump_only=True, metadata={"description": "0: the built-in defaults"})


class MatchSchema(Schema):
    id = ma.fields.Integer()
    label = ma.fields.String()
    reasons = ma.fields.List(ma.fields.String())
    score = ma.fields.Integer()


class CheckSchema(Schema):
    object = ma.fields.String(required=True, validate=ma.validate.OneOf(OBJECTS))
    values = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(max=64)),
                            values=ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300)),
                            required=True)
    record_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID,
                                  metadata={"description": "the record being edited (not its own duplicate)"})


class CheckResultSchema(Schema):
    duplicates = ma.fields.List(ma.fields.Nested(MatchSchema))


class ScanSchema(Schema):
    object = ma.fields.String(allow_none=True, load_default=None, validate=ma.validate.OneOf(OBJECTS))


class GroupsQuery(Schema):
    object = ma.fields.String(required=True, validate=ma.validate.OneOf(OBJECTS))


class PairSchema(Schema):
    id = ma.fields.Integer()
    low_id = ma.fields.Integer()
    high_id = ma.fields.Integer()
    reason = ma.fields.String()
    score = ma.fields.Integer()


class GroupSchema(Schema):
    records = ma.fields.List(ma.fields.Nested(MatchSchema))
    pairs = ma.fields.List(ma.fields.Nested(PairSchema))


class GroupsSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(GroupSchema))
    total = ma.fields.Integer()


def _settings_out(settings):
    return SettingsSchema().dump(settings.as_dict())


@blueprint.route("/settings")
class Settings(MethodView):
    @blueprint.response(200, SettingsSchema(many=True))
    def get(self):
        """Every object's duplicate rules and mode (administrators)."""
        require_admin()
        return jsonify([_settings_out(rules.settings_of(name)) for name in OBJECTS])


@blueprint.route("/settings/<string:object_name>")
class ObjectSettings(MethodView):
    @blueprint.response(200, SettingsSchema)
    def get(self, object_name):
        """One object's rules (administrators); the ETag is their version (0: defaults)."""
        require_admin()
        settings = _settings_of(object_name)
        response = jsonify(_settings_out(settings))
        response.headers["ETag"] = f'"{settings.version}"'
        return response

    @blueprint.arguments(SettingsSchema)
    @blueprint.response(200, SettingsSchema)
    @blueprint.doc(**IF_MATCH)
    def put(self, data, object_name):
        """Set an object's mode and rules (administrators; If-Match: their version)."""
        require_admin()
        current = _settings_of(object_name)
        version = check_if_match(current)
        saved = rules.save_settings(object_name, data["mode"], data["rules"], actor_id=current_user.id,
                                    expected_version=version)
        response = jsonify(_settings_out(saved))
        response.headers["ETag"] = f'"{saved.version}"'
        return response


def _settings_of(object_name):
    if object_name not in rules.OBJECTS:
        raise ApiError(404)
    return rules.settings_of(object_name)


@blueprint.route("/check")
class Check(MethodView):
    @blueprint.arguments(CheckSchema)
    @blueprint.response(200, CheckResultSchema)
    def post(self, data):
        """The records the given values may duplicate, among those the caller may see
        (what saving them would warn about), whatever the object's mode."""
        access.require_object(data["object"], "read")
        values = {key: value for key, value in data["values"].items() if isinstance(value, str)}
        matches = check.find_duplicates(data["object"], values, current_user.id, exclude_id=data["record_id"])
        return jsonify({"duplicates": [match.as_dict() for match in matches]})


@blueprint.route("/scan")
class Scan(MethodView):
    @blueprint.arguments(ScanSchema)
    @blueprint.response(202)
    def post(self, data):
        """Queue the scan of the whole base (one object or all) for duplicate pairs
        (administrators)."""
        from flask import current_app

        require_admin()
        current_app.extensions["crm_jobs"].enqueue("core.scan_duplicates", data["object"])
        return jsonify({"queued": True}), 202


@blueprint.route("/groups")
class Groups(MethodView):
    @blueprint.arguments(GroupsQuery, location="query")
    @blueprint.response(200, GroupsSchema)
    def get(self, args):
        """The open duplicate groups of an object among the records the caller may see."""
        name = args["object"]
        access.require_object(name, "read")
        spec = rules.spec_of(name)
        found = scan.groups(name, current_user.id)
        return jsonify({"total": len(found), "items": [{
            "records": [{"id": r.id, "label": spec.label_of(r), "reasons": [], "score": 100}
                        for r in group["records"]],
            "pairs": [PairSchema().dump(pair) for pair in group["pairs"]]} for group in found[:200]]})


@blueprint.route("/pairs/<int:pair_id>/dismiss")
class Dismiss(MethodView):
    @blueprint.response(204)
    def post(self, pair_id):
        """"Not a duplicate": the pair is never proposed again (the caller must see both
        records and may edit records of the object)."""
        pair = readable_pair(pair_id)
        access.require_object(pair.object, "update")
        scan.dismiss(pair, current_user.id)
        return "", 204


def readable_pair(pair_id):
    from crm_core.duplicates.models import DuplicatePair
    from crm_core.permissions import engine

    pair = DuplicatePair.get_or_none(DuplicatePair.id == pair_id)
    if pair is None or pair.dismissed_at is not None:
        raise ApiError(404)
    access.require_object(pair.object, "read")
    model = engine().objects[pair.object].model
    seen = engine().query(current_user.id, pair.object, model.id).where(
        model.id.in_([pair.low_id, pair.high_id])).count()
    if seen != 2:
        raise ApiError(404)  # a pair through a record the caller cannot see does not exist for them
    return pair


# -- merge ---------------------------------------------------------------------------------------

class MergeSchema(Schema):
    other_id = ma.fields.Integer(required=True, validate=ID, metadata={
        "description": "the record merged away (into the recycle bin)"})
    other_version = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1), metadata={
        "description": "the version of the other record the caller saw"})
    take = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=64)), load_default=list,
                          metadata={"description": "fields whose value comes from the other record"})


def merge_view(name, data, record_id):
    """One merge through the API: the survivor in the path (If-Match: its version), the
    other in the body (with its version); EDIT on the survivor, DELETE on the other."""
    from crm_core.api.errors import ApiError as Error
    from crm_core.permissions import engine

    resource = RESOURCES[name]
    survivor = access.get_readable(name, record_id)
    access.require_object(name, "update")
    access.require_object(name, "delete")
    model = engine().objects[name].model
    other = engine().query(current_user.id, name).where(model.id == data["other_id"]).first()
    if other is None:
        raise Error(422, fields={"other_id": [str(_no_such())]})
    access.require(survivor, "update")
    access.require(other, "delete")
    access.check_writable(name, {key: None for key in data["take"]})
    if "owner_id" in data["take"] and other.owner_id != survivor.owner_id:
        access.require(survivor, "transfer")
    version = check_if_match(survivor)
    merging.merge(name, survivor, other, actor_id=current_user.id, survivor_version=version,
                  other_version=data["other_version"], take=data["take"])
    return with_etag(jsonify(resource.out(survivor)), survivor)


def _no_such():
    from flask_babel import lazy_gettext as _l

    return _l("No such record.")


def _merge_route(bp, name, plural):
    class Merge(MethodView):
        @bp.arguments(MergeSchema)
        @bp.response(200, RESOURCES[name].schema)
        @bp.doc(**IF_MATCH)
        def post(self, data, **ids):
            return merge_view(name, data, ids[f"{name}_id"])

    Merge.post.__doc__ = (f"Merge another of the {plural} into this one (If-Match: this one's version): "
                          "chosen values from the other, everything attached moves here, the other "
                          "goes to the recycle bin.")
    Merge.__name__ = f"{name.title()}Merge"
    bp.route(f"/<int:{name}_id>/merge")(Merge)


_merge_route(accounts_blueprint, "account", "accounts")
_merge_route(contacts_blueprint, "contact", "contacts")
_merge_route(leads_blueprint, "lead", "leads")


# -- mass transfer -------------------------------------------------------------------------------

class TransferSchema(Schema):
    object = ma.fields.String(required=True, validate=ma.validate.OneOf(transferring.TRANSFERABLE))
    ids = ma.fields.List(ma.fields.Integer(validate=ID), load_default=None,
                         validate=ma.validate.Length(min=1, max=transferring.MAX_IDS))
    from_owner_id = ma.fields.Integer(load_default=None, validate=ID, metadata={
        "description": "the records of this owner (with ids: those of them)"})
    to_owner_id = ma.fields.Integer(required=True, validate=ID)
    expected_count = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0), metadata={
        "description": "the count the preview showed; without it, only a preview"})
    with_opportunities = ma.fields.Boolean(load_default=False, metadata={
        "description": "accounts only: their open opportunities owned by the account's owner go too"})


class TransferResultSchema(Schema):
    count = ma.fields.Integer()
    transferred = ma.fields.Boolean()
    sample = ma.fields.List(ma.fields.Dict())
    opportunities = ma.fields.Integer(metadata={
        "description": "with with_opportunities: the open opportunities that go (went) along"})


def _sample_out(name, record):
    if name in RESOURCES:
        return RESOURCES[name].out(record)
    # Opportunities: what a transfer preview needs, within the field-level rules.
    return access.dump_visible(name, {"id": record.id, "name": record.name, "owner_id": record.owner_id,
                                      "account_id": record.account_id, "status": record.status})


@transfers_blueprint.route("")
class Transfers(MethodView):
    @transfers_blueprint.arguments(TransferSchema)
    @transfers_blueprint.response(200, TransferResultSchema)
    def post(self, data):
        """Give records to another user: without expected_count a preview (how many the caller
        may transfer, nothing written); with the preview's count, the transfer (409 when the
        set changed). Only records the caller may transfer are counted and moved."""
        name = data["object"]
        access.require_object(name, "update")
        along = data["with_opportunities"]
        if along:
            access.require_object("opportunity", "update")
        args = dict(ids=data["ids"], from_owner_id=data["from_owner_id"])
        count, sample = transferring.preview(current_user.id, name, data["to_owner_id"],
                                             with_opportunities=along, **args)
        extra = {}
        if data["expected_count"] is None:
            if along:
                extra["opportunities"] = transferring.opportunities_count(current_user.id, data["to_owner_id"],
                                                                          **args)
            return jsonify({"count": count, "transferred": False,
                            "sample": [_sample_out(name, record) for record in sample], **extra})
        moved = transferring.transfer(current_user.id, name, data["to_owner_id"], data["expected_count"],
                                      with_opportunities=along, **args)
        if along:
            extra["opportunities"] = moved.opportunities
        return jsonify({"count": moved.count, "transferred": True, "sample": [], **extra})


__all__ = ["blueprint", "transfers_blueprint"]
