"""A complete resource on the API frame: list (page/sort/filter), read, create, patch, delete."""

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView

from crm_core.api import ApiError, Blueprint, ListQuery, Schema, check_if_match, page_schema, with_etag
from crm_core.api.fields import Amount, Currency
from crm_core.records import create_record, soft_delete, update_record
from crm_notes.models import Note

blueprint = Blueprint("notes_api", __name__, url_prefix="/notes", description="Notes.")


class NoteSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    title = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    body = ma.fields.String(load_default="")
    amount = Amount(allow_none=True)
    currency = Currency(allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class NotePatchSchema(NoteSchema):
    title = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    body = ma.fields.String()


notes_list = ListQuery(
    "Note",
    sort={"id": Note.id, "title": Note.title, "created_at": Note.created_at},
    filters={"title": (ma.fields.String(), Note.title),
             "currency": (Currency(), Note.currency)},
)


def get_note(note_id):
    note = Note.alive().where(Note.id == note_id).first()
    if note is None:
        raise ApiError(404)
    return note


@blueprint.route("")
class Notes(MethodView):
    @blueprint.arguments(notes_list.schema, location="query")
    @blueprint.response(200, page_schema(NoteSchema))
    def get(self, args):
        """List notes."""
        return notes_list.page(Note.alive(), args)

    @blueprint.arguments(NoteSchema)
    @blueprint.response(201, NoteSchema)
    def post(self, data):
        """Create a note."""
        return create_record(Note, **data)


@blueprint.route("/<int:note_id>")
class NoteItem(MethodView):
    @blueprint.response(200, NoteSchema)
    def get(self, note_id):
        """Read a note; its version comes back as the ETag."""
        note = get_note(note_id)
        response = jsonify(NoteSchema().dump(note))
        return with_etag(response, note)

    @blueprint.arguments(NotePatchSchema)
    @blueprint.response(200, NoteSchema)
    @blueprint.doc(parameters=[{"in": "header", "name": "If-Match", "required": True,
                                "schema": {"type": "string"}}])
    def patch(self, data, note_id):
        """Change a note; send If-Match with the version you read."""
        note = get_note(note_id)
        version = check_if_match(note)
        update_record(note, data, expected_version=version)
        return with_etag(jsonify(NoteSchema().dump(note)), note)

    @blueprint.response(204)
    def delete(self, note_id):
        """Move a note to the recycle bin."""
        soft_delete(get_note(note_id))
