"""Notifications: written with the change that causes them, shown in the app to their user,
and emailed by a background job in the recipient's language with only what the recipient
may read (ACCESS_MODEL I9: the job reads as the recipient, field security included)."""

from __future__ import annotations

import json
import logging

from flask import current_app, has_app_context
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _

from crm_core.db import database, utcnow
from crm_core.notifications.models import Notification
from crm_core.api.access import _level_of
from crm_core.permissions import FIELD_HIDDEN, engine
from crm_core.users.models import User

log = logging.getLogger("crm.notifications")

KEPT_IDS = 50          # record ids a notification keeps to show (it counts them all)
SHOWN = 20             # records an email or a list entry names
EMAIL_BATCH = 100
MAX_ATTEMPTS = 5
LABEL_FIELDS = {"lead": ("first_name", "last_name", "company"), "contact": ("first_name", "last_name"),
                "account": ("name",)}


def notify_assigned(user_id, object_name, record_ids, actor_id=None):
    """Tell ``user_id`` that ``record_ids`` of ``object_name`` are theirs now (one notice)."""
    ids = list(record_ids)
    return Notification.create(
        user_id=user_id, kind="assigned", object=object_name, actor_id=actor_id, count=len(ids),
        record_id=ids[0] if len(ids) == 1 else None,
        record_ids=json.dumps(ids[:KEPT_IDS]) if len(ids) > 1 else None,
        email="pending" if has_app_context() and current_app.config.get("CRM_SMTP_URL") else "none")


def send_soon():
    """Queue the email job, unless a transaction is still open (the job could not see the
    rows yet; the every-minute sweep sends them once committed)."""
    if database.in_transaction() or not has_app_context() or not current_app.config.get("CRM_SMTP_URL"):
        return
    if Notification.select().where(Notification.email == "pending").exists():
        current_app.extensions["crm_jobs"].enqueue("core.send_notification_emails")


def ids_of(notification):
    if notification.record_id is not None:
        return [notification.record_id]
    return json.loads(notification.record_ids or "[]")


# -- what a notification says, to its reader -----------------------------------------------------------

APPROVAL_NOTICES = ("approval_requested", "approval_approved", "approval_rejected")


def sentence(notification):
    count = notification.count
    if notification.kind == "approval_requested":
        return _("A change waits for your approval.")
    if notification.kind == "approval_approved":
        return _("Your change was approved.")
    if notification.kind == "approval_rejected":
        return _("Your change was rejected.")
    if notification.kind == "assigned" and notification.object == "lead":
        return ngettext("%(num)s lead has been assigned to you.", "%(num)s leads have been assigned to you.",
                        count)
    if notification.kind == "assigned" and notification.object == "account":
        return ngettext("%(num)s account has been assigned to you.",
                        "%(num)s accounts have been assigned to you.", count)
    return ngettext("%(num)s record has been assigned to you.", "%(num)s records have been assigned to you.",
                    count)


def visible_records(notification, reader_id, limit=SHOWN):
    """[(record id, label)] of the notification's records that ``reader_id`` may read now,
    labelled with the fields they may see."""
    name = notification.object
    if not name or name not in engine().objects:
        return []
    model = engine().objects[name].model
    ids = ids_of(notification)[:limit]
    if not ids:
        return []
    levels = engine().field_levels(reader_id, name)
    fields = [f for f in LABEL_FIELDS.get(name, ("name",))
              if f in model._meta.fields and _level_of(levels, f) > FIELD_HIDDEN]
    found = []
    for record in engine().query(reader_id, name).where(model.id.in_(ids)).order_by(model.id):
        label = " · ".join(str(getattr(record, f)) for f in fields if getattr(record, f, None))
        found.append((record.id, label or f"#{record.id}"))
    return found


# -- the notification centre ---------------------------------------------------------------------------

def for_user(user_id, unread_only=False, limit=50, offset=0):
    query = Notification.select().where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_null())
    return query.order_by(Notification.created_at.desc(), Notification.id.desc())


