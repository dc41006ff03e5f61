"""API for administrators: departments, teams, roles (object permissions, named
permissions, field security), org-wide defaults, sharing rules, record shares, and why a
user can see a record.

Views parse and answer; ``crm_core.org.services`` decides (a refusal there is a 422, or
a 409 for a name already taken). Every change of a role, a team, a department or a
default names the version it was made on (``If-Match``): 428 without it, 412 when
someone changed it meanwhile, and nothing is written.
"""

from __future__ import annotations

import json

import marshmallow as ma
from flask import jsonify, request
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, ListQuery, Schema, check_if_match, page_schema, with_etag
from crm_core.org import services
from crm_core.org.models import TARGET_TYPES, Department, RecordShare, Role, SharingRule, Team
from crm_core.permissions import DEFAULT_LEVELS, Level, engine
from crm_core.web.auth import require_admin

ID_RANGE = ma.validate.Range(min=1, max=2**63 - 1)
blueprint = Blueprint("org_api", __name__, description="Organisation and access (administrators).")

LEVEL_NAMES = {"read": Level.READ, "edit": Level.EDIT}
IF_MATCH = {"parameters": [{"in": "header", "name": "If-Match", "required": True,
                            "schema": {"type": "string"}}]}
IF_MATCH_OPTIONAL = {"parameters": [{"in": "header", "name": "If-Match", "required": False,
                                     "schema": {"type": "string"}}]}


def _admin():
    require_admin()
    return current_user.id


def _get(model, record_id):
    record = model.get_or_none((model.id == record_id) & model.deleted_at.is_null()) \
        if hasattr(model, "deleted_at") else model.get_or_none(model.id == record_id)
    if record is None:
        raise ApiError(404)
    return record


def _optional_if_match(record):
    """A delete may name the version it saw (412 when stale); without one it deletes."""
    return check_if_match(record) if request.headers.get("If-Match") else None


def _answer(payload, record, status=200):
    response = with_etag(jsonify(payload), record)
    response.status_code = status
    return response


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
                             filters={"parent_id": (ma.fields.Integer(validate=ID_RANGE), Department.parent)},
                             default_sort="name")


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
        department = services.create_department(data["name"], data["parent_id"], data["head_id"],
                                                 actor_id=actor)
        return _answer(DepartmentSchema().dump(department), department, 201)


@blueprint.route("/departments/<int:department_id>")
class DepartmentItem(MethodView):
    @blueprint.response(200, DepartmentSchema)
    def get(self, department_id):
        department = _get(Department, department_id)
        return _answer(DepartmentSchema().dump(department), department)

    @blueprint.arguments(DepartmentPatchSchema)
    @blueprint.response(200, DepartmentSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, department_id):
        """Rename, move under another department, or name another head."""
        actor = _admin()
        department = _get(Department, department_id)
        version = check_if_match(department)
        services.update_department(department, data, actor_id=actor, expected_version=version)
        return _answer(DepartmentSchema().dump(department), department)

    @blueprint.response(204)
    @blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, department_id):
        """Into the recycle bin; its people move to the department above. Refused (409)
        while departments below it exist."""
        actor = _admin()
        department = _get(Department, department_id)
        services.delete_department(department, actor_id=actor,
                                   expected_version=_optional_if_match(department))


# -- teams ----------------------------------------------------------------------------------

class TeamSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    member_ids = ma.fields.List(ma.fields.Integer(validate=ID_RANGE), load_default=list)


