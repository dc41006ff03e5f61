"""Roles remember whether an administrator set their named permissions; org-wide
defaults carry a version for optimistic locking."""

from peewee import BooleanField, ForeignKeyField, IntegerField

from crm_core.migrator import frozen_table


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("role", "grants_set", BooleanField(default=False)),
        migrator.add_column("access_default", "version", IntegerField(default=1)),
    )
    # A role that already holds named permissions was set by an administrator.
    role = frozen_table(db, "role", {"grants_set": BooleanField(default=False)})
    grant = frozen_table(db, "role_grant", {"role": ForeignKeyField(role)})
    role.update(grants_set=True).where(role.id.in_(grant.select(grant.role))).execute()
