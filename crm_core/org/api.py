"""API for administrators: departments, teams, roles, object permissions, org-wide
defaults, sharing rules, record shares, and why a user can see a record."""

from __future__ import annotations

import json

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, ListQuery, Schema, check_if_match, page_schema, with_etag
from crm_core.org import services
from crm_core.org.models import (TARGET_TYPES, AccessDefault, Department, RecordShare, Role,
                                 RolePermission, SharingRule, Team, TeamMember)
from crm_core.permissions import DEFAULT_LEVELS, Level, engine
from crm_core.records import soft_delete, update_record
from crm_core.users.services import UserError
from crm_core.web.auth import require_admin

ID_RANGE = ma.validate.Range(min=1, max=2**63 - 1)
blueprint = Blueprint("org_api", __name__, description="Organisation and access (administrators).")

LEVEL_NAMES = {"read": Level.READ, "edit": Level.EDIT}


def _admin():
    require_admin()
    return current_user.id


def _user_error(problem):
    return ApiError(422, problem.code, fields={problem.field or "_schema": [str(problem.message)]})


def _get(model, record_id):
    record = model.get_or_none((model.id == record_id) & model.deleted_at.is_null()) \
        if hasattr(model, "deleted_at") else model.get_or_none(model.id == record_id)
    if record is None:
        raise ApiError(404)
    return record


# -- departments --------------------------------------------------------------------------

class DepartmentSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    parent_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID_RANGE)
    head_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID_RANGE)


class DepartmentPatchSchema(Schema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    parent_id = ma.fields.Integer(allow_none=True, validate=ID_RANGE)
    head_id = ma.fields.Integer(allow_none=True, validate=ID_RANGE)


departments_list = ListQuery("Department", sort={"id": Department.id, "name": Department.name},
                             filters={"parent_id": (ma.fields.Integer(), Department.parent)},
                             default_sort="name")


def _check_refs(parent_id=None, head_id=None):
    from crm_core.users.models import User

    if parent_id is not None and not Department.alive().where(Department.id == parent_id).exists():
        raise ApiError(422, fields={"parent_id": [str(_l("No such department."))]})
    if head_id is not None and not User.select().where(User.id == head_id).exists():
        raise ApiError(422, fields={"head_id": [str(_l("No such user."))]})


@blueprint.route("/departments")
class Departments(MethodView):
    @blueprint.arguments(departments_list.schema, location="query")
    @blueprint.response(200, page_schema(DepartmentSchema))
    def get(self, args):
        """The department tree, flat (parent_id links it)."""
        return departments_list.page(Department.alive(), args)

    @blueprint.arguments(DepartmentSchema)
    @blueprint.response(201, DepartmentSchema)
    def post(self, data):
        actor = _admin()
        _check_refs(data["parent_id"], data["head_id"])
        return services.create_department(data["name"], data["parent_id"], data["head_id"], actor_id=actor)


@blueprint.route("/departments/<int:department_id>")
class DepartmentItem(MethodView):
    @blueprint.response(200, DepartmentSchema)
    def get(self, department_id):
        department = _get(Department, department_id)
        return with_etag(jsonify(DepartmentSchema().dump(department)), department)

    @blueprint.arguments(DepartmentPatchSchema)
    @blueprint.response(200, DepartmentSchema)
    @blueprint.doc(parameters=[{"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"}}])
    def patch(self, data, department_id):
        actor = _admin()
        department = _get(Department, department_id)
        version = check_if_match(department)
        _check_refs(data.get("parent_id"), data.get("head_id"))
        try:
            if "parent_id" in data:
                services.move_department(department, data.pop("parent_id"), actor_id=actor)
                version = department.version
            changes = {key.removesuffix("_id") if key == "head_id" else key: value
                       for key, value in data.items()}
            update_record(department, changes, actor_id=actor, expected_version=version)
        except UserError as problem:
            raise _user_error(problem)
        return with_etag(jsonify(DepartmentSchema().dump(department)), department)

    @blueprint.response(204)
    def delete(self, department_id):
        _admin()
        department = _get(Department, department_id)
        if Department.alive().where(Department.parent == department.id).exists():
            raise ApiError(409, "has_children", fields={"_schema": [str(_l("Move or delete the departments below first."))]})
        soft_delete(department, actor_id=current_user.id)


