"""The REST resource of a kind of business record, under the access engine.

``register(blueprint, Resource(...))`` adds ``GET/POST /``, ``GET /export`` and
``GET/PATCH/DELETE /<id>`` to a blueprint: lists and counts come from the engine's
query, a record the caller cannot read is a 404 like a missing one, hidden fields are
left out, fields the caller may not edit are a 422, changes need ``If-Match``, giving a
record to someone else needs the transfer level, and deleting puts it in the recycle bin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import marshmallow as ma
from flask import jsonify, request
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import access
from crm_core.api.ext import record_ext
from crm_core.api.export import EXPORT_DOC, export_response, export_schema
from crm_core.api.frame import Schema
from crm_core.api.listing import ListQuery, page_schema
from crm_core.api.locking import check_if_match, with_etag

ID = ma.validate.Range(min=1, max=2**63 - 1)


def optional_text(length, **kwargs):
    """A text field that may be null, at most ``length`` characters."""
    return ma.fields.String(allow_none=True, validate=ma.validate.Length(max=length), **kwargs)


class RecordSchema(Schema):
    """The columns every business record shows: id, version and when it was made and changed."""

    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)
    ext = ma.fields.Dict(dump_only=True, metadata={
        "description": "parts other modules add to the record (crm_record_ext): "
                       "\"approval\" (a pending change), a plugin's part under its name"})


IF_MATCH = {"parameters": [{"in": "header", "name": "If-Match", "required": True,
                            "schema": {"type": "string"}}]}
CONFIRM_DUPLICATES = {"in": "query", "name": "confirm_duplicates", "required": False,
                      "schema": {"type": "boolean"},
                      "description": "save although the record may duplicate others (409 possible_duplicates)"}
IF_MATCH_OPTIONAL = {"parameters": [{"in": "header", "name": "If-Match", "required": False,
                                     "schema": {"type": "string"}}]}


@dataclass
class Resource:
    name: str            # the access object: "lead"
    plural: str          # "leads": the export's file name, the docs
    schema: Any          # marshmallow schema class of the record
    patch_schema: Any    # the same with nothing required
    list_query: ListQuery
    create: Callable     # services.create_x(values, actor_id)
    update: Callable     # services.update_x(record, changes, actor_id, expected_version)
    delete: Callable     # services.delete_x(record, actor_id, expected_version)
    # create/update take confirm_duplicates (?confirm_duplicates=true): see crm_core/duplicates
    checks_duplicates: bool = False

    def out(self, record):
        return self.out_many([record])[0]

    def out_many(self, records):
        """The records as the caller may see them, each with its ``ext`` parts (one hook
        call for the whole page)."""
        parts = record_ext(self.name, records)
        return [{**access.dump_visible(self.name, self.schema().dump(record)), "ext": parts.get(record.id, {})}
                for record in records]


def may_change(name, record, data):
    """403 unless the caller may change ``record`` (and give it away, when the owner changes);
    422 for a field they may not edit."""
    access.require_object(name, "update")
    access.require(record, "transfer" if "owner_id" in data and data["owner_id"] != record.owner_id
                   else "update")
    access.check_writable(name, data)


def optional_version(record):
    """A delete may name the version it saw (412 when stale); without one it deletes."""
    return check_if_match(record) if request.headers.get("If-Match") else None


def _confirm(resource):
    """The client's confirmation that a possible duplicate is meant (a query parameter: the
    record's own fields stay the body)."""
    if not resource.checks_duplicates:
        return {}
    return {"confirm_duplicates": request.args.get("confirm_duplicates", "").lower() in ("1", "true", "yes")}


def register(blueprint, resource):
    name, plural, query = resource.name, resource.plural, resource.list_query
    id_rule = f"/<int:{name}_id>"

    class Collection(MethodView):
        @blueprint.arguments(query.schema, location="query")
        @blueprint.response(200, page_schema(resource.schema))
        def get(self, args):
            access.check_list_arguments(name, args, query)
            page = query.page(access.readable(name), args)
            return jsonify({**page, "items": resource.out_many(list(page["items"]))})

        @blueprint.arguments(resource.schema)
        @blueprint.response(201, resource.schema)
        def post(self, data):
            access.require_object(name, "create")
            access.check_writable(name, data)
            record = resource.create(data, actor_id=current_user.id, **_confirm(resource))
            return with_etag(jsonify(resource.out(record)), record), 201

    class Export(MethodView):
        @blueprint.arguments(export_schema(query), location="query")
        @blueprint.doc(**EXPORT_DOC)
        def get(self, args):
            return export_response(name, query, args, plural)

    class Item(MethodView):
        @blueprint.response(200, resource.schema)
        def get(self, **ids):
            record = access.get_readable(name, ids[f"{name}_id"])
            return with_etag(jsonify(resource.out(record)), record)

        @blueprint.arguments(resource.patch_schema)
        @blueprint.response(200, resource.schema)
        @blueprint.doc(**IF_MATCH)
        def patch(self, data, **ids):
            record = access.get_readable(name, ids[f"{name}_id"])
            may_change(name, record, data)
            version = check_if_match(record)
            resource.update(record, data, actor_id=current_user.id, expected_version=version,
                            **_confirm(resource))
            return with_etag(jsonify(resource.out(record)), record)

        @blueprint.response(204)
        @blueprint.doc(**IF_MATCH_OPTIONAL)
        def delete(self, **ids):
            record = access.get_readable(name, ids[f"{name}_id"])
            access.require_object(name, "delete")
            access.require(record, "delete")
            resource.delete(record, actor_id=current_user.id, expected_version=optional_version(record))

    # Docstrings become the operations' summaries in the OpenAPI document.
    Collection.get.__doc__ = f"The {plural} the caller may see."
    Collection.post.__doc__ = f"A new record of {plural} (owned by the caller unless owner_id says otherwise)."
    Export.get.__doc__ = f"The {plural} the caller may see, as CSV or XLSX (the list's filters apply)."
    Item.get.__doc__ = "One record (404 when the caller may not see it, like a missing one)."
    Item.patch.__doc__ = "Change the record (If-Match: its version)."
    Item.delete.__doc__ = "Into the recycle bin."
    if resource.checks_duplicates:
        Collection.post = blueprint.doc(parameters=[CONFIRM_DUPLICATES])(Collection.post)
        Item.patch = blueprint.doc(parameters=[*IF_MATCH["parameters"], CONFIRM_DUPLICATES])(Item.patch)
    for view, rule in ((Collection, ""), (Export, "/export"), (Item, id_rule)):
        view.__name__ = f"{name.title()}{view.__name__}"
        blueprint.route(rule)(view)
