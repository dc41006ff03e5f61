"""The rules of web-to-lead.

Forms: which lead fields a form asks (label, required or not), where its leads go, the
campaign and source they carry, where the visitor goes afterwards, which sites may post.

Submissions: a visitor's post is counted against the per-address limit (in the database,
shared by every worker process), must carry a token this form issued, is answered from the
first result when it repeats (same submission token, or same ``Idempotency-Key``), is kept
as spam when the honeypot is filled, and otherwise becomes a lead: the lead and the stored
submission (raw payload, address, time, result, a possible duplicate) are written in ONE
transaction, so nothing accepted is ever dropped and nothing half-written is left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlsplit

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.db import database, utcnow
from crm_core.duplicates.check import unchecked
from crm_core.errors import UserError
from crm_core.leads import services as leads
from crm_core.leads.models import LEAD_SOURCES, Lead
from crm_core.org.services import Problems
from crm_core.record_checks import choice, owner, readable, save_changes, text
from crm_core.records import create_record
from crm_core.users import throttle
from crm_core.webforms.models import ASSIGN_BY, WebForm, WebFormSubmission

# The lead fields a form may ask, in the order the admin page lists them.
FIELDS = ("first_name", "last_name", "company", "title", "email", "phone", "mobile", "country",
          "region", "city", "industry", "description")
# Per-field limit: the lead's column, and a bound for the free text.
FIELD_LIMITS = {name: getattr(getattr(Lead, name), "max_length", None) or 5000 for name in FIELDS}
FIELD_LIMITS["description"] = 5000
MAX_BODY = 32 * 1024  # bytes of one submission: a lead never needs more
TOKEN_FIELD = "crm_token"
HONEYPOT_FIELD = "website"  # hidden by CSS: a person leaves it empty, a bot fills it
SUBMISSION_TOKEN_AGE = 24 * 3600  # seconds a per-submission token stays valid
RATE_WINDOW = dt.timedelta(minutes=10)
MAX_ORIGINS = 20
THANKS = _l("Thank you. We have received your message.")
TOO_LARGE = _l("The form is too large to send. Shorten the text and try again.")
INVALID_JSON = _l("Send the form as a JSON object of texts.")


class Refused(Exception):
    """A submission refused before anything is stored: ``status`` is the HTTP answer."""

    def __init__(self, status, code, message, retry_after=None):
        super().__init__(str(message))
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


# -- forms -------------------------------------------------------------------------------------

def form_fields(form):
    """The fields a form asks: [{"name", "label", "required"}], in the form's order."""
    return json.loads(form.fields)


def origins(form):
    return [line for line in (form.allowed_origins or "").splitlines() if line]


def _origin(value):
    """``https://shop.example.com[:port]`` from a URL or an origin; None when it is not one."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


CUSTOM = "custom."  # a custom field of leads is asked as "custom.<key>"
CUSTOM_LIMIT = 2000  # characters a visitor may send for one custom field


def custom_specs():
    """{"custom.<key>": spec} of the live custom fields of leads a form may ask."""
    from crm_core.customfields.registry import definitions

    return {spec.name: spec for spec in definitions("lead")}


def askable():
    """Every field a form may ask: the lead's own, then its custom fields."""
    return FIELDS + tuple(custom_specs())


def _check_fields(values, problems):
    if "fields" not in values:
        return
    asked = values["fields"]
    if not isinstance(asked, list) or not asked:
        problems.add("fields", _l("Choose the fields the form asks."))
        return
    clean, seen = [], set()
    specs = custom_specs()
    for item in asked:
        name = item.get("name") if isinstance(item, dict) else None
        label = (item.get("label") or "").strip() if isinstance(item, dict) else ""
        if name not in FIELDS + tuple(specs) or name in seen:
            problems.add("fields", _l("Choose among: %(choices)s.", choices=", ".join(FIELDS + tuple(specs))))
            return
        if not label or len(label) > 200:
            problems.add("fields", _l("Give every field a label of at most 200 characters."))
            return
        seen.add(name)
        clean.append({"name": name, "label": label, "required": bool(item.get("required"))})
    if not any(f["name"] == "last_name" and f["required"] for f in clean):
        problems.add("fields", _l("A lead needs a last name: ask it, as a required field."))
    required = {f["name"] for f in clean if f["required"]}
    for name, spec in specs.items():
        if spec.required and name not in required:
            problems.add("fields", _l("A lead needs “%(field)s”: ask it, as a required field.",
                                      field=spec.label()))
    values["fields"] = clean