# -- teams ----------------------------------------------------------------------------------

class TeamSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    member_ids = ma.fields.List(ma.fields.Integer(validate=ID_RANGE), load_default=list)


def _check_members(member_ids):
    from crm_core.users.models import User

    known = {uid for (uid,) in User.select(User.id).where(User.id.in_(member_ids)).tuples()}
    if set(member_ids) - known:
        raise ApiError(422, fields={"member_ids": [str(_l("No such user."))]})


def _team_out(team):
    members = [m for (m,) in TeamMember.select(TeamMember.user).where(TeamMember.team == team).tuples()]
    return {"id": team.id, "version": team.version, "name": team.name, "member_ids": sorted(members)}


@blueprint.route("/teams")
class Teams(MethodView):
    @blueprint.response(200, TeamSchema(many=True))
    def get(self):
        return [_team_out(t) for t in Team.alive().order_by(Team.name)]

    @blueprint.arguments(TeamSchema)
    @blueprint.response(201, TeamSchema)
    def post(self, data):
        actor = _admin()
        if Team.select().where(Team.name == data["name"]).exists():
            raise ApiError(409, "duplicate", fields={"name": [str(_l("A team with this name already exists."))]})
        _check_members(data["member_ids"])
        return _team_out(services.create_team(data["name"], data["member_ids"], actor_id=actor))