class TeamPatchSchema(Schema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    member_ids = ma.fields.List(ma.fields.Integer(validate=ID_RANGE))


def _team_out(team):
    return {"id": team.id, "version": team.version, "name": team.name,
            "member_ids": services.team_member_ids(team)}


@blueprint.route("/teams")
class Teams(MethodView):
    @blueprint.response(200, TeamSchema(many=True))
    def get(self):
        return [_team_out(t) for t in Team.alive().order_by(Team.name)]

    @blueprint.arguments(TeamSchema)
    @blueprint.response(201, TeamSchema)
    def post(self, data):
        actor = _admin()
        team = services.create_team(data["name"], data["member_ids"], actor_id=actor)
        return _answer(_team_out(team), team, 201)


@blueprint.route("/teams/<int:team_id>")
class TeamItem(MethodView):
    @blueprint.response(200, TeamSchema)
    def get(self, team_id):
        team = _get(Team, team_id)
        return _answer(_team_out(team), team)

    @blueprint.arguments(TeamPatchSchema)
    @blueprint.response(200, TeamSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, team_id):
        """Rename the team and/or set exactly its members."""
        actor = _admin()
        team = _get(Team, team_id)
        version = check_if_match(team)
        services.update_team(team, data.get("name"), data.get("member_ids"), actor_id=actor,
                             expected_version=version)
        return _answer(_team_out(team), team)


# -- roles: object permissions, named permissions, field security ------------------------------

class PermissionSchema(Schema):
    object = ma.fields.String(required=True)
    create = ma.fields.Boolean(load_default=False)
    read = ma.fields.Boolean(load_default=False)
    edit = ma.fields.Boolean(load_default=False)
    delete = ma.fields.Boolean(load_default=False)
    view_all = ma.fields.Boolean(load_default=False)
    modify_all = ma.fields.Boolean(load_default=False)
    built_in_default = ma.fields.Boolean(dump_only=True, metadata={
        "description": "true: no administrator set these; they are the role's built-in defaults"})


class RoleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    key = ma.fields.String(dump_only=True, allow_none=True)
    permissions = ma.fields.List(ma.fields.Nested(PermissionSchema), dump_only=True)
    grants = ma.fields.List(ma.fields.String(), dump_only=True)


class RolePatchSchema(Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))


def _role_out(role):
    permissions = services.object_permissions_of(role)
    return {"id": role.id, "version": role.version, "name": role.name, "key": role.key,
            "grants": services.role_grants_of(role),
            "permissions": [{"object": name, **flags, "built_in_default": not set_here}
                            for name, (flags, set_here) in sorted(permissions.items())]}


@blueprint.route("/roles")
class Roles(MethodView):
    @blueprint.response(200, RoleSchema(many=True))
    def get(self):
        """Every role with its object permissions (stored, or the built-in defaults)."""
        _admin()
        return [_role_out(r) for r in Role.alive().order_by(Role.name)]

    @blueprint.arguments(RoleSchema)
    @blueprint.response(201, RoleSchema)
    def post(self, data):
        actor = _admin()
        role = services.create_role(data["name"], actor_id=actor)
        return _answer(_role_out(role), role, 201)


@blueprint.route("/roles/<int:role_id>")
class RoleItem(MethodView):
    @blueprint.response(200, RoleSchema)
    def get(self, role_id):
        _admin()
        role = _get(Role, role_id)
        return _answer(_role_out(role), role)

    @blueprint.arguments(RolePatchSchema)
    @blueprint.response(200, RoleSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, role_id):
        """Rename the role."""
        actor = _admin()
        role = _get(Role, role_id)
        version = check_if_match(role)
        services.rename_role(role, data["name"], actor_id=actor, expected_version=version)
        return _answer(_role_out(role), role)


@blueprint.route("/roles/<int:role_id>/permissions")
class RolePermissions(MethodView):
    @blueprint.arguments(PermissionSchema)
    @blueprint.response(200, RoleSchema)
    @blueprint.doc(**IF_MATCH)
    def put(self, data, role_id):
        """Set one object's permissions for the role."""
        actor = _admin()
        role = _get(Role, role_id)
        version = check_if_match(role)
        name = data.pop("object")
        services.set_object_permissions(role, name, actor_id=actor, expected_version=version, **data)
        return _answer(_role_out(role), role)


@blueprint.route("/roles/<int:role_id>/reset")
class RoleReset(MethodView):
    @blueprint.response(200, RoleSchema)
    @blueprint.doc(**IF_MATCH)
    def post(self, role_id):
        """Back to the built-in defaults: object permissions, named permissions and field
        rules set by administrators are removed."""
        actor = _admin()
        role = _get(Role, role_id)
        version = check_if_match(role)
        services.reset_role(role, actor_id=actor, expected_version=version)
        return _answer(_role_out(role), role)


class GrantsSchema(Schema):
    permissions = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=100)), required=True)


