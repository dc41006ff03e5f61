"""Departments, teams, roles and their object permissions, org-wide defaults,
sharing rules, manual shares and field rules."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow
from crm_core.records import RecordModel
from crm_core.users.models import User

# Who a sharing rule or a share is for.
TARGET_TYPES = ("user", "team", "department", "department_tree")


class Department(RecordModel):
    name = peewee.CharField(max_length=200)
    parent = peewee.ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    head = peewee.ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")


class Team(RecordModel):
    name = peewee.CharField(max_length=200, unique=True)


class TeamMember(BaseModel):
    team = peewee.ForeignKeyField(Team, backref="members", on_delete="CASCADE")
    user = peewee.ForeignKeyField(User, backref="team_links", on_delete="CASCADE")

    class Meta:
        indexes = ((("team", "user"), True),)


class Role(RecordModel):
    """A set of object permissions; ``key`` names the built-in ones."""

    name = peewee.CharField(max_length=100, unique=True)
    key = peewee.CharField(max_length=50, null=True, unique=True)
    # False until an administrator sets the role's named permissions: until then the
    # defaults registered with each permission apply to the built-in roles.
    grants_set = peewee.BooleanField(default=False)


class RolePermission(BaseModel):
    role = peewee.ForeignKeyField(Role, backref="permissions", on_delete="CASCADE")
    object = peewee.CharField(max_length=64)
    can_create = peewee.BooleanField(default=False)
    can_read = peewee.BooleanField(default=False)
    can_edit = peewee.BooleanField(default=False)
    can_delete = peewee.BooleanField(default=False)
    view_all = peewee.BooleanField(default=False)
    modify_all = peewee.BooleanField(default=False)

    class Meta:
        indexes = ((("role", "object"), True),)


class UserRole(BaseModel):
    user = peewee.ForeignKeyField(User, backref="role_links", on_delete="CASCADE")
    role = peewee.ForeignKeyField(Role, backref="user_links", on_delete="CASCADE")

    class Meta:
        indexes = ((("user", "role"), True),)


class AccessDefault(BaseModel):
    """Organisation-wide default of an object: private, read or read_write; and whether
    managers above the owner get full access."""

    object = peewee.CharField(max_length=64, primary_key=True)
    access = peewee.CharField(max_length=16, default="private")
    managers_inherit = peewee.BooleanField(default=True)
    version = peewee.IntegerField(default=1)


class SharingRule(RecordModel):
    """Records owned by a group (``owner``) or matching a condition (``criteria``) are
    shared with a target group at READ or EDIT."""

    object = peewee.CharField(max_length=64, index=True)
    name = peewee.CharField(max_length=200)
    kind = peewee.CharField(max_length=16)  # owner | criteria
    source_type = peewee.CharField(max_length=20, null=True)
    source_id = peewee.IntegerField(null=True)
    field = peewee.CharField(max_length=64, null=True)
    values = peewee.TextField(null=True)  # JSON list: the record's field is one of them
    target_type = peewee.CharField(max_length=20)
    target_id = peewee.IntegerField()
    level = peewee.IntegerField()


class RecordShare(BaseModel):
    """A manual share of one record with a user or group; removed when the owner changes."""

    object = peewee.CharField(max_length=64)
    record_id = peewee.BigIntegerField()
    target_type = peewee.CharField(max_length=20)
    target_id = peewee.IntegerField()
    level = peewee.IntegerField()
    created_at = UTCDateTimeField(default=utcnow)
    created_by_id = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("object", "record_id"), False),
                   (("object", "target_type", "target_id"), False))


class FieldRule(BaseModel):
    """A role's access to one field of an object: 0 hidden, 1 read, 2 edit."""

    role = peewee.ForeignKeyField(Role, backref="field_rules", on_delete="CASCADE")
    object = peewee.CharField(max_length=64)
    field = peewee.CharField(max_length=64)
    level = peewee.IntegerField()

    class Meta:
        indexes = ((("role", "object", "field"), True),)


class RoleGrant(BaseModel):
    """A named permission (registered by the core or a plugin) given to a role."""

    role = peewee.ForeignKeyField(Role, backref="grants", on_delete="CASCADE")
    permission = peewee.CharField(max_length=100)

    class Meta:
        indexes = ((("role", "permission"), True),)
