"""``crm territory ...`` commands."""

import click

from crm_territory.models import (Territory, TerritoryMember, TerritoryModel, TerritoryRealignment,
                                  TerritoryRecord)

TABLES = (TerritoryRealignment, TerritoryRecord, TerritoryMember, Territory, TerritoryModel)


def commands():
    @click.command("drop-tables")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def drop_tables(yes):
        """Drop every table of the territory plugin and its migration history.

        Run it before removing the plugin from CRM_PLUGINS for good: territory models,
        territories, members and placements are deleted; core records are untouched."""
        from flask import current_app

        db = current_app.extensions["crm_db"]
        names = [model._meta.table_name for model in TABLES] + ["territory_migrations"]
        if not yes:
            click.confirm(f"Drop {', '.join(names)}? This cannot be undone", abort=True)
        with db.connection_context(), db.atomic():
            present = set(db.get_tables())
            for name in names:
                if name in present:
                    db.execute_sql(f'DROP TABLE "{name}"')
        click.echo(f"Dropped {len([n for n in names if n in present])} table(s) of the territory plugin.")
        click.echo("Now remove 'territory' from CRM_PLUGINS.")

    return [drop_tables]