def _check_form(values, problems, actor_id):
    text(values, "name", problems, required="name" in values)
    if values.get("name") and len(values["name"]) > 200:
        problems.add("name", _l("At most %(max)s characters.", max=200))
    owner(values, problems)
    if values.get("target_owner_id") is not None and not _active_user(values["target_owner_id"]):
        problems.add("target_owner_id", _l("No such user."))
    choice(values, "assign_by", ASSIGN_BY, problems)
    if "source" in values and values["source"] is None:
        problems.add("source", _l("This field is required."))
    choice(values, "source", LEAD_SOURCES, problems)
    if values.get("campaign_id") is not None:
        readable("campaign", values["campaign_id"], actor_id, problems, "campaign_id", _l("No such campaign."))
    text(values, "thank_you_url", problems)
    url = values.get("thank_you_url")
    if url and (len(url) > 2000 or _origin(url) is None or any(c in url for c in "\r\n\t ")):
        problems.add("thank_you_url", _l("Enter an address that starts with http:// or https://."))
    if "allowed_origins" in values:
        raw = values["allowed_origins"] or []
        if isinstance(raw, str):
            raw = raw.split()
        found = [_origin(item) for item in raw if item.strip()]
        if None in found or len(found) > MAX_ORIGINS:
            problems.add("allowed_origins", _l("Enter sites such as https://www.example.com, one a line."))
        else:
            values["allowed_origins"] = "\n".join(dict.fromkeys(found)) or None
    if "rate_limit" in values and not (isinstance(values["rate_limit"], int) and 1 <= values["rate_limit"] <= 10000):
        problems.add("rate_limit", _l("Enter a number from 1 to 10000."))
    _check_fields(values, problems)


def _stored(values):
    values = dict(values)
    if "fields" in values:
        values["fields"] = json.dumps(values["fields"], ensure_ascii=False)
    if "campaign_id" in values:
        values["campaign"] = values.pop("campaign_id")
    return values


def create_form(values, actor_id=None):
    values = dict(values)
    values.setdefault("owner_id", actor_id)
    values.setdefault("source", "web")
    problems = Problems()
    for name in ("name", "fields"):
        if not values.get(name):
            problems.add(name, _l("This field is required."))
    _check_form(values, problems, actor_id)
    problems.check()
    return create_record(WebForm, actor_id=actor_id, key=secrets.token_urlsafe(18),
                         secret=secrets.token_hex(32), **_stored(values))


def update_form(form, changes, actor_id=None, expected_version=None):
    changes = dict(changes)
    problems = Problems()
    for name in ("name", "fields"):
        if name in changes and not changes[name]:
            problems.add(name, _l("This field is required."))
    _check_form(changes, problems, actor_id)
    problems.check()
    return save_changes(form, "web_form", _stored(changes), actor_id, expected_version)


def live_form(key):
    """The active form with this public key, or None."""
    return WebForm.alive().where((WebForm.key == key) & (WebForm.active == True)).first()  # noqa: E712


# -- tokens ------------------------------------------------------------------------------------
# A token is "<kind>.<nonce>.<issued>.<mac>", the MAC keyed by the form's own secret (so a
# token of one form is worthless on another, and no process-wide key has to be shared).
# kind "f": the snippet's token, the same for every visitor of a static page;
# kind "s": one submission's token (GET .../token), valid for a day.

def _mac(form, body):
    return hmac.new(form.secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:32]


def issue_token(form, kind="s", now=None):
    issued = int(now if now is not None else time.time())
    nonce = "0" if kind == "f" else secrets.token_urlsafe(12)
    body = f"{kind}.{nonce}.{issued if kind == 's' else 0}"
    return f"{body}.{_mac(form, body)}"


def snippet_token(form):
    return issue_token(form, "f")


