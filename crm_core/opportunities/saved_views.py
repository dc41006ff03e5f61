"""Saved views of a list: a user keeps the current filters and sort under a name, for
themselves or shared with everyone. A view holds only the query string of the list, so
what it shows is always filtered again by the access engine for whoever opens it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.db import BaseModel, UTCDateTimeField, utcnow
from crm_core.errors import UserError
from crm_core.org.services import Problems

MAX_QUERY = 2000


class SavedView(BaseModel):
    object = peewee.CharField(max_length=64)  # the list it belongs to: "opportunity"
    name = peewee.CharField(max_length=100)
    owner_id = peewee.IntegerField()
    shared = peewee.BooleanField(default=False)  # seen by everyone (who still sees only their records)
    query = peewee.TextField(default="")  # the list's query string: filters and sort
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("object", "owner_id"), False), (("object", "shared"), False))

    def args(self):
        return dict(parse_qsl(self.query))


def visible(object_name, user_id):
    """The user's own views, then those others shared, by name."""
    return list(SavedView.select().where((SavedView.object == object_name)
                                         & ((SavedView.owner_id == user_id) | (SavedView.shared == True)))  # noqa: E712
                .order_by(SavedView.owner_id != user_id, SavedView.name))


def get_visible(object_name, user_id, view_id):
    return SavedView.select().where((SavedView.id == view_id) & (SavedView.object == object_name) & (
        (SavedView.owner_id == user_id) | (SavedView.shared == True))).first()  # noqa: E712


def save(object_name, user_id, name, args, shared=False, allowed=()):
    """Keep ``args`` (only the names in ``allowed``, without empty values) as a view named
    ``name``; the user's own view of that name is replaced."""
    name = (name or "").strip()
    problems = Problems()
    if not name:
        problems.add("name", _l("This field is required."))
    elif len(name) > 100:
        problems.add("name", _l("Use at most 100 characters."))
    query = urlencode([(key, value) for key, value in args.items() if key in allowed and value not in (None, "")])
    if len(query) > MAX_QUERY:
        problems.add("name", _l("These filters are too long to keep."))
    problems.check()
    view = SavedView.get_or_none((SavedView.object == object_name) & (SavedView.owner_id == user_id)
                                 & (SavedView.name == name))
    if view is None:
        return SavedView.create(object=object_name, owner_id=user_id, name=name, shared=bool(shared), query=query)
    view.shared, view.query = bool(shared), query
    view.save()
    return view


def delete(view, user_id, is_admin=False):
    """Only its owner (or an administrator) deletes a view."""
    if view.owner_id != user_id and not is_admin:
        raise UserError(_l("Only the person who saved this view can delete it."), field="id")
    view.delete_instance()
