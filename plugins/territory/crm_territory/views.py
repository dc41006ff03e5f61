"""The territory pages (under /plugins/territory/)."""

from flask import Blueprint

blueprint = Blueprint("territory_ui", __name__, template_folder="templates")


def menu_items(actor):
    return []


def page_slot(slot, actor, context):
    return None