def _read_token(form, token, now=None):
    """(kind, nonce) of a valid token of this form, or None."""
    if not isinstance(token, str) or len(token) > 200 or token.count(".") != 3:
        return None
    body, _, mac = token.rpartition(".")
    if not hmac.compare_digest(mac, _mac(form, body)):
        return None
    kind, nonce, issued = body.split(".")
    if kind == "s" and not (0 <= (now or time.time()) - int(issued) <= SUBMISSION_TOKEN_AGE):
        return None
    return (kind, nonce) if kind in ("f", "s") else None


def _digest(*parts):
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def idempotency_key(form, token, payload, header_key=None):
    """What makes two posts "the same submission".

    An ``Idempotency-Key`` header names it; so does a per-submission token. The snippet's
    token is shared by every visitor of the page, so alone it cannot: with it, the same
    content posted again (a double click, a reload) is the same submission, while another
    visitor's content is a new one and is never swallowed.
    """
    if header_key:
        return "k:" + _digest(header_key)
    kind, nonce = token
    if kind == "s":
        return "s:" + _digest(nonce)
    return "f:" + _digest(json.dumps(payload, sort_keys=True, ensure_ascii=False))


# -- owner, assignment rules and duplicates ----------------------------------------------------------

def _active_user(user_id):
    from crm_core.users.models import User

    return User.alive().where((User.id == user_id) & (User.active == True)).exists()  # noqa: E712


def choose_owner(form, values):
    """The owner a lead of this form is created with: the target owner, or the form's
    owner when there is no target or it is no longer an active user; when neither is, the
    first active administrator, so that a visitor is never refused for the form's settings.
    Under "rules" this is the fallback the assignment rules then move the lead from
    (``assign``); a lead no rule matches stays with it."""
    from crm_core.users.models import User

    for candidate in (form.target_owner_id, form.owner_id):
        if candidate and _active_user(candidate):
            return candidate
    admin = (User.alive().where((User.active == True) & (User.is_admin == True))  # noqa: E712
             .order_by(User.id).first())
    return admin.id if admin else form.owner_id


def assign(form, lead):
    """Under "rules", let the lead rules give the new lead (or propose an owner, by the rule
    set's mode) and notify the new owner, inside the caller's transaction. The form asks
    for the rules itself, so they run even when the rule set does not run on creation.
    Returns the rules' outcome for the lead (``("assigned", owner id)`` ...), or None."""
    if form.assign_by != "rules":
        return None
    from crm_core.assignment.services import apply_rules

    return apply_rules("lead", [lead], actor_id=None).get(lead.id)


def _campaign_of(form):
    """The form's campaign while it is alive (a campaign in the recycle bin is left out
    rather than refusing the visitor)."""
    from crm_core.leads.models import Campaign

    if form.campaign_id and Campaign.alive().where(Campaign.id == form.campaign_id).exists():
        return form.campaign_id
    return None


def find_duplicate(values):
    """("lead" | "contact", id) of an existing record sharing an exact key (email, phone
    under the duplicate rules of each object, normalised by crm_core.duplicates), or None.

    System-wide on purpose (a visitor is no user); who later sees the link goes through the
    access engine. A match only flags the submission: the lead is made all the same."""
    from crm_core.duplicates.check import find_duplicates_bulk

    for name in ("lead", "contact"):
        found = find_duplicates_bulk(name, [values], actor_id=None, country=values.get("country") or None)[0]
        if found:
            return name, found[0]
    return None


# -- submissions -------------------------------------------------------------------------------

def check_origin(form, origin_header, referer_header):
    """Refuse a browser post from a site that is not allowed (when the form names sites).
    A post without Origin or Referer (a server-side integration) is not a browser's."""
    allowed = origins(form)
    if not allowed:
        return
    sent = origin_header or referer_header
    if sent and _origin(sent) not in allowed:
        raise Refused(403, "origin_not_allowed", _l("This form cannot be sent from this site."))


def check_rate(form, address, now=None):
    rule = throttle.Rule("webform", form.rate_limit, RATE_WINDOW, RATE_WINDOW)
    wait = throttle.hit(f"webform:{form.id}|{address}", rule, now=now)
    if wait:
        raise Refused(429, "too_many_requests", _l("Too many submissions. Try again later."),
                      retry_after=wait)