@blueprint.route("/roles/<int:role_id>/grants")
class RoleGrants(MethodView):
    @blueprint.response(200, GrantsSchema)
    def get(self, role_id):
        """The named permissions the role holds."""
        _admin()
        role = _get(Role, role_id)
        return _answer({"permissions": services.role_grants_of(role)}, role)

    @blueprint.arguments(GrantsSchema)
    @blueprint.response(200, GrantsSchema)
    @blueprint.doc(**IF_MATCH)
    def put(self, data, role_id):
        """Set exactly these named permissions for the role."""
        actor = _admin()
        role = _get(Role, role_id)
        version = check_if_match(role)
        names = services.set_role_grants(role, data["permissions"], actor_id=actor,
                                         expected_version=version)
        return _answer({"permissions": names}, role)


FIELD_ACCESS = ("hidden", "read", "edit")


class FieldRuleSchema(Schema):
    object = ma.fields.String(required=True, validate=ma.validate.Length(max=64))
    field = ma.fields.String(required=True, validate=ma.validate.Length(max=64))
    access = ma.fields.String(required=True, validate=ma.validate.OneOf(FIELD_ACCESS))


def _field_rules_out(role):
    names = {value: key for key, value in services.FIELD_LEVELS.items()}
    return [{"object": obj, "field": field, "access": names[level]}
            for (obj, field), level in sorted(services.field_rules_of(role).items())]


@blueprint.route("/roles/<int:role_id>/field-rules")
class RoleFieldRules(MethodView):
    @blueprint.response(200, FieldRuleSchema(many=True))
    def get(self, role_id):
        """The role's hidden and read-only fields (every other field is editable)."""
        _admin()
        role = _get(Role, role_id)
        return _answer(_field_rules_out(role), role)

    @blueprint.arguments(FieldRuleSchema)
    @blueprint.response(200, FieldRuleSchema(many=True))
    @blueprint.doc(**IF_MATCH)
    def put(self, data, role_id):
        """Set the role's access to one field: hidden, read or edit."""
        actor = _admin()
        role = _get(Role, role_id)
        version = check_if_match(role)
        services.set_field_rules(role, {(data["object"], data["field"]): data["access"]},
                                 actor_id=actor, expected_version=version)
        return _answer(_field_rules_out(role), role)


# -- org-wide defaults ----------------------------------------------------------------------------

class DefaultSchema(Schema):
    object = ma.fields.String(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    access = ma.fields.String(required=True, validate=ma.validate.OneOf(list(DEFAULT_LEVELS)))
    managers_inherit = ma.fields.Boolean(load_default=True)


def _default_out(row):
    return {"object": row.object, "version": row.version, "access": row.access,
            "managers_inherit": bool(row.managers_inherit)}


def _known_object(object_name):
    if object_name not in engine().objects:
        raise ApiError(404)
    return object_name


@blueprint.route("/access/defaults")
class Defaults(MethodView):
    @blueprint.response(200, DefaultSchema(many=True))
    def get(self):
        _admin()
        return [_default_out(services.default_of(name)) for name in sorted(engine().objects)]


@blueprint.route("/access/defaults/<string:object_name>")
class DefaultItem(MethodView):
    @blueprint.response(200, DefaultSchema)
    def get(self, object_name):
        _admin()
        row = services.default_of(_known_object(object_name))
        return _answer(_default_out(row), row)

    @blueprint.arguments(DefaultSchema)
    @blueprint.response(200, DefaultSchema)
    @blueprint.doc(**IF_MATCH)
    def put(self, data, object_name):
        """Private, read or read_write for everyone; whether managers see their people's."""
        actor = _admin()
        version = check_if_match(services.default_of(_known_object(object_name)))
        row = services.set_default(object_name, data["access"], data["managers_inherit"],
                                   actor_id=actor, expected_version=version)
        return _answer(_default_out(row), row)


# -- sharing rules and shares ----------------------------------------------------------------------

# Sharing rules take the plugins' share target types too, which exist only once the app
# is built: the service checks the type and the group (422 in the user's language).
SHARE_TYPES_DOC = (", ".join(TARGET_TYPES) + ", or a type a plugin registered "
                   "(crm_register_share_targets, e.g. territory)")


class SharingRuleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    object = ma.fields.String(required=True, validate=ma.validate.Length(max=64))
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    source_type = ma.fields.String(allow_none=True, load_default=None, validate=ma.validate.Length(min=1, max=20),
                                   metadata={"description": SHARE_TYPES_DOC})
    source_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID_RANGE)
    field = ma.fields.String(allow_none=True, load_default=None, validate=ma.validate.Length(max=64))
    values = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=200)), allow_none=True,
                            load_default=None, validate=ma.validate.Length(max=500))
    target_type = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=20),
                                   metadata={"description": SHARE_TYPES_DOC})
    target_id = ma.fields.Integer(required=True, validate=ID_RANGE)
    level = ma.fields.String(required=True, validate=ma.validate.OneOf(list(LEVEL_NAMES)))


