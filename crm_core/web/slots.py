"""Page slots and menu items: how plugins add to core pages."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, url_for
from markupsafe import Markup, escape


@dataclass(frozen=True)
class MenuItem:
    """A navigation entry. ``label`` should be a lazy translation."""

    endpoint: str
    label: object
    order: int = 100
    icon: str | None = None

    @property
    def url(self):
        return url_for(self.endpoint)


def _actor():
    """The signed-in Actor itself (not flask-login's proxy, which dies with the request)."""
    from flask_login import current_user

    return current_user._get_current_object() if current_user.is_authenticated else None


def menu_items():
    host = current_app.extensions["crm"]
    items = []
    for result in host.call_in_order("crm_menu_items", app=current_app, actor=_actor()):
        items.extend(result or ())
    return sorted(items, key=lambda item: (item.order, str(item.label)))


def render_slot(name, **context):
    """Everything the plugins put in slot ``name``, in plugin order."""
    host = current_app.extensions["crm"]
    parts = host.call_in_order("crm_page_slot", app=current_app, slot=name, actor=_actor(),
                               context=context)
    return Markup("").join(part if isinstance(part, Markup) else escape(part) for part in parts)
