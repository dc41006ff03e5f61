"""Every error, as ``{"error": {"code", "message", "fields"}}`` for the API and
as a page for people, with the message in the caller's language."""

from __future__ import annotations

import json
import logging

import peewee

from flask import current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from markupsafe import escape
from werkzeug.exceptions import HTTPException, InternalServerError

from crm_core.api.messages import translate_fields
from crm_core.errors import FieldValueError, UserError, VersionConflict

log = logging.getLogger("crm.http")

API_PREFIX = "/api/"

# (code, message) per status; the code is stable for programs, the message is for people.
STATUS_TEXT = {
    400: ("bad_request", _l("The request is not valid.")),
    401: ("unauthorized", _l("Sign in to continue.")),
    403: ("forbidden", _l("You do not have permission to do this.")),
    404: ("not_found", _l("Not found.")),
    405: ("method_not_allowed", _l("This method is not allowed here.")),
    406: ("not_acceptable", _l("This response format is not available.")),
    409: ("conflict", _l("Someone else changed this record. Reload it and try again.")),
    412: ("precondition_failed",
          _l("Someone else changed this record. Reload it and try again.")),
    413: ("payload_too_large", _l("The request is too large.")),
    415: ("unsupported_media_type", _l("Send the request body as JSON.")),
    422: ("validation_error", _l("Some fields are not valid.")),
    428: ("precondition_required",
          _l("Send the version you are changing in an If-Match header.")),
    429: ("too_many_requests", _l("Too many requests. Try again later.")),
    500: ("internal_error", _l("Something went wrong on our side. The error has been logged.")),
    503: ("service_unavailable", _l("The service is not available right now. Try again later.")),
}


class ApiError(HTTPException):
    """Raise from a view or service to answer with a given status, code and message."""

    def __init__(self, status, code=None, message=None, fields=None, headers=None):
        default_code, default_message = STATUS_TEXT.get(status, ("error", ""))
        self.code = status
        self.error_code = code or default_code
        self.message = message or default_message
        self.fields = fields or {}
        self.headers = headers or {}
        super().__init__(description=str(self.message))


def is_api_request():
    return request.path.startswith(API_PREFIX)


def envelope(status, code, message, fields=None, headers=None):
    response = jsonify({"error": {"code": code, "message": str(message), "fields": fields or {}}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _webargs_fields(error):
    """Validation messages of webargs/marshmallow, by location -> flattened dict."""
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or {}
    locations = list(messages)
    fields = {}
    for location in locations:
        value = messages[location]
        if isinstance(value, dict):
            fields.update(value)
        else:
            fields["_schema"] = value
    return locations, fields


def handle_http_exception(error):
    status = error.code or 500
    code, message = STATUS_TEXT.get(status) or (
        ("error", _l("The request could not be completed.")) if status < 500 else STATUS_TEXT[500])
    fields, headers = {}, {}
    if isinstance(error, ApiError):
        code, message, fields, headers = error.error_code, error.message, error.fields, error.headers
    else:
        locations, fields = _webargs_fields(error)
        if status == 422 and locations and set(locations) <= {"query", "headers", "cookies"}:
            # A bad query string (unknown filter, sort key...) is a bad request, not a bad record.
            status, (code, message) = 400, STATUS_TEXT[400]
        data = getattr(error, "data", None) or {}
        headers.update(data.get("headers") or {})
    fields = translate_fields(fields)
    if status == 403:
        _log_denial(code)
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    if is_api_request():
        return envelope(status, code, message, fields, headers)
    try:
        body = render_template("crm_core/error.html", status=status, code=code, message=message)
    except Exception:  # the error page itself failed: still answer, plainly
        log.exception("error page failed to render")
        body = f"<!doctype html><title>{status}</title><h1>{escape(str(message))}</h1>"
    response = current_app.response_class(body, status=status)
    for name, value in headers.items():
        response.headers[name] = value
    return response


def _log_denial(code):
    """Every refusal goes to the security log (ACCESS_MODEL: every denial is audited)."""
    from flask_login import current_user

    from crm_core.audit.services import log_security

    try:
        log_security("denied", actor_id=getattr(current_user, "id", None),
                     subject=f"{request.method} {request.path}", code=code)
    except Exception:  # the log must never turn a 403 into a 500
        log.exception("could not write the denial to the security log")


def handle_field_value(error):
    """A value the record refused (currency, amount...): a 422 naming the field."""
    return handle_http_exception(ApiError(422, fields={error.field: [str(error.message)]}))


def _messages(message):
    """A field's messages: one, or several kept apart (every unmet stage requirement)."""
    return [str(m) for m in getattr(message, "messages", None) or [message]]


def handle_user_error(error):
    """A change a service refused: every input's message, in the caller's language."""
    status = 409 if error.code in UserError.CONFLICTS else 422
    extra = getattr(error, "extra", None)
    own_message = extra or getattr(error, "show_message", False)
    response = handle_http_exception(ApiError(status, None if error.code == "invalid" else error.code,
                                              message=error.message if own_message else None,
                                              fields={f: _messages(m) for f, m in error.fields.items()}))
    if extra and is_api_request():
        # Beside the error, what the client needs to resolve it (the possible duplicates).
        response.set_data(json.dumps({**response.get_json(), **extra}, ensure_ascii=False))
    return response


def handle_version_conflict(error):
    status = 412 if is_api_request() else 409
    return handle_http_exception(ApiError(status))


def handle_integrity(error):
    """A constraint the checks before it missed: the change is refused, nothing written."""
    log.warning("integrity error on %s %s: %s", request.method, request.path, error)
    return handle_http_exception(ApiError(409, "integrity",
                                          _l("This change conflicts with other data and was not saved.")))


def handle_unexpected(error):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return handle_http_exception(InternalServerError())


def register_error_handlers(app):
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(VersionConflict, handle_version_conflict)
    app.register_error_handler(FieldValueError, handle_field_value)
    app.register_error_handler(UserError, handle_user_error)
    app.register_error_handler(peewee.IntegrityError, handle_integrity)
    app.register_error_handler(Exception, handle_unexpected)
