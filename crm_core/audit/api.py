"""API: a record's field history (under the access rules and field security), the
recycle bin (restore), and the security log (administrators)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, ListQuery, Schema, page_schema
from crm_core.api.resources import ID
from crm_core.audit.models import SecurityEvent
from crm_core.audit.services import history_of
from crm_core.permissions import FIELD_HIDDEN, Level, engine
from crm_core.recycle import services as recycle
from crm_core.recycle.models import RecycleGroup
from crm_core.web.auth import require_admin

blueprint = Blueprint("audit_api", __name__, description="History, recycle bin and security log.")


class HistorySchema(Schema):
    field = ma.fields.String()
    old_value = ma.fields.String(allow_none=True)
    new_value = ma.fields.String(allow_none=True)
    changed_by_id = ma.fields.Integer(allow_none=True)
    changed_at = ma.fields.DateTime()
    request_id = ma.fields.String(allow_none=True)


@blueprint.route("/history/<string:object_name>/<int:record_id>")
class History(MethodView):
    @blueprint.response(200, HistorySchema(many=True))
    def get(self, object_name, record_id):
        """Who changed what on a record you may read; fields hidden from you are left out."""
        access = engine()
        if object_name not in access.objects:
            raise ApiError(404)
        obj = access.objects[object_name]
        if not access.object_permissions(current_user.id, object_name).read:
            raise ApiError(403)
        record = obj.model.get_or_none(obj.model.id == record_id)
        if record is None or access.level(current_user.id, record) < Level.READ:
            raise ApiError(404)  # the same answer as for a record that does not exist
        levels = access.field_levels(current_user.id, object_name)
        if levels.get("*") == FIELD_HIDDEN:
            return []
        readable = {name for name in obj.model._meta.fields if levels.get(name, 2) > FIELD_HIDDEN}
        readable.update(("deleted_at", "merged_from", "merged_into"))
        return history_of(obj.model, record_id, readable_fields=readable)


class RecycleGroupSchema(Schema):
    id = ma.fields.Integer()
    table = ma.fields.String()
    record_id = ma.fields.Integer()
    label = ma.fields.String()
    owner_id = ma.fields.Integer(allow_none=True)
    deleted_at = ma.fields.DateTime()
    deleted_by_id = ma.fields.Integer(allow_none=True)


def _visible_group(group_id):
    group = recycle.visible_groups(current_user.id).where(RecycleGroup.id == group_id).first()
    if group is None:
        raise ApiError(404)
    return group


@blueprint.route("/recycle-bin")
class RecycleBin(MethodView):
    @blueprint.response(200, RecycleGroupSchema(many=True))
    def get(self):
        """What you (and those below you) deleted or owned; everything for administrators."""
        return list(recycle.visible_groups(current_user.id).limit(500))


@blueprint.route("/recycle-bin/<int:group_id>/restore")
class RecycleRestore(MethodView):
    @blueprint.response(204)
    def post(self, group_id):
        """Bring a deletion back, with the children deleted with it."""
        recycle.restore(_visible_group(group_id), actor_id=current_user.id)


class SecurityEventSchema(Schema):
    id = ma.fields.Integer()
    at = ma.fields.DateTime()
    kind = ma.fields.String()
    actor_id = ma.fields.Integer(allow_none=True)
    subject = ma.fields.String(allow_none=True)
    address = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    detail = ma.fields.String(allow_none=True)


events_list = ListQuery("SecurityEvent", sort={"id": SecurityEvent.id, "at": SecurityEvent.at},
                        filters={"kind": (ma.fields.String(), SecurityEvent.kind),
                                 "actor_id": (ma.fields.Integer(validate=ID), SecurityEvent.actor_id)},
                        default_sort="-id")


@blueprint.route("/security-log")
class SecurityLog(MethodView):
    @blueprint.arguments(events_list.schema, location="query")
    @blueprint.response(200, page_schema(SecurityEventSchema))
    def get(self, args):
        """Sign-ins, denials, exports, permission and sharing changes (administrators)."""
        require_admin()
        return events_list.page(SecurityEvent.select(), args)
