"""API of assignment: rules, rule-set settings and round-robin groups (holders of
``assignment.manage``), running the rules over a selection, the proposals a manager decides,
and the progress of the reps below the caller."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import Blueprint, Schema, check_if_match, with_etag
from crm_core.api.errors import ApiError
from crm_core.api.resources import ID, IF_MATCH
from crm_core.assignment import services
from crm_core.assignment.conditions import OPERATORS
from crm_core.assignment.models import RULE_SET_MODES, AssignmentGroup, AssignmentRule
from crm_core.permissions import engine

blueprint = Blueprint("assignment_api", __name__, url_prefix="/assignment",
                      description="Assignment rules, round-robin groups, proposals and progress.")

OBJECT = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64),
                          metadata={"description": "the kind of record: lead, account..."})


def _manager_only():
    if not engine().has_permission(current_user.id, services.PERMISSION):
        raise ApiError(403)


def _object(name):
    """A kind of record that can be assigned and that the caller may read at all (else 404)."""
    from crm_core.assignment.objects import assignable_names

    if name not in assignable_names():
        raise ApiError(404)
    if not engine().object_permissions(current_user.id, name).read:
        raise ApiError(403)
    return name


class AssignmentConditionSchema(Schema):
    field = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    op = ma.fields.String(required=True, validate=ma.validate.OneOf(OPERATORS))
    value = ma.fields.Raw(load_default=None, allow_none=True)


class AssignmentRuleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    object = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    position = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=0, max=2**31 - 1))
    conditions = ma.fields.List(ma.fields.Nested(AssignmentConditionSchema), validate=ma.validate.Length(max=50))
    owner_id = ma.fields.Integer(allow_none=True, validate=ID)
    group_id = ma.fields.Integer(allow_none=True, validate=ID)
    target = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=64),
                              metadata={"description": "the key of an assignment target a plugin "
                                        "registered (the territory plugin's 'territory') instead "
                                        "of an owner or a group: exactly one of the three"})
    active = ma.fields.Boolean()


class AssignmentRulePatchSchema(AssignmentRuleSchema):
    object = ma.fields.String(dump_only=True)
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))


class AssignmentRuleListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(AssignmentRuleSchema))


class AssignmentObjectQuerySchema(Schema):
    object = OBJECT
    lang = ma.fields.String(load_default=None, load_only=True)


class AssignmentRuleSetSchema(Schema):
    object = ma.fields.String(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    mode = ma.fields.String(validate=ma.validate.OneOf(RULE_SET_MODES),
                            metadata={"description": "apply at once, or propose to a manager"})
    run_on_create = ma.fields.Boolean(metadata={"description": "run when a record is created without an owner"})


class AssignmentMemberSchema(Schema):
    user_id = ma.fields.Integer(required=True, validate=ID)
    capacity = ma.fields.Integer(allow_none=True, load_default=None, validate=ma.validate.Range(min=0, max=10**6))
    active = ma.fields.Boolean(load_default=True)


class AssignmentGroupSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    capacity = ma.fields.Integer(allow_none=True, load_default=None, validate=ma.validate.Range(min=0, max=10**6),
                                 metadata={"description": "open records each member may hold"})
    members = ma.fields.List(ma.fields.Nested(AssignmentMemberSchema), load_default=list,
                             validate=ma.validate.Length(max=500))


class AssignmentGroupPatchSchema(AssignmentGroupSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    capacity = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=0, max=10**6))
    members = ma.fields.List(ma.fields.Nested(AssignmentMemberSchema), validate=ma.validate.Length(max=500))


class AssignmentGroupListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(AssignmentGroupSchema))


class AssignmentSelectionSchema(Schema):
    object = OBJECT
    ids = ma.fields.List(ma.fields.Integer(validate=ID), required=True,
                         validate=ma.validate.Length(min=1, max=services.CHUNK))


class AssignmentOutcomeSchema(Schema):
    record_id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "assigned, proposed, kept or unmatched"})
    owner_id = ma.fields.Integer(allow_none=True)


class AssignmentOutcomeListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(AssignmentOutcomeSchema))


class AssignmentProposalSchema(Schema):
    id = ma.fields.Integer()
    object = ma.fields.String()
    record_id = ma.fields.Integer()
    label = ma.fields.String()
    owner_id = ma.fields.Integer(metadata={"description": "the present owner"})
    proposed_owner_id = ma.fields.Integer()
    rule_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()


class AssignmentProposalListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(AssignmentProposalSchema))
    total = ma.fields.Integer()


class AssignmentDecisionSchema(Schema):
    object = OBJECT
    ids = ma.fields.List(ma.fields.Integer(validate=ID), required=True,
                         validate=ma.validate.Length(min=1, max=services.CHUNK))
    action = ma.fields.String(load_default="confirm", validate=ma.validate.OneOf(("confirm", "reject")))
    owner_id = ma.fields.Integer(allow_none=True, load_default=None, validate=ID,
                                 metadata={"description": "give the records to this user instead"})


class AssignmentProgressQuerySchema(Schema):
    days = ma.fields.Integer(load_default=7, validate=ma.validate.Range(min=1, max=3650),
                             metadata={"description": "a new lead unchanged this long is untouched"})
    lang = ma.fields.String(load_default=None, load_only=True)


class AssignmentProgressRowSchema(Schema):
    user_id = ma.fields.Integer()
    name = ma.fields.String()
    assigned = ma.fields.Integer()
    new = ma.fields.Integer()
    contacted = ma.fields.Integer()
    qualified = ma.fields.Integer()
    converted = ma.fields.Integer()
    untouched = ma.fields.Integer()


class AssignmentProgressSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(AssignmentProgressRowSchema))
    days = ma.fields.Integer()


def rule_out(rule):
    return {"id": rule.id, "version": rule.version, "object": rule.object, "name": rule.name,
            "position": rule.position, "conditions": services.rule_conditions(rule), "owner_id": rule.owner_id,
            "group_id": rule.group_id, "target": rule.target, "active": rule.active}


def group_out(group):
    return {"id": group.id, "version": group.version, "name": group.name, "capacity": group.capacity,
            "members": [{"user_id": m.user_id, "capacity": m.capacity, "active": m.active}
                        for m in services.members_of(group)]}


def _rule(rule_id):
    rule = AssignmentRule.get_or_none(AssignmentRule.id == rule_id)
    if rule is None:
        raise ApiError(404)
    return rule


def _group(group_id):
    group = AssignmentGroup.get_or_none(AssignmentGroup.id == group_id)
    if group is None:
        raise ApiError(404)
    return group


@blueprint.route("/rules")
class Rules(MethodView):
    @blueprint.arguments(AssignmentObjectQuerySchema, location="query")
    @blueprint.response(200, AssignmentRuleListSchema)
    def get(self, args):
        """The rules of an object, in the order they are tried."""
        _manager_only()
        return jsonify({"items": [rule_out(r) for r in services.rules_of(_object(args["object"]))]})

    @blueprint.arguments(AssignmentRuleSchema)
    @blueprint.response(201, AssignmentRuleSchema)
    def post(self, data):
        """A new rule: conditions on any field, and an owner, a round-robin group or a
        plugin's assignment target."""
        _manager_only()
        name = _object(data.pop("object"))
        rule = services.create_rule(name, data, actor_id=current_user.id)
        return with_etag(jsonify(rule_out(rule)), rule), 201


