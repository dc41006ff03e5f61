"""Page slots and menu items: how plugins add to core pages."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, url_for
from markupsafe import Markup, escape


# Where an entry goes: the bar itself (None) or one of these folded groups, in this order.
MENU_GROUPS = ("tools", "reports", "admin")


def group_label(group):
    from flask_babel import lazy_gettext as _l

    return {"tools": _l("Tools"), "reports": _l("Reports"), "admin": _l("Administration")}[group]


@dataclass(frozen=True)
class MenuItem:
    """A navigation entry. ``label`` should be a lazy translation. ``group``: None for the
    bar itself (the records people work on all day), else ``tools``, ``reports`` or
    ``admin``: folded menus, so the bar stays one line as parts are added."""

    endpoint: str
    label: object
    order: int = 100
    icon: str | None = None
    group: str | None = None

    def __post_init__(self):
        if self.group is not None and self.group not in MENU_GROUPS:
            raise ValueError(f"menu item {self.endpoint!r}: group must be None or one of {MENU_GROUPS}")

    @property
    def url(self):
        return url_for(self.endpoint)


@dataclass(frozen=True)
class MenuGroup:
    key: str
    label: object
    items: tuple

    def holds(self, path):
        return any(item.url == path for item in self.items)


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


def menu():
    """The navigation as the page draws it: the bar's entries, then each group that has any
    (a MenuGroup among the entries, after them)."""
    items = menu_items()
    bar = [item for item in items if item.group is None]
    groups = [MenuGroup(key, group_label(key), tuple(i for i in items if i.group == key))
              for key in MENU_GROUPS]
    return bar + [group for group in groups if group.items]


def render_slot(name, **context):
    """Everything the plugins put in slot ``name``, in plugin order."""
    host = current_app.extensions["crm"]
    parts = host.call_in_order("crm_page_slot", app=current_app, slot=name, actor=_actor(),
                               context=context)
    return Markup("").join(part if isinstance(part, Markup) else escape(part) for part in parts)
