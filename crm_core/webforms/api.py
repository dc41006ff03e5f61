"""API of web-to-lead: ``/web-forms`` for those who manage forms (administrators and holders
of ``webforms.manage``), and the public ``/web-to-lead/<key>`` that visitors post to."""

from __future__ import annotations

import json

import marshmallow as ma
from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask.views import MethodView
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from crm_core.api import ApiError, Blueprint, Schema, check_if_match, page_schema, with_etag
from crm_core.api.listing import DEFAULT_PER_PAGE, MAX_PER_PAGE
from crm_core.api.resources import ID, IF_MATCH, RecordSchema
from crm_core.errors import UserError
from crm_core.leads.models import LEAD_SOURCES
from crm_core.web.auth import client_address, csrf_exempt, public
from crm_core.webforms import services
from crm_core.webforms.models import ASSIGN_BY, RESULTS, WebForm

blueprint = Blueprint("web_forms_api", __name__, url_prefix="/web-forms",
                      description="Web-to-lead forms and what visitors sent (webforms.manage).")
public_blueprint = Blueprint("web_to_lead_api", __name__, url_prefix="/web-to-lead",
                             description="The public endpoint of web-to-lead forms (no sign-in).")


class WebFormFieldSchema(Schema):
    # A lead field, or "custom.<key>" of a custom field of leads (checked by the service).
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    label = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    required = ma.fields.Boolean(load_default=False)


class WebFormSchema(RecordSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    key = ma.fields.String(dump_only=True, metadata={"description": "the form's public address"})
    owner_id = ma.fields.Integer(validate=ID)
    assign_by = ma.fields.String(validate=ma.validate.OneOf(ASSIGN_BY), metadata={
        "description": "owner: the target owner; rules: the assignment rules (until they exist, "
                       "the target owner), in both cases the form's owner as a fallback"})
    target_owner_id = ma.fields.Integer(allow_none=True, validate=ID)
    campaign_id = ma.fields.Integer(allow_none=True, validate=ID)
    source = ma.fields.String(validate=ma.validate.OneOf(LEAD_SOURCES))
    thank_you_url = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))
    allowed_origins = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=300)),
                                     validate=ma.validate.Length(max=services.MAX_ORIGINS))
    fields = ma.fields.List(ma.fields.Nested(WebFormFieldSchema), required=True,
                            validate=ma.validate.Length(min=1, max=len(services.FIELDS)))
    rate_limit = ma.fields.Integer(validate=ma.validate.Range(min=1, max=10000), metadata={
        "description": "submissions per address per 10 minutes"})
    active = ma.fields.Boolean()
    action_url = ma.fields.String(dump_only=True)
    snippet = ma.fields.String(dump_only=True, metadata={"description": "HTML to embed"})


class WebFormPatchSchema(WebFormSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    fields = ma.fields.List(ma.fields.Nested(WebFormFieldSchema),
                            validate=ma.validate.Length(min=1, max=len(services.FIELDS)))


class SubmissionSchema(Schema):
    id = ma.fields.String(metadata={"description": "the submission's public id"})
    created_at = ma.fields.DateTime()
    address = ma.fields.String()
    result = ma.fields.String(metadata={"description": "lead or spam"})
    payload = ma.fields.Dict(metadata={"description": "what the visitor sent"})
    lead_id = ma.fields.Integer(allow_none=True, metadata={"description": "when the caller may read it"})
    duplicate_of = ma.fields.String(allow_none=True, metadata={"description": "lead or contact"})
    duplicate_id = ma.fields.Integer(allow_none=True)


class SubmissionQuery(Schema):
    result = ma.fields.String(validate=ma.validate.OneOf(RESULTS))
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=DEFAULT_PER_PAGE, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))
    lang = ma.fields.String(load_default=None, load_only=True)


class SubmissionListArgs(Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=DEFAULT_PER_PAGE, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))
    lang = ma.fields.String(load_default=None, load_only=True)


class PublicFormSchema(Schema):
    token = ma.fields.String(metadata={"description": f"send it back as {services.TOKEN_FIELD}"})
    fields = ma.fields.List(ma.fields.Nested(WebFormFieldSchema))


class ReceivedSchema(Schema):
    id = ma.fields.String(metadata={"description": "the submission's id (the same when repeated)"})


def action_url(form):
    return url_for("web_to_lead_api.WebToLead", web_form_key=form.key, _external=True)


def form_out(form):
    return {"id": form.id, "version": form.version, "created_at": form.created_at.isoformat(),
            "updated_at": form.updated_at.isoformat(), "name": form.name, "key": form.key,
            "owner_id": form.owner_id, "assign_by": form.assign_by,
            "target_owner_id": form.target_owner_id, "campaign_id": form.campaign_id,
            "source": form.source, "thank_you_url": form.thank_you_url,
            "allowed_origins": services.origins(form), "fields": services.form_fields(form),
            "rate_limit": form.rate_limit, "active": form.active, "action_url": action_url(form),
            "snippet": services.snippet(form, action_url(form))}


def submission_out(submission, actor_id):
    links = services.visible_link(submission, actor_id)
    return {"id": submission.uid, "created_at": submission.created_at.isoformat(),
            "address": submission.address, "result": submission.result,
            "payload": json.loads(submission.payload),
            "lead_id": links["lead"][1] if "lead" in links else None,
            "duplicate_of": links["duplicate"][0] if "duplicate" in links else None,
            "duplicate_id": links["duplicate"][1] if "duplicate" in links else None}


def require_manager():
    if not services.may_manage(current_user.id):
        raise ApiError(403)


def get_form(web_form_id):
    require_manager()
    form = WebForm.alive().where(WebForm.id == web_form_id).first()
    if form is None:
        raise ApiError(404)
    return form


