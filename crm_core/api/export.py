"""``GET /x/export``: a list as a CSV or XLSX file, with the list's own filters, as the
caller may see it (rows by the access engine, columns by field security)."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma
from flask import Response
from flask_login import current_user

from crm_core import exports
from crm_core.api import access
from crm_core.api.frame import Schema


def export_schema(list_query):
    """The query string of ``list_query``'s export: ``format`` and the list's filters."""
    attrs = {"format": ma.fields.String(load_default="csv", validate=ma.validate.OneOf(list(exports.FORMATS))),
             "lang": ma.fields.String(load_default=None, load_only=True)}
    attrs.update({name: field for name, (field, _column) in list_query.filters.items()})
    return Schema.from_dict(attrs, name=f"{list_query.name}ExportQuery")


def export_response(object_name, list_query, args, file_stem):
    access.check_list_arguments(object_name, {**args, "sort": None}, list_query)
    query = list_query.where(access.readable(object_name), args)
    data, _count = exports.write(object_name, current_user.id, args["format"], query)
    name = f"{file_stem}-{dt.date.today().isoformat()}.{args['format']}"
    return Response(data, mimetype=exports.FORMATS[args["format"]],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


EXPORT_DOC = {"responses": {"200": {"description": "The file", "content": {
    mime.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
    for mime in exports.FORMATS.values()}}}}