class TeamPatchSchema(Schema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    member_ids = ma.fields.List(ma.fields.Integer(validate=ID_RANGE))


@blueprint.route("/teams/<int:team_id>")
class TeamItem(MethodView):
    @blueprint.arguments(TeamPatchSchema)
    @blueprint.response(200, TeamSchema)
    def patch(self, data, team_id):
        actor = _admin()
        team = _get(Team, team_id)
        if "name" in data:
            update_record(team, {"name": data["name"]}, actor_id=actor)
        if "member_ids" in data:
            _check_members(data["member_ids"])
            services.set_team_members(team, data["member_ids"])
        return _team_out(team)


# -- roles and object permissions ------------------------------------------------------------

class PermissionSchema(Schema):
    object = ma.fields.String(required=True)
    create = ma.fields.Boolean(load_default=False)
    read = ma.fields.Boolean(load_default=False)
    edit = ma.fields.Boolean(load_default=False)
    delete = ma.fields.Boolean(load_default=False)
    view_all = ma.fields.Boolean(load_default=False)
    modify_all = ma.fields.Boolean(load_default=False)


class RoleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    key = ma.fields.String(dump_only=True, allow_none=True)
    permissions = ma.fields.List(ma.fields.Nested(PermissionSchema), dump_only=True)


def _role_out(role):
    rows = RolePermission.select().where(RolePermission.role == role).order_by(RolePermission.object)
    return {"id": role.id, "name": role.name, "key": role.key, "permissions": [
        {"object": r.object, "create": r.can_create, "read": r.can_read, "edit": r.can_edit,
         "delete": r.can_delete, "view_all": r.view_all, "modify_all": r.modify_all} for r in rows]}


@blueprint.route("/roles")
class Roles(MethodView):
    @blueprint.response(200, RoleSchema(many=True))
    def get(self):
        _admin()
        return [_role_out(r) for r in Role.alive().order_by(Role.name)]

    @blueprint.arguments(RoleSchema)
    @blueprint.response(201, RoleSchema)
    def post(self, data):
        actor = _admin()
        if Role.select().where(Role.name == data["name"]).exists():
            raise ApiError(409, "duplicate", fields={"name": [str(_l("A role with this name already exists."))]})
        from crm_core.records import create_record

        return _role_out(create_record(Role, actor_id=actor, name=data["name"]))


@blueprint.route("/roles/<int:role_id>/permissions")
class RolePermissions(MethodView):
    @blueprint.arguments(PermissionSchema)
    @blueprint.response(200, RoleSchema)
    def put(self, data, role_id):
        """Set one object's permissions for the role."""
        actor = _admin()
        role = _get(Role, role_id)
        name = data.pop("object")
        if name not in engine().objects:
            raise ApiError(422, fields={"object": [str(_l("No such kind of record."))]})
        services.set_object_permissions(role, name, actor_id=actor, **data)
        return _role_out(role)


class GrantsSchema(Schema):
    permissions = ma.fields.List(ma.fields.String(), required=True)


@blueprint.route("/roles/<int:role_id>/grants")
class RoleGrants(MethodView):
    @blueprint.response(200, GrantsSchema)
    def get(self, role_id):
        """The named permissions the role holds."""
        from crm_core.org.models import RoleGrant

        _admin()
        role = _get(Role, role_id)
        return {"permissions": sorted(p for (p,) in RoleGrant.select(RoleGrant.permission)
                                      .where(RoleGrant.role == role).tuples())}

    @blueprint.arguments(GrantsSchema)
    @blueprint.response(200, GrantsSchema)
    def put(self, data, role_id):
        """Set exactly these named permissions for the role."""
        actor = _admin()
        role = _get(Role, role_id)
        unknown = sorted(set(data["permissions"]) - set(engine().permissions))
        if unknown:
            raise ApiError(422, fields={"permissions": [
                str(_l("No such permission: %(names)s.", names=", ".join(unknown)))]})
        services.set_role_grants(role, data["permissions"], actor_id=actor)
        return {"permissions": sorted(set(data["permissions"]))}


# -- org-wide defaults ----------------------------------------------------------------------------

class DefaultSchema(Schema):
    object = ma.fields.String(dump_only=True)
    access = ma.fields.String(required=True, validate=ma.validate.OneOf(list(DEFAULT_LEVELS)))
    managers_inherit = ma.fields.Boolean(load_default=True)


@blueprint.route("/access/defaults")
class Defaults(MethodView):
    @blueprint.response(200, DefaultSchema(many=True))
    def get(self):
        _admin()
        stored = {row.object: row for row in AccessDefault.select()}
        return [{"object": name, "access": stored[name].access if name in stored else "private",
                 "managers_inherit": stored[name].managers_inherit if name in stored else True}
                for name in sorted(engine().objects)]


@blueprint.route("/access/defaults/<string:object_name>")
class DefaultItem(MethodView):
    @blueprint.arguments(DefaultSchema)
    @blueprint.response(200, DefaultSchema)
    def put(self, data, object_name):
        actor = _admin()
        if object_name not in engine().objects:
            raise ApiError(404)
        services.set_default(object_name, data["access"], data["managers_inherit"], actor_id=actor)
        return {"object": object_name, **data}


# -- sharing rules and shares ----------------------------------------------------------------------

class SharingRuleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    object = ma.fields.String(required=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    source_type = ma.fields.String(allow_none=True, load_default=None, validate=ma.validate.OneOf(TARGET_TYPES))
    source_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID_RANGE)
    field = ma.fields.String(allow_none=True, load_default=None)
    values = ma.fields.List(ma.fields.String(), allow_none=True, load_default=None)
    target_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TARGET_TYPES))
    target_id = ma.fields.Integer(required=True, validate=ID_RANGE)
    level = ma.fields.String(required=True, validate=ma.validate.OneOf(list(LEVEL_NAMES)))


def _rule_out(rule):
    return {"id": rule.id, "object": rule.object, "name": rule.name, "source_type": rule.source_type,
            "source_id": rule.source_id, "field": rule.field,
            "values": json.loads(rule.values) if rule.values else None,
            "target_type": rule.target_type, "target_id": rule.target_id,
            "level": {v: k for k, v in LEVEL_NAMES.items()}[Level(rule.level)]}


