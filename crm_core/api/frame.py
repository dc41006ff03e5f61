"""flask-smorest set up for /api/v1: one Api per application, our error envelope."""

from __future__ import annotations

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser

from crm_core.version import __version__

API_PREFIX = "/api/v1"


class Schema(ma.Schema):
    """Base of every API schema: unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


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


def init_api(app):
    app.config.setdefault("API_TITLE", "CRM API")
    app.config.setdefault("API_VERSION", __version__)
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    return CrmApi(app, spec_kwargs={
        "info": {"description": "The CRM's JSON API. Errors: "
                                '{"error": {"code", "message", "fields"}}.'},
    })
