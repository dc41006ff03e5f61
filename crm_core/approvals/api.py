"""API of approvals: the requests the caller may see (to decide, made, by state or
object), deciding, cancelling, and the company's policy of each kind."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import Blueprint, Schema, check_if_match, with_etag
from crm_core.api.errors import ApiError
from crm_core.api.resources import ID, IF_MATCH
from crm_core.approvals import services
from crm_core.approvals.ext import pending_summary
from crm_core.approvals.models import REQUEST_STATES, ApprovalRequest
from crm_core.approvals.registry import kinds
from crm_core.permissions import engine

blueprint = Blueprint("approvals_api", __name__, url_prefix="/approvals",
                      description="Approval requests (changes waiting for a manager) and approval policies.")


class ApprovalListArgs(Schema):
    state = ma.fields.String(load_default=None, validate=ma.validate.OneOf(REQUEST_STATES))
    object = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    kind = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    record_id = ma.fields.Integer(load_default=None, validate=ID)
    role = ma.fields.String(load_default=None, validate=ma.validate.OneOf(("approver", "requester")),
                            metadata={"description": "approver: waiting for the caller's decision; "
                                                     "requester: made by the caller"})
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))


class ApprovalStepSchema(Schema):
    position = ma.fields.Integer()
    approver_id = ma.fields.Integer()
    state = ma.fields.String(metadata={"description": "waiting, pending, approved, rejected, skipped"})
    decided_at = ma.fields.DateTime(allow_none=True)
    decided_by_id = ma.fields.Integer(allow_none=True)
    comment = ma.fields.String(allow_none=True)


class ApprovalRequestSchema(Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    kind = ma.fields.String()
    object = ma.fields.String()
    record_id = ma.fields.Integer()
    state = ma.fields.String()
    proposed = ma.fields.Dict(metadata={"description": "the values asked for (API names)"})
    current = ma.fields.Dict(metadata={"description": "the approved values when it was asked"})
    reasons = ma.fields.List(ma.fields.String(), metadata={"description": "why it needs approval"})
    note = ma.fields.String(allow_none=True)
    requested_by_id = ma.fields.Integer(allow_none=True)
    requested_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)
    decided_by_id = ma.fields.Integer(allow_none=True)
    approver_id = ma.fields.Integer(allow_none=True, metadata={"description": "who decides next"})
    may_decide = ma.fields.Boolean()
    may_cancel = ma.fields.Boolean()
    steps = ma.fields.List(ma.fields.Nested(ApprovalStepSchema))


class ApprovalRequestPage(Schema):
    items = ma.fields.List(ma.fields.Nested(ApprovalRequestSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()


class ApprovalDecisionSchema(Schema):
    comment = ma.fields.String(load_default=None, allow_none=True,
                               validate=ma.validate.Length(max=services.COMMENT_MAX))


class ApprovalPolicySchema(Schema):
    kind = ma.fields.String(dump_only=True)
    active = ma.fields.Boolean()
    levels = ma.fields.Integer(metadata={"description": "approvers up the tree: 1 or 2"})
    settings = ma.fields.Dict(metadata={"description": "the kind's thresholds (see docs/approvals.md)"})
    version = ma.fields.Integer(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    updated_by_id = ma.fields.Integer(dump_only=True, allow_none=True)


def request_out(request, user_id):
    summary = pending_summary(request, user_id)
    return ApprovalRequestSchema().dump({
        **summary, "id": request.id, "version": request.version, "object": request.object,
        "record_id": request.record_id, "note": request.note, "requested_at": request.requested_at,
        "decided_at": request.decided_at, "decided_by_id": request.decided_by_id,
        "may_decide": services.may_decide(user_id, request), "may_cancel": services.may_cancel(user_id, request),
        "steps": [{"position": s.position, "approver_id": s.approver_id, "state": s.state,
                   "decided_at": s.decided_at, "decided_by_id": s.decided_by_id, "comment": s.comment}
                  for s in services.steps(request)]})


def _visible(request_id):
    request = services.get_visible(current_user.id, request_id)
    if request is None:
        raise ApiError(404)
    return request


def _pending(request):
    if request.state != "pending":
        raise ApiError(409, "changed", services.NOT_PENDING)


@blueprint.route("")
class Requests(MethodView):
    @blueprint.arguments(ApprovalListArgs, location="query")
    @blueprint.response(200, ApprovalRequestPage)
    def get(self, args):
        """The approval requests of records the caller may see, newest first."""
        query = services.visible(current_user.id, args["object"])
        for name in ("state", "kind", "record_id"):
            if args[name] is not None:
                query = query.where(getattr(ApprovalRequest, name) == args[name])
        if args["role"] == "approver":
            query = query.where(services.waiting_for(current_user.id))
        elif args["role"] == "requester":
            query = query.where(ApprovalRequest.requested_by_id == current_user.id)
        rows = query.order_by(ApprovalRequest.requested_at.desc(), ApprovalRequest.id.desc()).paginate(
            args["page"], args["per_page"])
        return jsonify({"items": [request_out(r, current_user.id) for r in rows], "total": query.count(),
                        "page": args["page"], "per_page": args["per_page"]})


@blueprint.route("/<int:approval_id>")
class Request(MethodView):
    @blueprint.response(200, ApprovalRequestSchema)
    def get(self, approval_id):
        """One request with its approver chain and decisions (404 unless the caller may read its record)."""
        return jsonify(request_out(_visible(approval_id), current_user.id))


def _decide(approval_id, data, approve):
    request = _visible(approval_id)
    _pending(request)
    if not services.may_decide(current_user.id, request):
        # Decided by someone else between our read and now: a conflict, not a refusal.
        _pending(ApprovalRequest.get_by_id(request.id))
        raise ApiError(403)
    request = services.decide(request, current_user.id, approve, data["comment"])
    return jsonify(request_out(request, current_user.id))


@blueprint.route("/<int:approval_id>/approve")
class Approve(MethodView):
    @blueprint.arguments(ApprovalDecisionSchema)
    @blueprint.response(200, ApprovalRequestSchema)
    def post(self, data, approval_id):
        """Approve (the current approver, someone above them, or an administrator); the last
        approval applies the change. 409 when decided meanwhile or the record changed
        (code stale); 422 when the change is no longer allowed (stage requirements)."""
        return _decide(approval_id, data, True)


@blueprint.route("/<int:approval_id>/reject")
class Reject(MethodView):
    @blueprint.arguments(ApprovalDecisionSchema)
    @blueprint.response(200, ApprovalRequestSchema)
    def post(self, data, approval_id):
        """Reject with a comment (required): nothing of the change applies."""
        return _decide(approval_id, data, False)


@blueprint.route("/<int:approval_id>/cancel")
class Cancel(MethodView):
    @blueprint.response(200, ApprovalRequestSchema)
    def post(self, approval_id):
        """The requester withdraws a pending request."""
        request = _visible(approval_id)
        _pending(request)
        if not services.may_cancel(current_user.id, request):
            raise ApiError(403)
        return jsonify(request_out(services.cancel(request, current_user.id), current_user.id))


def _manager(kind_name):
    if not engine().has_permission(current_user.id, "approvals.manage"):
        raise ApiError(403)
    if kind_name not in kinds():
        raise ApiError(404)


def policy_out(kind_name):
    stored = services.policy(kind_name)
    settings = services.settings_of(kind_name)
    return ApprovalPolicySchema().dump({
        "kind": kind_name, "active": settings.pop("active"), "levels": settings.pop("levels"),
        "settings": settings, "version": stored.version, "updated_at": stored.updated_at,
        "updated_by_id": stored.updated_by_id}), stored


@blueprint.route("/policies/<approval_kind>")
class Policy(MethodView):
    @blueprint.response(200, ApprovalPolicySchema)
    def get(self, approval_kind):
        """The company's policy of a kind of approval (holders of approvals.manage)."""
        _manager(approval_kind)
        data, stored = policy_out(approval_kind)
        return with_etag(jsonify(data), stored)

    @blueprint.arguments(ApprovalPolicySchema)
    @blueprint.response(200, ApprovalPolicySchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, approval_kind):
        """Change the policy (If-Match: its version; "0" before it was first saved)."""
        _manager(approval_kind)
        version = check_if_match(services.policy(approval_kind))
        changes = dict(data.pop("settings", None) or {})
        changes.update(data)
        services.set_policy(approval_kind, changes, actor_id=current_user.id, expected_version=version)
        data, stored = policy_out(approval_kind)
        return with_etag(jsonify(data), stored)