def unread_count(user_id):
    return Notification.select().where((Notification.user_id == user_id)
                                       & Notification.read_at.is_null()).count()


def mark_read(user_id, ids=None):
    """Mark the user's notifications ``ids`` (all when None) read; others' are untouched.
    Returns how many changed."""
    query = Notification.update({Notification.read_at: utcnow()}).where(
        (Notification.user_id == user_id) & Notification.read_at.is_null())
    if ids is not None:
        query = query.where(Notification.id.in_(sorted(set(ids)) or [0]))
    return query.execute()


# -- email ----------------------------------------------------------------------------------------------

def _email_text(notification, user):
    from crm_core.users.models import User as Users

    lines = [_("Hello %(name)s,", name=user.name), "", sentence(notification), ""]
    records = visible_records(notification, user.id)
    base = (current_app.config.get("CRM_BASE_URL") or "").rstrip("/")
    endpoint = {"lead": "leads", "account": "accounts", "contact": "contacts"}.get(notification.object)
    for record_id, label in records:
        link = f" {base}/{endpoint}/{record_id}" if base and endpoint else ""
        lines.append(f"- {label}{link}")
    hidden = notification.count - len(records)
    if hidden > 0:
        lines.append(ngettext("and %(num)s more.", "and %(num)s more.", hidden))
    actor = Users.get_or_none(Users.id == notification.actor_id) if notification.actor_id else None
    approval = notification.kind in APPROVAL_NOTICES
    if actor is not None:
        lines += ["", _("By %(name)s.", name=actor.name) if approval else _("Assigned by %(name)s.", name=actor.name)]
    if base and approval:
        lines += ["", _("Your approvals: %(url)s", url=base + "/approvals")]
    elif base:
        lines += ["", _("Your notifications: %(url)s", url=base + "/notifications")]
    return "\n".join(lines) + "\n"


def render_email(notification, user):
    """(subject, text) in ``user``'s language, naming only what ``user`` may read."""
    from flask import g

    from crm_core.i18n import babel_locale

    code = user.locale or current_app.config["CRM_DEFAULT_LOCALE"]
    g.pop("_crm_access", None)  # the recipient's rules as they are now
    with force_locale(str(babel_locale(code))):
        return sentence(notification), _email_text(notification, user), code


def _claim(notification_id):
    """Take a pending email for this worker (a conditional update: one sender only)."""
    return (Notification.update({Notification.email: "sending",
                                 Notification.email_attempts: Notification.email_attempts + 1})
            .where((Notification.id == notification_id) & (Notification.email == "pending")).execute()) == 1


def send_pending_emails():
    """The job: email every pending notification to its user. A failure leaves it pending
    for the next run (at most MAX_ATTEMPTS); a user without an active account gets none."""
    from crm_core import mail

    url = current_app.config.get("CRM_SMTP_URL")
    if not url:
        return 0
    sent = 0
    pending = list(Notification.select().where(Notification.email == "pending")
                   .order_by(Notification.id).limit(EMAIL_BATCH))
    for notification in pending:
        if not _claim(notification.id):
            continue
        user = User.alive().where((User.id == notification.user_id) & (User.active == True)).first()  # noqa: E712
        if user is None or not user.email:
            Notification.update({Notification.email: "none"}).where(Notification.id == notification.id).execute()
            continue
        try:
            subject, text, code = render_email(notification, user)
            message = mail.build_message(current_app.config["CRM_MAIL_FROM"], user.email, subject, text,
                                         to_name=user.name, language=code)
            mail.send(url, message)
        except Exception as exc:  # the server or the network: try again later
            log.warning("notification %s: email failed: %s", notification.id, exc)
            state = "failed" if notification.email_attempts + 1 >= MAX_ATTEMPTS else "pending"
            Notification.update({Notification.email: state}).where(Notification.id == notification.id).execute()
            continue
        Notification.update({Notification.email: "sent", Notification.emailed_at: utcnow()}).where(
            Notification.id == notification.id).execute()
        sent += 1
    return sent