def _values(form, payload):
    """The lead's values from what the visitor sent: only the asked fields, each checked
    for its size and presence; every problem at once, per field."""
    from crm_core.customfields import validate

    problems = Problems()
    values, custom = {}, {}
    for field in form_fields(form):
        name = field["name"]
        raw = payload.get(name)
        if name.startswith(CUSTOM):
            _custom_value(field, raw, custom, problems)
            continue
        if raw is not None and not isinstance(raw, str):
            problems.add(name, _l("Enter text."))
            continue
        value = (raw or "").strip()
        if len(value) > FIELD_LIMITS[name]:
            problems.add(name, _l("At most %(max)s characters.", max=FIELD_LIMITS[name]))
        elif "\x00" in value:
            problems.add(name, _l("Remove the invisible control character."))
        elif not value and field["required"]:
            problems.add(name, _l("This field is required."))
        elif value:
            values[name] = value
    if custom:
        # The custom fields' own rules (type, choices), each message in the visitor's language.
        checked, errors = validate("lead", custom, partial=True)
        for name, message in errors.items():
            problems.add(name, message)
        values["custom"] = {key: value for key, value in checked.items() if value is not None}
    problems.check()
    return values


def _custom_value(field, raw, custom, problems):
    """A custom field's raw answer (text, or a list of texts for several choices) into
    ``custom``, after the form's own checks: presence and size."""
    name = field["name"]
    parts = raw if isinstance(raw, list) else [raw] if raw is not None else []
    if not all(isinstance(part, str) for part in parts):
        problems.add(name, _l("Enter text."))
        return
    parts = [part.strip() for part in parts if part.strip()]
    if sum(len(part) for part in parts) > CUSTOM_LIMIT:
        problems.add(name, _l("At most %(max)s characters.", max=CUSTOM_LIMIT))
    elif any("\x00" in part for part in parts):
        problems.add(name, _l("Remove the invisible control character."))
    elif not parts:
        if field["required"]:
            problems.add(name, _l("This field is required."))
    else:
        custom[name[len(CUSTOM):]] = parts if isinstance(raw, list) else parts[0]


def _store(form, key, address, payload, result, lead=None, duplicate=None):
    return WebFormSubmission.create(
        uid=secrets.token_hex(16), form=form.id, idempotency_key=key, address=address[:64],
        created_at=utcnow(), payload=json.dumps(payload, ensure_ascii=False), result=result,
        lead=lead.id if lead else None, duplicate_of=duplicate[0] if duplicate else None,
        duplicate_id=duplicate[1] if duplicate else None)


def _first(form, key):
    return WebFormSubmission.get_or_none((WebFormSubmission.form == form.id)
                                         & (WebFormSubmission.idempotency_key == key))


def submit(form, payload, address, header_key=None, now=None):
    """Take one visitor's post: returns (submission, repeated). Raises Refused (nothing
    stored) or UserError with the per-field messages (nothing stored)."""
    check_rate(form, address, now=now)
    token = _read_token(form, payload.get(TOKEN_FIELD))
    if token is None:
        raise Refused(400, "invalid_token", _l("This form has expired. Reload the page and send it again."))
    if header_key is not None and not (0 < len(header_key) <= 200):
        raise Refused(400, "invalid_idempotency_key", _l("The Idempotency-Key header is not valid."))
    payload = {name: value for name, value in payload.items() if name != TOKEN_FIELD}
    key = idempotency_key(form, token, payload, header_key)
    first = _first(form, key)
    if first is not None:
        return first, True
    honeypot = payload.get(HONEYPOT_FIELD)
    try:
        with database.atomic():
            if honeypot:
                return _store(form, key, address, payload, "spam"), False
            values = _values(form, payload)
            duplicate = find_duplicate(values)
            values.update({"source": form.source, "campaign_id": _campaign_of(form),
                           "owner_id": choose_owner(form, values)})
            with unchecked():  # a visitor is never refused as a duplicate: flagged instead
                lead = leads.create_lead(values, actor_id=None)
            assign(form, lead)
            submission = _store(form, key, address, payload, "lead", lead, duplicate)
    except peewee.IntegrityError:
        # The same submission, sent twice at once: the other one won; answer with its result.
        first = _first(form, key)
        if first is None:
            raise
        return first, True
    from crm_core.notifications.services import send_soon

    send_soon()  # the new owner's email, now that the lead is committed
    return submission, False


