"""Departments, teams, roles, object permissions, org-wide defaults, sharing rules,
manual shares, field rules; a user's department and manager; the built-in roles."""

import datetime

from peewee import (BigIntegerField, BooleanField, CharField, ForeignKeyField, IntegerField,
                    TextField)

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1

BUILT_IN_ROLES = [("administrator", "Administrator"), ("sales_manager", "Sales manager"),
                  ("sales_rep", "Sales rep"), ("auditor", "Auditor")]


def up(migrator, db):
    user = frozen_table(db, "user", {"is_admin": BooleanField(default=False)})
    department = frozen_table(db, "department", {
        **record_columns_v1(),
        "name": CharField(max_length=200),
        "parent": ForeignKeyField("self", null=True, on_delete="RESTRICT"),
        "head": ForeignKeyField(user, null=True, on_delete="SET NULL"),
    })
    team = frozen_table(db, "team", {**record_columns_v1(), "name": CharField(max_length=200, unique=True)})
    role = frozen_table(db, "role", {
        **record_columns_v1(),
        "name": CharField(max_length=100, unique=True),
        "key": CharField(max_length=50, null=True, unique=True),
    })
    tables = [
        department, team, role,
        frozen_table(db, "team_member", {
            "team": ForeignKeyField(team, on_delete="CASCADE"),
            "user": ForeignKeyField(user, on_delete="CASCADE"),
        }, indexes=((("team", "user"), True),)),
        frozen_table(db, "role_permission", {
            "role": ForeignKeyField(role, on_delete="CASCADE"),
            "object": CharField(max_length=64),
            "can_create": BooleanField(default=False), "can_read": BooleanField(default=False),
            "can_edit": BooleanField(default=False), "can_delete": BooleanField(default=False),
            "view_all": BooleanField(default=False), "modify_all": BooleanField(default=False),
        }, indexes=((("role", "object"), True),)),
        frozen_table(db, "user_role", {
            "user": ForeignKeyField(user, on_delete="CASCADE"),
            "role": ForeignKeyField(role, on_delete="CASCADE"),
        }, indexes=((("user", "role"), True),)),
        frozen_table(db, "access_default", {
            "object": CharField(max_length=64, primary_key=True),
            "access": CharField(max_length=16, default="private"),
            "managers_inherit": BooleanField(default=True),
        }),
        frozen_table(db, "sharing_rule", {
            **record_columns_v1(),
            "object": CharField(max_length=64, index=True),
            "name": CharField(max_length=200),
            "kind": CharField(max_length=16),
            "source_type": CharField(max_length=20, null=True),
            "source_id": IntegerField(null=True),
            "field": CharField(max_length=64, null=True),
            "values": TextField(null=True),
            "target_type": CharField(max_length=20),
            "target_id": IntegerField(),
            "level": IntegerField(),
        }),
        frozen_table(db, "record_share", {
            "object": CharField(max_length=64),
            "record_id": BigIntegerField(),
            "target_type": CharField(max_length=20),
            "target_id": IntegerField(),
            "level": IntegerField(),
            "created_at": UTCDateTimeField(default=lambda: datetime.datetime.now(datetime.timezone.utc)),
            "created_by_id": IntegerField(null=True),
        }, indexes=((("object", "record_id"), False), (("object", "target_type", "target_id"), False))),
        frozen_table(db, "field_rule", {
            "role": ForeignKeyField(role, on_delete="CASCADE"),
            "object": CharField(max_length=64),
            "field": CharField(max_length=64),
            "level": IntegerField(),
        }, indexes=((("role", "object", "field"), True),)),
    ]
    db.create_tables(tables)
    migrator.migrate(
        migrator.add_column("user", "department_id",
                            ForeignKeyField(department, null=True, field=department.id,
                                            on_delete="SET NULL")),
        migrator.add_column("user", "manager_id",
                            ForeignKeyField(user, null=True, field=user.id, on_delete="SET NULL")),
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    for key, name in BUILT_IN_ROLES:
        role.insert(key=key, name=name, version=1, created_at=now, updated_at=now).execute()
    # Administrators so far had only the flag: they get the administrator role too.
    admin_role = role.get(role.key == "administrator")
    user_role = tables[5]
    admins = [row.id for row in user.select(user.id).where(user.is_admin == True)]  # noqa: E712
    if admins:
        user_role.insert_many([{"user": uid, "role": admin_role.id} for uid in admins]).execute()
