"""The notifications page (the user's own), marking them read, and the header's count."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from crm_core.notifications import services

blueprint = Blueprint("notifications", __name__, url_prefix="/notifications")

ENDPOINTS = {"lead": "leads.detail", "account": "accounts.detail", "contact": "contacts.detail"}


def entries(user_id, limit=50, unread_only=False):
    return [{"notice": n, "text": services.sentence(n), "records": services.visible_records(n, user_id),
             "endpoint": ENDPOINTS.get(n.object)}
            for n in services.for_user(user_id, unread_only=unread_only).limit(limit)]


@blueprint.get("", endpoint="list")
def list_page():
    return render_template("crm_core/notifications/list.html", entries=entries(current_user.id),
                           unread=services.unread_count(current_user.id))


@blueprint.post("/read", endpoint="read")
def mark_read():
    ids = [int(v) for v in request.form.getlist("ids") if v.isdigit()]
    services.mark_read(current_user.id, ids or None)
    return redirect(url_for("notifications.list"))


def unread_notifications():
    """For the page header: the signed-in user's unread count (0 when signed out)."""
    import peewee

    if not getattr(current_user, "is_authenticated", False):
        return 0
    try:
        return services.unread_count(current_user.id)
    except peewee.DatabaseError:  # the error page of a failing database must still render
        return 0
