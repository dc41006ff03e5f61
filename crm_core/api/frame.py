"""flask-smorest set up for /api/v1: one Api per application, our error envelope."""

from __future__ import annotations

from collections.abc import Mapping

import flask_smorest
import marshmallow as ma
from flask import current_app, request
from flask_babel import lazy_gettext as _l
from webargs.flaskparser import FlaskParser
from werkzeug.routing import IntegerConverter

from crm_core.version import __version__

API_PREFIX = "/api/v1"


def _nul_fields(data, path=""):
    """Names of the values in ``data`` that contain a NUL character (databases refuse it)."""
    if isinstance(data, str):
        return [path or "_schema"] if "\x00" in data else []
    if isinstance(data, Mapping):  # a dict, or webargs' view of the query string
        return [name for key, value in data.items()
                for name in _nul_fields(value, f"{path}.{key}" if path else str(key))]
    if isinstance(data, (list, tuple)):
        return [name for index, value in enumerate(data) for name in _nul_fields(value, path)]
    return []


class Schema(ma.Schema):
    """Base of every API schema: unknown fields are an error, never silently dropped;
    text with a NUL character is refused (PostgreSQL cannot store it)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load
    def _refuse_nul(self, data, **_kwargs):
        bad = _nul_fields(data)
        if bad:
            raise ma.ValidationError({name: [str(_l("Remove the invisible control character."))]
                                      for name in bad})
        return data


class ErrorDetailSchema(Schema):
    code = ma.fields.String(required=True, metadata={"description": "stable error code"})
    message = ma.fields.String(required=True, metadata={"description": "for people, in their language"})
    fields = ma.fields.Dict(required=True, metadata={"description": "messages per field"})


class ErrorSchema(Schema):
    error = ma.fields.Nested(ErrorDetailSchema, required=True)


class StrictParser(FlaskParser):
    """Leave ``unknown`` to the schema (ours RAISE) in every location, the query
    string included: a filter on a field that is not allow-listed is an error,
    never silently ignored."""

    DEFAULT_UNKNOWN_BY_LOCATION = {location: None for location in FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION}


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the strict argument parser."""

    ARGUMENTS_PARSER = StrictParser()


class CrmApi(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        # crm_core.api.errors handles every error for the API and the pages alike.
        pass


class BoundedIntConverter(IntegerConverter):
    """``<int:id>`` that matches only what a 64-bit key can hold: a larger id is a 404
    (SQLite's driver would otherwise overflow into a 500)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def require_json_body():
    """API writes take JSON; another body type is a 415 (a view may accept more by
    setting ``crm_body_types`` on itself, e.g. ``{"multipart/form-data"}`` for uploads)."""
    if not request.path.startswith(API_PREFIX + "/") or request.method not in JSON_BODY_METHODS:
        return None
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return None
    if request.is_json:
        return None
    from crm_core.api.errors import ApiError

    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    accepted = getattr(getattr(view, "view_class", view), "crm_body_types", ()) if view else ()
    if request.mimetype in accepted:
        return None
    raise ApiError(415)


def document_errors(api):
    """List the error answers every operation can give, from what the operation declares.

    401 unless public; 404 when the path has a parameter; 400 for query parameters;
    422 for a body; 428 and 412 when it takes If-Match. Each uses the error envelope.
    """
    for path, item in api.spec._paths.items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", []) + item.get("parameters", [])
            wanted = []
            if operation.get("security") != []:
                wanted.append("401")
            if "{" in path:
                wanted.append("404")
            if any(p.get("in") == "query" for p in parameters if isinstance(p, dict)):
                wanted.append("400")
            if "requestBody" in operation:
                wanted += ["415", "422"]
            if any(p.get("in") == "header" and p.get("name") == "If-Match"
                   for p in parameters if isinstance(p, dict)):
                wanted += ["412", "428"]
            for code in wanted:
                if code not in responses:
                    responses[code] = api.spec.components.get_ref("response", ERROR_RESPONSES[code])


ERROR_RESPONSES = {"400": "BAD_REQUEST", "401": "UNAUTHORIZED", "404": "NOT_FOUND",
                   "412": "PRECONDITION_FAILED", "415": "UNSUPPORTED_MEDIA_TYPE",
                   "422": "UNPROCESSABLE_ENTITY", "428": "PRECONDITION_REQUIRED"}


def init_api(app):
    app.config.setdefault("API_TITLE", "CRM API")
    app.config.setdefault("API_VERSION", __version__)
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(require_json_body)
    api = CrmApi(app, spec_kwargs={
        "info": {"description": "The CRM's JSON API. Errors: "
                                '{"error": {"code", "message", "fields"}}. '
                                "Send `Authorization: Bearer <token>` (POST /api/v1/auth/token)."},
        "security": [{"bearerAuth": []}],
    })
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    from crm_core.api.fields import register_fields

    register_fields(api)
    return api