@blueprint.route("/rules/<int:assignment_rule_id>")
class Rule(MethodView):
    @blueprint.arguments(AssignmentRulePatchSchema)
    @blueprint.response(200, AssignmentRuleSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, assignment_rule_id):
        """Change a rule (If-Match: its version)."""
        _manager_only()
        rule = _rule(assignment_rule_id)
        version = check_if_match(rule)
        services.update_rule(rule, data, actor_id=current_user.id, expected_version=version)
        return with_etag(jsonify(rule_out(rule)), rule)

    @blueprint.response(204)
    def delete(self, assignment_rule_id):
        """Delete a rule."""
        _manager_only()
        services.delete_rule(_rule(assignment_rule_id), actor_id=current_user.id)


@blueprint.route("/settings/<assignable_object>")
class Settings(MethodView):
    @blueprint.response(200, AssignmentRuleSetSchema)
    def get(self, assignable_object):
        """Whether the rules of an object apply at once or are proposed, and run on creation."""
        _manager_only()
        settings = services.rule_set(_object(assignable_object))
        return with_etag(jsonify(AssignmentRuleSetSchema().dump(settings)), settings)

    @blueprint.arguments(AssignmentRuleSetSchema)
    @blueprint.response(200, AssignmentRuleSetSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, assignable_object):
        """Change the settings (If-Match: their version; "0" before they were first saved)."""
        _manager_only()
        current = services.rule_set(_object(assignable_object))
        version = check_if_match(current)
        settings = services.set_rule_set(assignable_object, actor_id=current_user.id, expected_version=version, **data)
        return with_etag(jsonify(AssignmentRuleSetSchema().dump(settings)), settings)


