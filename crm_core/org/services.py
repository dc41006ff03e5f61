"""Changing the organisation: departments, managers, teams, roles, defaults, rules, shares.

Every change takes effect on the next request: the access engine reads it afresh.
"""

from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l

from crm_core.audit.services import log_security
from crm_core.db import database
from crm_core.org.models import (TARGET_TYPES, AccessDefault, Department, RecordShare, Role,
                                 RolePermission, SharingRule, Team, TeamMember, UserRole)
from crm_core.permissions import DEFAULT_LEVELS, Level
from crm_core.records import create_record, update_record
from crm_core.users.models import User
from crm_core.users.services import UserError


def create_department(name, parent=None, head=None, actor_id=None):
    return create_record(Department, actor_id=actor_id, name=name, parent=parent, head=head)


def move_department(department, parent, actor_id=None):
    """Put ``department`` under ``parent`` (None: top level); a cycle is refused."""
    if parent is not None:
        node = Department.get_by_id(getattr(parent, "id", parent))
        seen = set()
        while node is not None and node.id not in seen:
            if node.id == department.id:
                raise UserError(_l("A department cannot be placed under itself."), field="parent_id")
            seen.add(node.id)
            node = node.parent
    return update_record(department, {"parent": parent}, actor_id=actor_id)


def place_user(user, department=None, manager=None, actor_id=None):
    """A user's department and (when it is not the department head) manager."""
    if manager is not None and getattr(manager, "id", manager) == user.id:
        raise UserError(_l("A user cannot be their own manager."), field="manager_id")
    return update_record(user, {"department": department, "manager": manager}, actor_id=actor_id)


def create_team(name, member_ids=(), actor_id=None):
    with database.atomic():
        team = create_record(Team, actor_id=actor_id, name=name)
        set_team_members(team, member_ids)
    return team


def set_team_members(team, member_ids):
    with database.atomic():
        TeamMember.delete().where(TeamMember.team == team).execute()
        rows = [{"team": team.id, "user": uid} for uid in sorted(set(member_ids))]
        if rows:
            TeamMember.insert_many(rows).execute()


BUILT_IN_ROLES = (("administrator", "Administrator"), ("sales_manager", "Sales manager"),
                  ("sales_rep", "Sales rep"), ("auditor", "Auditor"))


def ensure_builtin_roles():
    """Create the built-in roles that are missing (idempotent)."""
    existing = {key for (key,) in Role.select(Role.key).where(Role.key.is_null(False)).tuples()}
    for key, name in BUILT_IN_ROLES:
        if key not in existing:
            create_record(Role, key=key, name=name)


def role_by_key(key):
    return Role.get(Role.key == key)


def set_roles(user, roles, actor_id=None):
    """Give ``user`` exactly these roles (Role objects, ids or built-in keys)."""
    ids = []
    for role in roles:
        if isinstance(role, str):
            role = role_by_key(role)
        ids.append(getattr(role, "id", role))
    with database.atomic():
        UserRole.delete().where(UserRole.user == user).execute()
        if ids:
            UserRole.insert_many([{"user": user.id, "role": rid} for rid in sorted(set(ids))]).execute()
        is_admin = Role.select().where(Role.id.in_(ids) & (Role.key == "administrator")).exists()
        # The flag mirrors the administrator role for the pages that only need a yes/no.
        User.update(is_admin=is_admin).where(User.id == user.id).execute()
        user.is_admin = is_admin
        log_security("roles_changed", actor_id=actor_id, subject=user.email, roles=sorted(ids))


def set_object_permissions(role, object_name, actor_id=None, **flags):
    values = {f"can_{k}" if k in ("create", "read", "edit", "delete") else k: bool(v)
              for k, v in flags.items()}
    (RolePermission.insert(role=role, object=object_name, **values)
     .on_conflict(conflict_target=[RolePermission.role, RolePermission.object], update=values)
     .execute())
    log_security("object_permissions_changed", actor_id=actor_id, subject=object_name,
                 role=getattr(role, "id", role), **values)


def set_role_grants(role, permission_names, actor_id=None):
    """Exactly these named permissions for the role."""
    from crm_core.org.models import RoleGrant

    with database.atomic():
        RoleGrant.delete().where(RoleGrant.role == role).execute()
        names = sorted(set(permission_names))
        if names:
            RoleGrant.insert_many([{"role": role.id, "permission": n} for n in names]).execute()
    log_security("role_grants_changed", actor_id=actor_id, subject=role.name, permissions=names)


def set_default(object_name, access, managers_inherit=True, actor_id=None):
    if access not in DEFAULT_LEVELS:
        raise UserError(_l("Choose private, read or read-write."), field="access")
    (AccessDefault.insert(object=object_name, access=access, managers_inherit=managers_inherit)
     .on_conflict(conflict_target=[AccessDefault.object],
                  update={AccessDefault.access: access,
                          AccessDefault.managers_inherit: managers_inherit})
     .execute())
    log_security("default_changed", actor_id=actor_id, subject=object_name, access=access,
                 managers_inherit=managers_inherit)


def _check_target(target_type, level):
    if target_type not in TARGET_TYPES:
        raise UserError(_l("Share with a user, a team or a department."), field="target_type")
    if int(level) not in (Level.READ, Level.EDIT):
        raise UserError(_l("Share for reading or for editing."), field="level")


def create_sharing_rule(object_name, name, target_type, target_id, level, source_type=None,
                        source_id=None, field=None, values=None, actor_id=None):
    _check_target(target_type, level)
    kind = "owner" if source_type else "criteria"
    if kind == "owner" and source_type not in TARGET_TYPES:
        raise UserError(_l("Share the records of a user, a team or a department."), field="source_type")
    if kind == "criteria" and (not field or not values):
        raise UserError(_l("Name a field and at least one value."), field="field")
    log_security("sharing_rule_created", actor_id=actor_id, subject=object_name, name=name,
                 target=f"{target_type} {target_id}", level=int(level))
    return create_record(SharingRule, actor_id=actor_id, object=object_name, name=name, kind=kind,
                         source_type=source_type, source_id=source_id, field=field,
                         values=json.dumps([str(v) for v in values]) if values else None,
                         target_type=target_type, target_id=target_id, level=int(level))


def share_record(object_name, record_id, target_type, target_id, level, actor_id=None):
    _check_target(target_type, level)
    log_security("record_shared", actor_id=actor_id, subject=f"{object_name} {record_id}",
                 target=f"{target_type} {target_id}", level=int(level))
    return RecordShare.create(object=object_name, record_id=record_id, target_type=target_type,
                              target_id=target_id, level=int(level), created_by_id=actor_id)


def unshare(share, actor_id=None):
    log_security("record_unshared", actor_id=actor_id, subject=f"{share.object} {share.record_id}",
                 target=f"{share.target_type} {share.target_id}")
    share.delete_instance()


def owner_changed(object_name, record_id):
    """A new owner: manual shares made by the old one end (I12)."""
    removed = RecordShare.delete().where((RecordShare.object == object_name)
                                         & (RecordShare.record_id == record_id)).execute()
    if removed:
        log_security("shares_removed", subject=f"{object_name} {record_id}", count=removed)
    return removed
