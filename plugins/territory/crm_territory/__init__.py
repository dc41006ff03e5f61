"""Territory plugin: territories in models, members, placement of accounts and leads by
criteria, realignment, territory visibility through the access engine's hooks, and the
territory as a report dimension.

This module holds only the manifest and thin hook implementations; each one imports the
module that does the work when it is called (see README.md for the map).
"""

from crm_core import PluginManifest, Setting, hookimpl

manifest = PluginManifest(
    name="territory",
    label="Territories",
    version="1.0.0",
    core=">=0.1,<1",
    description="Territories and territory models, assignment by territory, territory visibility.",
    hookspecs="crm_territory.hookspecs",
    settings=(
        Setting("several_territories_per_rep", default=False,
                help="allow a rep to be a member of more than one territory of a model"),
        Setting("manager_level", default="edit",
                help="the level a territory manager has on the records of the subtree (read or edit)"),
        Setting("realign_batch", default=5000,
                help="records placed per statement batch while realigning"),
    ),
)


# -- data ---------------------------------------------------------------------------------

@hookimpl
def crm_register_models(app):
    from crm_territory import models

    return [models.TerritoryModel, models.Territory, models.TerritoryMember,
            models.TerritoryRecord, models.TerritoryRealignment]


@hookimpl
def crm_register_migrations(app):
    return "crm_territory.migrations"


@hookimpl
def crm_register_commands(app):
    from crm_territory.commands import commands

    return commands()


@hookimpl
def crm_register_tasks(app):
    from crm_territory.realign import tasks

    return tasks()


# -- web ------------------------------------------------------------------------------------

@hookimpl
def crm_register_blueprints(app):
    from crm_territory.views import blueprint

    return [blueprint]


@hookimpl
def crm_register_api_blueprints(app):
    from crm_territory.api import blueprint
    from crm_territory.realign_api import blueprint as realign_blueprint

    return [blueprint, realign_blueprint]


@hookimpl
def crm_menu_items(app, actor):
    from crm_territory.views import menu_items

    return menu_items(actor)


@hookimpl
def crm_page_slot(app, slot, actor, context):
    from crm_territory.views import page_slot

    return page_slot(slot, actor, context)


# -- access ---------------------------------------------------------------------------------

@hookimpl
def crm_register_permissions(app):
    from crm_territory.access import permissions

    return permissions()


@hookimpl
def crm_access_grants(app, actor, object):
    from crm_territory.access import query_grants

    return query_grants(actor, object)


@hookimpl
def crm_access_record_grants(app, actor, object, record):
    from crm_territory.access import record_grants

    return record_grants(actor, object, record)


@hookimpl
def crm_record_ext(app, actor, object, records):
    from crm_territory.access import record_ext

    return record_ext(actor, object, records)


# -- placement (placement.py): records placed as they are written, merged, assigned -----------------------

@hookimpl
def crm_records_written(app, actor_id, object, ids, fields):
    from crm_territory.placement import records_written

    records_written(object, ids, fields)


@hookimpl
def crm_records_merged(app, object, survivor, merged, actor_id):
    from crm_territory.placement import records_merged

    records_merged(object, merged)


@hookimpl
def crm_register_assignment_targets(app):
    from crm_territory.placement import assignment_targets

    return assignment_targets()


# -- pages, reports and demo data (terr-ui) -----------------------------------------------------

@hookimpl
def crm_register_report_dimensions(app):
    from crm_territory.reporting import dimensions

    return dimensions()


@hookimpl
def crm_demo_data(app, seed):
    from crm_territory.demo import load

    load(seed)


# -- access (H2): the share target "territory" ----------------------------------------------

@hookimpl
def crm_register_share_targets(app):
    from crm_territory.access import share_targets

    return share_targets()
