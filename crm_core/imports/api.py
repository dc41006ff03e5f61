"""``/api/v1/imports``: start an import (multipart upload, or JSON with the file in
base64), follow its status and progress, read or download its per-row errors; saved
column mappings under ``/imports/mappings``."""

from __future__ import annotations

import base64
import binascii
import json

import marshmallow as ma
from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, Schema
from crm_core.api.resources import ID
from crm_core.imports import services
from crm_core.imports.models import ImportMapping, ImportRun
from crm_core.permissions import engine

blueprint = Blueprint("imports_api", __name__, url_prefix="/imports",
                      description="Imports of CSV and Excel files into accounts, contacts and leads.")


class ImportRequestSchema(Schema):
    object = ma.fields.String(required=True, metadata={"description": "account, contact, lead..."})
    file_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=255),
                                 metadata={"description": "ends in .csv or .xlsx"})
    content = ma.fields.String(required=True, metadata={"description": "the file, base64"})
    mapping = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(allow_none=True),
                             load_default=None, metadata={"description": "{column: field or null}"})
    mapping_id = ma.fields.Integer(load_default=None, validate=ID,
                                   metadata={"description": "a saved mapping instead"})
    dry_run = ma.fields.Boolean(load_default=False)
    partial = ma.fields.Boolean(load_default=False)
    encoding = ma.fields.String(load_default=None, validate=ma.validate.Length(max=30))


class ImportErrorSchema(Schema):
    row = ma.fields.Integer(allow_none=True, metadata={"description": "the line in the file"})
    column = ma.fields.String()
    value = ma.fields.String()
    code = ma.fields.String()
    message = ma.fields.String()


class ProgressSchema(Schema):
    done = ma.fields.Integer()
    total = ma.fields.Integer()


class ImportRunSchema(Schema):
    id = ma.fields.Integer()
    object = ma.fields.String(attribute="object_name")
    status = ma.fields.String(metadata={"description": "queued, running, done, refused or failed"})
    file_name = ma.fields.String()
    file_format = ma.fields.String()
    encoding = ma.fields.String(allow_none=True)
    delimiter = ma.fields.String(allow_none=True)
    dry_run = ma.fields.Boolean()
    partial = ma.fields.Boolean()
    total_rows = ma.fields.Integer()
    created = ma.fields.Integer(attribute="created_count")
    updated = ma.fields.Integer(attribute="updated_count")
    skipped = ma.fields.Integer(attribute="skipped_count")
    refused = ma.fields.Integer(attribute="refused_count")
    progress = ma.fields.Nested(ProgressSchema)
    errors = ma.fields.List(ma.fields.Nested(ImportErrorSchema))
    created_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)


class ImportPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(ImportRunSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()


class PageArgs(Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))
    lang = ma.fields.String(load_default=None, load_only=True)


class MappingSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    object = ma.fields.String(required=True, attribute="object_name", data_key="object")
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    mapping = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(allow_none=True),
                             required=True)
    created_by_id = ma.fields.Integer(dump_only=True, allow_none=True)


class MappingListArgs(Schema):
    object = ma.fields.String(load_default=None)
    lang = ma.fields.String(load_default=None, load_only=True)


def run_out(run, with_errors=True):
    done, total = services.progress(run)
    data = ImportRunSchema().dump({**run.__data__, "progress": {"done": done, "total": total},
                                   "errors": services.errors(run) if with_errors else []})
    return data


def mapping_out(record):
    return {"id": record.id, "object": record.object_name, "name": record.name,
            "mapping": services.mapping_of(record), "created_by_id": record.created_by_id}


def _visible_run(import_id):
    run = services.visible_runs(current_user.id).where(ImportRun.id == import_id).first()
    if run is None:
        raise ApiError(404)
    return run


def _may_create(object_name):
    services.spec_of(object_name)
    if not engine().object_permissions(current_user.id, object_name).create:
        raise ApiError(403)


UPLOAD_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ImportRequestSchema},
    "multipart/form-data": {"schema": {"type": "object", "required": ["object", "file"], "properties": {
        "object": {"type": "string"}, "file": {"type": "string", "format": "binary"},
        "mapping": {"type": "string", "description": "JSON {column: field or null}"},
        "mapping_id": {"type": "integer"}, "dry_run": {"type": "boolean"},
        "partial": {"type": "boolean"}, "encoding": {"type": "string"}}}}}}}