@blueprint.route("/groups")
class Groups(MethodView):
    @blueprint.response(200, AssignmentGroupListSchema)
    def get(self):
        """Round-robin groups with their members in turn order."""
        _manager_only()
        return jsonify({"items": [group_out(g) for g in AssignmentGroup.select().order_by(AssignmentGroup.name)]})

    @blueprint.arguments(AssignmentGroupSchema)
    @blueprint.response(201, AssignmentGroupSchema)
    def post(self, data):
        """A new round-robin group."""
        _manager_only()
        group = services.create_group(data["name"], data["members"], data["capacity"], actor_id=current_user.id)
        return with_etag(jsonify(group_out(group)), group), 201


@blueprint.route("/groups/<int:assignment_group_id>")
class Group(MethodView):
    @blueprint.arguments(AssignmentGroupPatchSchema)
    @blueprint.response(200, AssignmentGroupSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, assignment_group_id):
        """Change a group: name, capacity, members (If-Match: its version)."""
        _manager_only()
        group = _group(assignment_group_id)
        version = check_if_match(group)
        services.update_group(group, data, actor_id=current_user.id, expected_version=version)
        return with_etag(jsonify(group_out(group)), group)

    @blueprint.response(204)
    def delete(self, assignment_group_id):
        """Delete a group no rule uses (409 while one does)."""
        _manager_only()
        services.delete_group(_group(assignment_group_id), actor_id=current_user.id)


@blueprint.route("/run")
class Run(MethodView):
    @blueprint.arguments(AssignmentSelectionSchema)
    @blueprint.response(200, AssignmentOutcomeListSchema)
    def post(self, data):
        """Run the rules over a selection: 404 when one record is not readable, 403 when the
        caller may not give one away; nothing is written then."""
        name = _object(data["object"])
        try:
            outcome = services.run_on_demand(name, data["ids"], current_user.id)
        except LookupError:
            raise ApiError(404)
        except PermissionError:
            raise ApiError(403)
        return jsonify({"items": [{"record_id": rid, "status": status, "owner_id": owner}
                                  for rid, (status, owner) in sorted(outcome.items())]})


def proposal_items(name, proposals):
    from crm_core.notifications.services import LABEL_FIELDS
    from crm_core.api.access import dump_visible

    model = engine().objects[name].model
    records = {r.id: r for r in model.alive().where(model.id.in_([p.record_id for p in proposals] or [0]))}
    items = []
    for proposal in proposals:
        record = records.get(proposal.record_id)
        if record is None:
            continue
        visible = dump_visible(name, {f: getattr(record, f, None) for f in LABEL_FIELDS.get(name, ("name",))})
        label = " · ".join(str(v) for k, v in visible.items() if v and k not in ("id", "version"))
        items.append({"id": proposal.id, "object": name, "record_id": record.id, "label": label or f"#{record.id}",
                      "owner_id": record.owner_id, "proposed_owner_id": proposal.proposed_owner_id,
                      "rule_id": proposal.rule_id, "created_at": proposal.created_at})
    return items


@blueprint.route("/proposals")
class Proposals(MethodView):
    @blueprint.arguments(AssignmentObjectQuerySchema, location="query")
    @blueprint.response(200, AssignmentProposalListSchema)
    def get(self, args):
        """Pending proposals of records the caller may give away, oldest first (at most 500)."""
        name = _object(args["object"])
        query = services.proposals_query(current_user.id, name)
        items = proposal_items(name, list(query.limit(services.CHUNK)))
        return jsonify({"items": AssignmentProposalSchema(many=True).dump(items), "total": query.count()})


@blueprint.route("/proposals/decide")
class Decide(MethodView):
    @blueprint.arguments(AssignmentDecisionSchema)
    @blueprint.response(200, AssignmentProposalListSchema)
    def post(self, data):
        """Confirm proposals (to the proposed owner, or to owner_id), or reject them, all or
        none: 404 when one is not among the caller's."""
        name = _object(data["object"])
        try:
            decided = services.decide(current_user.id, name, data["ids"], data["action"], data["owner_id"])
        except LookupError:
            raise ApiError(404)
        items = [{"id": p.id, "object": name, "record_id": p.record_id, "proposed_owner_id": p.proposed_owner_id,
                  "rule_id": p.rule_id, "created_at": p.created_at} for p in decided]
        return jsonify({"items": AssignmentProposalSchema(many=True).dump(items), "total": len(decided)})


@blueprint.route("/progress")
class Progress(MethodView):
    @blueprint.arguments(AssignmentProgressQuerySchema, location="query")
    @blueprint.response(200, AssignmentProgressSchema)
    def get(self, args):
        """Per rep below the caller: leads held, by status, and new ones untouched for ``days``."""
        if not engine().object_permissions(current_user.id, "lead").read:
            raise ApiError(403)
        return jsonify({"items": services.progress(current_user.id, args["days"]), "days": args["days"]})
