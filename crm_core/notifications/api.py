"""API of the notification centre: the caller's own notifications, and marking them read."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import Blueprint, Schema
from crm_core.api.resources import ID
from crm_core.notifications import services

blueprint = Blueprint("notifications_api", __name__, url_prefix="/notifications",
                      description="The caller's notifications.")


class ListArgs(Schema):
    unread = ma.fields.Boolean(load_default=False)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))
    lang = ma.fields.String(load_default=None, load_only=True)


class RecordRef(Schema):
    id = ma.fields.Integer()
    label = ma.fields.String()


class NotificationSchema(Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    object = ma.fields.String(allow_none=True)
    count = ma.fields.Integer()
    text = ma.fields.String(metadata={"description": "what happened, in the caller's language"})
    records = ma.fields.List(ma.fields.Nested(RecordRef),
                             metadata={"description": "the records the caller may read now"})
    created_at = ma.fields.DateTime()
    read_at = ma.fields.DateTime(allow_none=True)


class NotificationPage(Schema):
    items = ma.fields.List(ma.fields.Nested(NotificationSchema))
    total = ma.fields.Integer()
    unread = ma.fields.Integer()
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()


class ReadSchema(Schema):
    ids = ma.fields.List(ma.fields.Integer(validate=ID), allow_none=True, load_default=None,
                         validate=ma.validate.Length(max=1000),
                         metadata={"description": "which to mark read; none: all"})


class ReadResult(Schema):
    marked = ma.fields.Integer()
    unread = ma.fields.Integer()


def item(notification, user_id):
    return {"id": notification.id, "kind": notification.kind, "object": notification.object,
            "count": notification.count, "text": str(services.sentence(notification)),
            "records": [{"id": rid, "label": label} for rid, label in services.visible_records(notification, user_id)],
            "created_at": notification.created_at, "read_at": notification.read_at}


@blueprint.route("")
class Notifications(MethodView):
    @blueprint.arguments(ListArgs, location="query")
    @blueprint.response(200, NotificationPage)
    def get(self, args):
        """The caller's notifications, newest first, with the unread count."""
        query = services.for_user(current_user.id, unread_only=args["unread"])
        rows = query.paginate(args["page"], args["per_page"])
        return jsonify(NotificationPage().dump({
            "items": [item(n, current_user.id) for n in rows], "total": query.count(),
            "unread": services.unread_count(current_user.id), "page": args["page"],
            "per_page": args["per_page"]}))


@blueprint.route("/read")
class Read(MethodView):
    @blueprint.arguments(ReadSchema)
    @blueprint.response(200, ReadResult)
    def post(self, data):
        """Mark the caller's notifications read (the given ones, or all)."""
        marked = services.mark_read(current_user.id, data["ids"])
        return jsonify({"marked": marked, "unread": services.unread_count(current_user.id)})
