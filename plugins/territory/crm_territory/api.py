"""The territory API: territories, members and models (under /api/v1/plugins/territory/).

Views parse and answer; ``crm_territory.services`` decides (a refused change is a 422, or a
409 for a name taken among siblings, a territory with territories below it, a rep already
in another territory). Every signed-in user may read models, territories and members (the
names and the tree, never the records placed in them: those follow the access engine);
changing them takes ``territory.manage``, except members: the manager of a territory (or
of one above it) may add and remove the members of its subtree. Changes of a model or a
territory name the version they were made on (``If-Match``: 428 without it, 412 when stale).
"""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, ListQuery, Schema, check_if_match, page_schema, with_etag
from crm_core.api.resources import ID, IF_MATCH, IF_MATCH_OPTIONAL, optional_version
from crm_core.permissions import engine
from crm_core.users.models import User
from crm_territory import services
from crm_territory.models import ACCESS_LEVELS, MODEL_STATES, Territory, TerritoryModel

blueprint = Blueprint("territory_api", __name__, url_prefix="",
                      description="Territories, their members and territory models.")


def require_manage():
    """403 unless the caller holds ``territory.manage``; returns the caller's id."""
    if not engine().has_permission(current_user.id, services.MANAGE):
        raise ApiError(403)
    return current_user.id


def _answer(payload, record, status=200):
    response = with_etag(jsonify(payload), record)
    response.status_code = status
    return response


def found(record):
    """``record``, or a 404 when the lookup found nothing (missing or deleted)."""
    if record is None:
        raise ApiError(404)
    return record


# -- models ---------------------------------------------------------------------------------------

class TerritoryModelSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=services.NAME_MAX))
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=services.DESCRIPTION_MAX))
    state = ma.fields.String(dump_only=True, metadata={"description": "planning, active or archived"})
    activated_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class TerritoryModelPatchSchema(Schema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=services.NAME_MAX))
    description = ma.fields.String(validate=ma.validate.Length(max=services.DESCRIPTION_MAX))


models_list = ListQuery("TerritoryModel", sort={"id": TerritoryModel.id, "name": TerritoryModel.name},
                        filters={"state": (ma.fields.String(validate=ma.validate.OneOf(MODEL_STATES)),
                                           TerritoryModel.state)},
                        default_sort="-id")


@blueprint.route("/models")
class Models(MethodView):
    @blueprint.arguments(models_list.schema, location="query")
    @blueprint.response(200, page_schema(TerritoryModelSchema))
    def get(self, args):
        """The territory models (planning, active, archived)."""
        return models_list.page(TerritoryModel.alive(), args)

    @blueprint.arguments(TerritoryModelSchema)
    @blueprint.response(201, TerritoryModelSchema)
    def post(self, data):
        """A new model, in planning. Needs ``territory.manage``."""
        actor = require_manage()
        model = services.create_model(data["name"], data["description"], actor_id=actor)
        return _answer(TerritoryModelSchema().dump(model), model, 201)


@blueprint.route("/models/<int:model_id>")
class ModelItem(MethodView):
    @blueprint.response(200, TerritoryModelSchema)
    def get(self, model_id):
        """One model; its version comes back as the ETag."""
        model = found(services.get_model(model_id))
        return _answer(TerritoryModelSchema().dump(model), model)

    @blueprint.arguments(TerritoryModelPatchSchema)
    @blueprint.response(200, TerritoryModelSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, model_id):
        """Rename a model or change its description. Needs ``territory.manage``."""
        actor = require_manage()
        model = found(services.get_model(model_id))
        version = check_if_match(model)
        services.update_model(model, data, actor_id=actor, expected_version=version)
        return _answer(TerritoryModelSchema().dump(model), model)

    @blueprint.response(204)
    @blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, model_id):
        """Delete a model in planning or archived, with its territories, members and
        placements (the active model: 422). Needs ``territory.manage``."""
        actor = require_manage()
        model = found(services.get_model(model_id))
        services.delete_model(model, actor_id=actor, expected_version=optional_version(model))


@blueprint.route("/models/<int:model_id>/activate")
class ModelActivation(MethodView):
    @blueprint.response(200, TerritoryModelSchema)
    @blueprint.doc(**IF_MATCH)
    def post(self, model_id):
        """The switch-over: this model (in planning) becomes the active one and the model
        active until now is archived, at once. Needs ``territory.manage``."""
        actor = require_manage()
        model = found(services.get_model(model_id))
        version = check_if_match(model)
        services.activate_model(model, actor_id=actor, expected_version=version)
        return _answer(TerritoryModelSchema().dump(model), model)


# -- territories ------------------------------------------------------------------------------------

class TerritorySchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    model_id = ma.fields.Integer(validate=ID, metadata={"description": "default: the active model"})
    parent_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=services.NAME_MAX))
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=services.DESCRIPTION_MAX))
    criteria = ma.fields.Dict(load_default=dict, metadata={
        "description": 'which accounts and leads belong: {"country": ["VN"], "region": [...], '
                       '"postal_code": [["70000", "79999"]], "industry": [...], '
                       '"employees": {"min": 10, "max": 500}, "custom.<key>": [...]}'})
    access_level = ma.fields.String(load_default="edit", validate=ma.validate.OneOf(ACCESS_LEVELS))
    manager_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID)
    position = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=2**31 - 1))
    path = ma.fields.List(ma.fields.String(), dump_only=True,
                          metadata={"description": "the names from the root down to this territory"})
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class TerritoryPatchSchema(Schema):
    parent_id = ma.fields.Integer(allow_none=True, validate=ID)
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=services.NAME_MAX))
    description = ma.fields.String(validate=ma.validate.Length(max=services.DESCRIPTION_MAX))
    criteria = ma.fields.Dict()
    access_level = ma.fields.String(validate=ma.validate.OneOf(ACCESS_LEVELS))
    manager_id = ma.fields.Integer(allow_none=True, validate=ID)
    position = ma.fields.Integer(validate=ma.validate.Range(min=0, max=2**31 - 1))