def _page(query, args):
    total = query.count()
    return total, list(query.paginate(args["page"], args["per_page"]))


@blueprint.route("")
class WebForms(MethodView):
    @blueprint.arguments(SubmissionListArgs, location="query")
    @blueprint.response(200, page_schema(WebFormSchema))
    def get(self, args):
        """The web forms (for those who manage them)."""
        require_manager()
        total, items = _page(WebForm.alive().order_by(WebForm.name, WebForm.id), args)
        return jsonify({"items": [form_out(f) for f in items], "total": total, "page": args["page"],
                        "per_page": args["per_page"]})

    @blueprint.arguments(WebFormSchema)
    @blueprint.response(201, WebFormSchema)
    def post(self, data):
        """A new web form (owned by the caller unless owner_id says otherwise)."""
        require_manager()
        form = services.create_form(data, actor_id=current_user.id)
        return with_etag(jsonify(form_out(form)), form), 201


@blueprint.route("/<int:web_form_id>")
class WebFormItem(MethodView):
    @blueprint.response(200, WebFormSchema)
    def get(self, web_form_id):
        """One web form, with its embeddable snippet."""
        form = get_form(web_form_id)
        return with_etag(jsonify(form_out(form)), form)

    @blueprint.arguments(WebFormPatchSchema)
    @blueprint.response(200, WebFormSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, web_form_id):
        """Change the form (If-Match: its version); active=false stops it taking posts."""
        form = get_form(web_form_id)
        version = check_if_match(form)
        services.update_form(form, data, actor_id=current_user.id, expected_version=version)
        return with_etag(jsonify(form_out(form)), form)


@blueprint.route("/<int:web_form_id>/submissions")
class WebFormSubmissions(MethodView):
    @blueprint.arguments(SubmissionQuery, location="query")
    @blueprint.response(200, page_schema(SubmissionSchema))
    def get(self, args, web_form_id):
        """What visitors sent, newest first; ?result=spam for the rejected ones."""
        form = get_form(web_form_id)
        total, items = _page(services.submissions(form, args.get("result")), args)
        return jsonify({"items": [submission_out(s, current_user.id) for s in items], "total": total,
                        "page": args["page"], "per_page": args["per_page"]})


# -- the public endpoint ---------------------------------------------------------------------------

def _live(key):
    form = services.live_form(key) if len(key) <= 40 else None
    if form is None:
        raise ApiError(404)
    return form


def _payload():
    """What the visitor sent, as {name: value}; a body over the limit is a 413."""
    if (request.content_length or 0) > services.MAX_BODY:
        raise RequestEntityTooLarge()
    request.max_content_length = services.MAX_BODY  # also bounds a body sent without a length
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ApiError(400, message=services.INVALID_JSON)
        return data
    # Several boxes of one name (a custom field of several choices): one answer, "a;b".
    return {name: ";".join(values) if len(values) > 1 else values[0] for name, values in request.form.lists()}


def _answer_page(form, status, message, fields=None):
    labels = {f["name"]: f["label"] for f in services.form_fields(form)} if form else {}
    body = render_template("crm_core/webforms/public_answer.html", status=status, message=message,
                           problems=[(labels.get(name, name), text) for name, text in (fields or {}).items()])
    return current_app.response_class(body, status=status)


@public_blueprint.route("/<string(maxlength=40):web_form_key>")
@public
@csrf_exempt
class WebToLead(MethodView):
    crm_body_types = {"application/x-www-form-urlencoded", "multipart/form-data"}

    @public_blueprint.response(200, PublicFormSchema)
    @public_blueprint.doc(security=[])
    def get(self, web_form_key):
        """The fields of an active form and a fresh submission token (for integrations that
        post JSON: one token per submission makes a repeat harmless)."""
        form = _live(web_form_key)
        return jsonify({"token": services.issue_token(form), "fields": services.form_fields(form)})

    @public_blueprint.response(201, ReceivedSchema)
    @public_blueprint.alt_response(303, description="a form post: to the thank-you address")
    @public_blueprint.alt_response(413, description="the body is over 32 KiB")
    @public_blueprint.alt_response(429, description="too many submissions from this address")
    @public_blueprint.doc(security=[], parameters=[
        {"in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string"}}],
        requestBody={"content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}})
    def post(self, web_form_key):
        """Send a form: a lead (or, honeypot filled, a spam record) and its stored submission;
        the same token or Idempotency-Key again answers the first result and creates nothing.
        JSON gets 201 with the submission's id. A plain HTML form post
        (application/x-www-form-urlencoded or multipart/form-data) is answered for a browser:
        303 to the thank-you page, or an HTML page with the message."""
        as_json = request.mimetype not in self.crm_body_types
        form = None
        try:
            form = _live(web_form_key)
            services.check_origin(form, request.headers.get("Origin"), request.headers.get("Referer"))
            payload = _payload()
            submission, _repeated = services.submit(form, payload, client_address(),
                                                    header_key=request.headers.get("Idempotency-Key"))
        except RequestEntityTooLarge:
            error = ApiError(413, message=services.TOO_LARGE)
        except services.Refused as refused:
            headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
            error = ApiError(refused.status, refused.code, refused.message, headers=headers)
        except UserError as problem:
            error = ApiError(422, fields={f: [str(m)] for f, m in problem.fields.items()})
        except ApiError as refused:
            error = refused
        else:
            if as_json:
                return jsonify({"id": submission.uid}), 201
            if form.thank_you_url:
                return redirect(form.thank_you_url, code=303)
            return _answer_page(form, 201, services.THANKS)
        if as_json:
            raise error
        response = _answer_page(form, error.code, error.message,
                                {name: " ".join(messages) for name, messages in error.fields.items()})
        for name, value in error.headers.items():
            response.headers[name] = value
        return response
