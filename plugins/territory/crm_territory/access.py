"""Territory visibility through the access engine's hooks."""


def permissions():
    """``territory.manage`` (models, territories, members: administrators) and
    ``territory.realign`` (administrators and sales managers)."""
    from flask_babel import lazy_gettext as _l

    from crm_core.permissions import Permission

    return [Permission("territory.manage", _l("Manage territories, their models and members"),
                       roles=("administrator",)),
            Permission("territory.realign", _l("Realign a territory model"),
                       roles=("administrator", "sales_manager"))]


def query_grants(actor, object):
    return []


def record_grants(actor, object, record):
    return []


def record_ext(actor, object, records):
    return {}