territories_list = ListQuery(
    "Territory", sort={"position": Territory.position, "name": Territory.name, "id": Territory.id},
    filters={"model_id": (ma.fields.Integer(validate=ID, metadata={
                 "description": "the model (default: the active one)"}), None),
             "parent_id": (ma.fields.Integer(validate=ID), Territory.parent_id)},
    default_sort="position")


def territory_out(territory, tree=None):
    data = TerritorySchema().dump({**territory.__data__, "criteria": services.criteria_of(territory)})
    data["path"] = (tree or services.tree(territory.model_id)).path(territory.id)
    return data


@blueprint.route("/territories")
class Territories(MethodView):
    @blueprint.arguments(territories_list.schema, location="query")
    @blueprint.response(200, page_schema(TerritorySchema))
    def get(self, args):
        """The territories of a model (``?model_id=``; by default the active model: an empty
        list when none is active), flat: ``parent_id`` links the tree."""
        model_id = args.get("model_id")
        if model_id is None:
            active = services.active_model()
            model_id = active.id if active is not None else None
        query = Territory.alive().where(Territory.model_id == model_id) if model_id is not None \
            else Territory.alive().where(Territory.id.is_null())
        page = territories_list.page(query, {**args, "model_id": None})  # applied above
        tree = services.tree(model_id) if model_id is not None else None
        page["items"] = [territory_out(t, tree) for t in page["items"]]
        return jsonify(page)

    @blueprint.arguments(TerritorySchema)
    @blueprint.response(201, TerritorySchema)
    def post(self, data):
        """A territory of a model (by default the active one), under ``parent_id`` (none: a
        root). Needs ``territory.manage``."""
        actor = require_manage()
        values = dict(data)
        if "model_id" not in values:
            active = services.active_model()
            values["model_id"] = active.id if active is not None else None
        territory = services.create_territory(actor_id=actor, **values)
        return _answer(territory_out(territory), territory, 201)


@blueprint.route("/territories/<int:territory_id>")
class TerritoryItem(MethodView):
    @blueprint.response(200, TerritorySchema)
    def get(self, territory_id):
        """One territory with its path; its version comes back as the ETag."""
        territory = found(services.get_territory(territory_id))
        return _answer(territory_out(territory), territory)

    @blueprint.arguments(TerritoryPatchSchema)
    @blueprint.response(200, TerritorySchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, territory_id):
        """Change a territory: move it (not under itself: 422), rename it, change its
        criteria, access level, manager or position. Needs ``territory.manage``."""
        actor = require_manage()
        territory = found(services.get_territory(territory_id))
        version = check_if_match(territory)
        services.update_territory(territory, data, actor_id=actor, expected_version=version)
        return _answer(territory_out(territory), territory)

    @blueprint.response(204)
    @blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, territory_id):
        """Delete a territory with its members; refused (409) while territories are below
        it or records were placed in it by hand. Needs ``territory.manage``."""
        actor = require_manage()
        territory = found(services.get_territory(territory_id))
        services.delete_territory(territory, actor_id=actor, expected_version=optional_version(territory))


# -- members ------------------------------------------------------------------------------------------

class TerritoryMemberSchema(Schema):
    user_id = ma.fields.Integer(required=True, validate=ID)
    name = ma.fields.String(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)


def members_out(rows):
    names = dict(User.select(User.id, User.name).where(User.id.in_([r.user_id for r in rows])).tuples()) \
        if rows else {}
    return TerritoryMemberSchema(many=True).dump(
        [{"user_id": r.user_id, "name": names.get(r.user_id, ""), "created_at": r.created_at} for r in rows])


def require_member_manager(territory):
    """403 unless the caller may change the territory's members."""
    if not services.may_manage_members(current_user.id, territory):
        raise ApiError(403)
    return current_user.id


@blueprint.route("/territories/<int:territory_id>/members")
class TerritoryMembers(MethodView):
    @blueprint.response(200, TerritoryMemberSchema(many=True))
    def get(self, territory_id):
        """The territory's members (its manager is not one of them)."""
        return jsonify(members_out(services.members_of(found(services.get_territory(territory_id)))))

    @blueprint.arguments(TerritoryMemberSchema)
    @blueprint.response(201, TerritoryMemberSchema)
    def post(self, data, territory_id):
        """Make a user a member (one territory per rep and model unless the setting
        ``several_territories_per_rep``: 409). Needs ``territory.manage``, or to manage
        this territory or one above it."""
        territory = found(services.get_territory(territory_id))
        actor = require_member_manager(territory)
        member = services.add_member(territory, data["user_id"], actor_id=actor)
        response = jsonify(members_out([member])[0])
        response.status_code = 201
        return response


@blueprint.route("/territories/<int:territory_id>/members/<int:user_id>")
class TerritoryMemberItem(MethodView):
    @blueprint.response(204)
    def delete(self, territory_id, user_id):
        """Take a user out of the territory (404 when they are not a member). Needs
        ``territory.manage``, or to manage this territory or one above it."""
        territory = found(services.get_territory(territory_id))
        actor = require_member_manager(territory)
        if not services.remove_member(territory, user_id, actor_id=actor):
            raise ApiError(404)


__all__ = ["blueprint", "territory_out", "members_out", "require_manage", "found"]