def _upload_arguments():
    """The import request, from a multipart form (browsers, curl -F) or JSON (scripts)."""
    # Files may be larger than other requests (Flask's MAX_CONTENT_LENGTH): up to the
    # import limit, plus base64's third.
    request.max_content_length = max(request.max_content_length or 0,
                                     current_app.config["CRM_IMPORT_MAX_MB"] * 1024 * 1024 * 4 // 3 + 65536)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise ApiError(422, fields={"file": [str(_l("Choose a file."))]})
        form = request.form
        try:
            mapping = json.loads(form["mapping"]) if form.get("mapping") else None
        except ValueError:
            raise ApiError(422, fields={"mapping": [str(_l("Give the mapping as pairs of a column and a field."))]})
        flags = {name: form.get(name, "").lower() in ("1", "true", "yes", "on")
                 for name in ("dry_run", "partial")}
        mapping_id = form.get("mapping_id")
        return {"object": form.get("object", ""), "file_name": upload.filename, "data": upload.read(),
                "mapping": mapping, "mapping_id": int(mapping_id) if (mapping_id or "").isdigit() else None,
                "encoding": form.get("encoding") or None, **flags}
    if request.mimetype != "application/json":
        raise ApiError(415)
    try:
        args = ImportRequestSchema().load(request.get_json(silent=True) or {})
    except ma.ValidationError as exc:
        raise ApiError(422, fields=exc.messages)
    try:
        args["data"] = base64.b64decode(args.pop("content"), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, fields={"content": [str(_l("Send the file in base64."))]})
    return args


@blueprint.route("")
class Imports(MethodView):
    crm_body_types = {"multipart/form-data"}

    @blueprint.arguments(PageArgs, location="query")
    @blueprint.response(200, ImportPageSchema)
    def get(self, args):
        """The caller's imports, newest first (an administrator sees everyone's)."""
        query = services.visible_runs(current_user.id).order_by(ImportRun.id.desc())
        total = query.count()
        items = query.paginate(args["page"], args["per_page"])
        return jsonify({"items": [run_out(run, with_errors=False) for run in items], "total": total,
                        "page": args["page"], "per_page": args["per_page"]})

    @blueprint.response(201, ImportRunSchema)
    @blueprint.doc(**UPLOAD_DOC)
    def post(self):
        """Import a file as the caller: all or nothing unless partial, nothing written on a
        dry run. Small files are imported before the answer; large ones are queued (status
        "queued", then "running" with its progress)."""
        args = _upload_arguments()
        _may_create(args["object"])
        mapping = args.get("mapping")
        if args.get("mapping_id") is not None:
            saved = ImportMapping.get_or_none((ImportMapping.id == args["mapping_id"])
                                              & (ImportMapping.object_name == args["object"]))
            if saved is None:
                raise ApiError(422, fields={"mapping_id": [str(_l("No such mapping."))]})
            mapping = {**services.mapping_of(saved), **(mapping or {})}
        run = services.start_import(args["object"], args["data"], args["file_name"], current_user.id,
                                    mapping=mapping, dry_run=args["dry_run"], partial=args["partial"],
                                    encoding=args.get("encoding"))
        response = jsonify(run_out(run))
        response.headers["Location"] = f"{request.path.rstrip('/')}/{run.id}"
        return response, 201


@blueprint.route("/<int:import_id>")
class ImportItem(MethodView):
    @blueprint.response(200, ImportRunSchema)
    def get(self, import_id):
        """One import: status, progress, counts and the per-row errors in the caller's language."""
        return jsonify(run_out(_visible_run(import_id)))


@blueprint.route("/<int:import_id>/errors")
class ImportErrors(MethodView):
    @blueprint.doc(responses={"200": {"description": "The error report", "content": {
        "text/csv": {"schema": {"type": "string", "format": "binary"}}}}})
    def get(self, import_id):
        """The per-row errors as CSV (row, column, value, code, message)."""
        run = _visible_run(import_id)
        return Response(services.errors_csv(run), mimetype="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="import-{run.id}-errors.csv"'})


@blueprint.route("/mappings")
class Mappings(MethodView):
    @blueprint.arguments(MappingListArgs, location="query")
    @blueprint.response(200, MappingSchema(many=True))
    def get(self, args):
        """Saved column mappings (of one object with ?object=)."""
        return jsonify([mapping_out(m) for m in services.mappings(args["object"])])

    @blueprint.arguments(MappingSchema)
    @blueprint.response(201, MappingSchema)
    def post(self, data):
        """Save a named mapping {column in the file: field, or null to ignore the column}."""
        _may_create(data["object_name"])
        record = services.save_mapping(data["object_name"], data["name"], data["mapping"], current_user.id)
        return jsonify(mapping_out(record)), 201


@blueprint.route("/mappings/<int:mapping_id>")
class MappingItem(MethodView):
    @blueprint.response(204)
    def delete(self, mapping_id):
        """Delete a saved mapping (its author or an administrator)."""
        record = ImportMapping.get_or_none(ImportMapping.id == mapping_id)
        if record is None:
            raise ApiError(404)
        if record.created_by_id != current_user.id and not current_user.is_admin:
            raise ApiError(403)
        services.delete_mapping(record, current_user.id)