def submissions(form, result=None):
    query = WebFormSubmission.select().where(WebFormSubmission.form == form.id)
    if result:
        query = query.where(WebFormSubmission.result == result)
    return query.order_by(WebFormSubmission.created_at.desc(), WebFormSubmission.id.desc())


def visible_link(submission, actor_id):
    """(object, id) of the lead and of the possible duplicate, each only when ``actor_id``
    may read it: the submission list shows nothing more than its reader may see."""
    from crm_core.permissions import engine

    out = {}
    for label, name, record_id in (("lead", "lead", submission.lead_id),
                                   ("duplicate", submission.duplicate_of, submission.duplicate_id)):
        if name and record_id:
            model = engine().objects[name].model
            if engine().query(actor_id, name).where(model.id == record_id).exists():
                out[label] = (name, record_id)
    return out


def may_manage(actor_id):
    from crm_core.permissions import engine

    return actor_id is not None and engine().has_permission(actor_id, "webforms.manage")


def snippet(form, action_url):
    """The HTML a company pastes into its own site: a plain form (no script) posting to
    ``action_url``, the snippet token hidden, the honeypot hidden by a CSS class."""
    from flask_babel import gettext
    from markupsafe import escape

    lines = ['<style>.crm-hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}</style>',
             f'<form method="post" action="{escape(action_url)}" accept-charset="utf-8">',
             f'  <input type="hidden" name="{TOKEN_FIELD}" value="{escape(snippet_token(form))}">']
    kinds = {"email": "email", "phone": "tel", "mobile": "tel"}
    specs = custom_specs()
    for field in form_fields(form):
        name, required = field["name"], " required" if field["required"] else ""
        spec = specs.get(name)
        if name.startswith(CUSTOM) and spec is None:
            continue  # a custom field retired since: no longer asked
        if spec is not None and spec.type == "multi_choice":
            # Several boxes of one name: the endpoint joins them into one answer.
            lines.append(f'  <fieldset><legend>{escape(field["label"])}</legend>')
            for number, value in enumerate(spec.choice_values):
                lines.append(f'  <label><input type="checkbox" id="crm-{name}-{number}" name="{name}" '
                             f'value="{escape(value)}"> {escape(spec.choice_label(value))}</label><br>')
            lines.append('  </fieldset>')
            continue
        lines.append(f'  <p><label for="crm-{name}">{escape(field["label"])}</label><br>')
        if spec is not None and spec.type in ("choice", "boolean"):
            options = (spec.choice_values if spec.type == "choice" else ("yes", "no"))
            labels = ({value: spec.choice_label(value) for value in options} if spec.type == "choice"
                      else {"yes": gettext("Yes"), "no": gettext("No")})
            lines.append(f'  <select id="crm-{name}" name="{name}"{required}><option value=""></option>'
                         + "".join(f'<option value="{escape(v)}">{escape(labels[v])}</option>' for v in options)
                         + '</select></p>')
        elif spec is not None:
            kind = {"number": "number", "money": "number", "date": "date"}.get(spec.type, "text")
            step = ' step="any"' if kind == "number" else ""
            lines.append(f'  <input id="crm-{name}" name="{name}" type="{kind}"{step} '
                         f'maxlength="{CUSTOM_LIMIT}"{required}></p>')
        elif name == "description":
            lines.append(f'  <textarea id="crm-{name}" name="{name}" maxlength="{FIELD_LIMITS[name]}"'
                         f'{required}></textarea></p>')
        else:
            lines.append(f'  <input id="crm-{name}" name="{name}" type="{kinds.get(name, "text")}" '
                         f'maxlength="{FIELD_LIMITS[name]}"{required}></p>')
    lines += [f'  <p class="crm-hp" aria-hidden="true"><label for="crm-{HONEYPOT_FIELD}">Website</label>'
              f'<input id="crm-{HONEYPOT_FIELD}" name="{HONEYPOT_FIELD}" type="text" tabindex="-1" '
              'autocomplete="off"></p>',
              '  <p><button type="submit">' + str(escape(gettext("Send"))) + '</button></p>', '</form>']
    return "\n".join(lines)


__all__ = ["create_form", "update_form", "live_form", "submit", "choose_owner", "assign", "find_duplicate",
           "issue_token", "snippet", "submissions", "UserError"]
