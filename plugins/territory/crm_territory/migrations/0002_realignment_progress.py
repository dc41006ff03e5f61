"""Realignment runs report their progress: how many records there are to examine, when
the run started, and when it last reported (a run silent for long is taken as dead)."""

from peewee import IntegerField

from crm_core.db import UTCDateTimeField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("territory_realignment", "total", IntegerField(default=0)),
        migrator.add_column("territory_realignment", "started_at", UTCDateTimeField(null=True)),
        migrator.add_column("territory_realignment", "updated_at", UTCDateTimeField(null=True)),
    )
