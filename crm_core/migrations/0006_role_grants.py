"""Named permissions given to roles (beyond object permissions)."""

from peewee import CharField, ForeignKeyField

from crm_core.migrator import frozen_table


def up(migrator, db):
    role = frozen_table(db, "role", {})
    db.create_tables([frozen_table(db, "role_grant", {
        "role": ForeignKeyField(role, on_delete="CASCADE"),
        "permission": CharField(max_length=100),
    }, indexes=((("role", "permission"), True),))])