def _rule_out(rule):
    return {"id": rule.id, "version": rule.version, "object": rule.object, "name": rule.name,
            "source_type": rule.source_type, "source_id": rule.source_id, "field": rule.field,
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
        """Share the records owned by a group (source_type/source_id), or those whose
        field is one of values, with a user, team or department."""
        actor = _admin()
        rule = services.create_sharing_rule(
            data["object"], data["name"], data["target_type"], data["target_id"],
            LEVEL_NAMES[data["level"]], data["source_type"], data["source_id"], data["field"],
            data["values"], actor_id=actor)
        return _answer(_rule_out(rule), rule, 201)


@blueprint.route("/access/sharing-rules/<int:rule_id>")
class SharingRuleItem(MethodView):
    @blueprint.response(204)
    @blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, rule_id):
        actor = _admin()
        rule = _get(SharingRule, rule_id)
        services.delete_sharing_rule(rule, actor_id=actor, expected_version=_optional_if_match(rule))


class ExplainSchema(Schema):
    level = ma.fields.String()
    reasons = ma.fields.List(ma.fields.Dict())


class ExplainQuerySchema(Schema):
    user_id = ma.fields.Integer(required=True, validate=ID_RANGE)
    object = ma.fields.String(required=True)
    record_id = ma.fields.Integer(required=True, validate=ID_RANGE)
    lang = ma.fields.String(load_default=None, load_only=True)


@blueprint.route("/access/explain")
class Explain(MethodView):
    @blueprint.arguments(ExplainQuerySchema, location="query")
    @blueprint.response(200, ExplainSchema)
    def get(self, args):
        """Why (and how far) a user can see a record: the level and every reason."""
        _admin()
        access = engine()
        model = access.objects[_known_object(args["object"])].model
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
    record_id = ma.fields.Integer(required=True, validate=ID_RANGE)
    target_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TARGET_TYPES))
    target_id = ma.fields.Integer(required=True, validate=ID_RANGE)
    level = ma.fields.String(required=True, validate=ma.validate.OneOf(list(LEVEL_NAMES)))


class ShareQuerySchema(Schema):
    object = ma.fields.String(required=True)
    record_id = ma.fields.Integer(required=True, validate=ID_RANGE)


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


def _share_out(share):
    return {"id": share.id, "object": share.object, "record_id": share.record_id,
            "target_type": share.target_type, "target_id": share.target_id,
            "level": {v: k for k, v in LEVEL_NAMES.items()}[Level(share.level)]}


@blueprint.route("/access/shares")
class Shares(MethodView):
    @blueprint.arguments(ShareQuerySchema, location="query")
    @blueprint.response(200, ShareSchema(many=True))
    def get(self, args):
        """The manual shares of one record (for whoever may share it)."""
        _record_for_sharing(args["object"], args["record_id"])
        return [_share_out(s) for s in RecordShare.select().where(
            (RecordShare.object == args["object"]) & (RecordShare.record_id == args["record_id"]))
            .order_by(RecordShare.id)]

    @blueprint.arguments(ShareSchema)
    @blueprint.response(201, ShareSchema)
    def post(self, data):
        """Share one record with a user, team or department (needs full access to it)."""
        _record_for_sharing(data["object"], data["record_id"])
        share = services.share_record(data["object"], data["record_id"], data["target_type"],
                                      data["target_id"], LEVEL_NAMES[data["level"]],
                                      actor_id=current_user.id)
        return _share_out(share)


@blueprint.route("/access/shares/<int:share_id>")
class ShareItem(MethodView):
    @blueprint.response(204)
    def delete(self, share_id):
        share = RecordShare.get_or_none(RecordShare.id == share_id)
        if share is None:
            raise ApiError(404)
        _record_for_sharing(share.object, share.record_id)
        services.unshare(share, actor_id=current_user.id)