@blueprint.route("/access/sharing-rules")
class SharingRules(MethodView):
    @blueprint.response(200, SharingRuleSchema(many=True))
    def get(self):
        _admin()
        return [_rule_out(r) for r in SharingRule.alive().order_by(SharingRule.object, SharingRule.id)]

    @blueprint.arguments(SharingRuleSchema)
    @blueprint.response(201, SharingRuleSchema)
    def post(self, data):
        actor = _admin()
        if data["object"] not in engine().objects:
            raise ApiError(422, fields={"object": [str(_l("No such kind of record."))]})
        if data["field"] and not hasattr(engine().objects[data["object"]].model, data["field"]):
            raise ApiError(422, fields={"field": [str(_l("No such field."))]})
        try:
            rule = services.create_sharing_rule(
                data["object"], data["name"], data["target_type"], data["target_id"],
                LEVEL_NAMES[data["level"]], data["source_type"], data["source_id"], data["field"],
                data["values"], actor_id=actor)
        except UserError as problem:
            raise _user_error(problem)
        return _rule_out(rule)


@blueprint.route("/access/sharing-rules/<int:rule_id>")
class SharingRuleItem(MethodView):
    @blueprint.response(204)
    def delete(self, rule_id):
        actor = _admin()
        soft_delete(_get(SharingRule, rule_id), actor_id=actor)


class ExplainSchema(Schema):
    level = ma.fields.String()
    reasons = ma.fields.List(ma.fields.Dict())


class ExplainQuerySchema(Schema):
    user_id = ma.fields.Integer(required=True)
    object = ma.fields.String(required=True)
    record_id = ma.fields.Integer(required=True)
    lang = ma.fields.String(load_default=None, load_only=True)


@blueprint.route("/access/explain")
class Explain(MethodView):
    @blueprint.arguments(ExplainQuerySchema, location="query")
    @blueprint.response(200, ExplainSchema)
    def get(self, args):
        """Why (and how far) a user can see a record: the level and every reason."""
        _admin()
        access = engine()
        if args["object"] not in access.objects:
            raise ApiError(404)
        model = access.objects[args["object"]].model
        record = model.get_or_none(model.id == args["record_id"])
        if record is None:
            raise ApiError(404)
        level, reasons = access.explain(args["user_id"], record)
        return {"level": level.name.lower(),
                "reasons": [{"level": r.level.name.lower(), "code": r.code, "detail": r.detail}
                            for r in reasons]}


class ShareSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    object = ma.fields.String(required=True)
    record_id = ma.fields.Integer(required=True)
    target_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TARGET_TYPES))
    target_id = ma.fields.Integer(required=True)
    level = ma.fields.String(required=True, validate=ma.validate.OneOf(list(LEVEL_NAMES)))


def _record_for_sharing(object_name, record_id):
    """The record, if the caller may share it (ALL: owner, managers, administrators).
    A record the caller cannot read is a 404, like a missing one."""
    access = engine()
    if object_name not in access.objects:
        raise ApiError(404)
    model = access.objects[object_name].model
    record = model.get_or_none(model.id == record_id)
    if record is None or access.level(current_user.id, record) < Level.READ:
        raise ApiError(404)
    if not access.can(current_user.id, record, "share"):
        raise ApiError(403)
    return record


@blueprint.route("/access/shares")
class Shares(MethodView):
    @blueprint.arguments(ShareSchema)
    @blueprint.response(201, ShareSchema)
    def post(self, data):
        """Share one record with a user, team or department (needs full access to it)."""
        _record_for_sharing(data["object"], data["record_id"])
        try:
            share = services.share_record(data["object"], data["record_id"], data["target_type"],
                                          data["target_id"], LEVEL_NAMES[data["level"]],
                                          actor_id=current_user.id)
        except UserError as problem:
            raise _user_error(problem)
        return {**data, "id": share.id}


@blueprint.route("/access/shares/<int:share_id>")
class ShareItem(MethodView):
    @blueprint.response(204)
    def delete(self, share_id):
        share = RecordShare.get_or_none(RecordShare.id == share_id)
        if share is None:
            raise ApiError(404)
        _record_for_sharing(share.object, share.record_id)
        services.unshare(share, actor_id=current_user.id)
