"""Changing the organisation: departments, managers, teams, roles, defaults, rules, shares.

These functions hold every rule about what a change may be (names, what ids must name,
cycles, the administrator who would lock themselves out); the JSON API and the pages
only parse and render. A refused change raises ``UserError`` with a message per input.
Changes that do not edit a record's own columns (memberships, permissions, field rules)
still move its version, so a client that read an older state gets a conflict instead of
overwriting what it never saw. Every change takes effect on the next request: the access
engine reads it afresh.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json

import peewee
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from crm_core.audit.services import log_security
from crm_core.db import database, utcnow
from crm_core.errors import FieldValueError, VersionConflict
from crm_core.org.models import (TARGET_TYPES, AccessDefault, Department, FieldRule, RecordShare, Role,
                                 RoleGrant, RolePermission, SharingRule, Team, TeamMember, UserRole)
from crm_core.permissions import (DEFAULT_LEVELS, FIELD_EDIT, FIELD_HIDDEN, Level, engine,
                                  rule_value)
from crm_core.records import BOOKKEEPING, chain_reaches, create_record, update_record
from crm_core.users.models import User
from crm_core.users.services import UserError

NAME_MAX = 200
ROLE_NAME_MAX = 100
OBJECT_FLAGS = ("create", "read", "edit", "delete", "view_all", "modify_all")


# -- checking what a change names --------------------------------------------------------------

class Problems:
    """Collects what is wrong with a change, one message per input, and refuses it at once."""

    def __init__(self):
        self.fields = {}
        self.code = None

    def add(self, field, message, code="invalid"):
        if field not in self.fields:
            self.fields[field] = message
            self.code = self.code or code

    def __contains__(self, field):
        return field in self.fields

    def check(self):
        if self.fields:
            field, message = next(iter(self.fields.items()))
            raise UserError(message, field=field, code=self.code, fields=dict(self.fields))


def _id(value):
    return getattr(value, "id", value)


def _name(name, problems, maximum=NAME_MAX, field="name"):
    name = (name or "").strip()
    if not name:
        problems.add(field, _l("Enter a name."))
    elif len(name) > maximum:
        problems.add(field, lazy_ngettext("Enter at most %(num)s character.",
                                          "Enter at most %(num)s characters.", maximum))
    return name


def _live_user(user_id, problems, field):
    if user_id is not None and not User.alive().where(User.id == _id(user_id)).exists():
        problems.add(field, _l("No such user."))


def _live_department(department_id, problems, field):
    if department_id is not None and not Department.alive().where(
            Department.id == _id(department_id)).exists():
        problems.add(field, _l("No such department."))


def _live_users(user_ids, problems, field):
    ids = sorted({_id(u) for u in user_ids})
    known = {uid for (uid,) in User.alive(User.id).where(User.id.in_(ids)).tuples()} if ids else set()
    if set(ids) - known:
        problems.add(field, _l("No such user."))
    return ids


def group_exists(kind, group_id):
    """Is ``kind``/``group_id`` a user, team or department that is not deleted?"""
    model = {"user": User, "team": Team, "department": Department,
             "department_tree": Department}.get(kind)
    return model is not None and group_id is not None and model.alive().where(
        model.id == group_id).exists()


def _group(kind, group_id, problems, field, actor_id=None, plugin_types=False):
    """A user, team or department that exists; with ``plugin_types`` (sharing rules) also a
    group of a plugin's share target type that the target offers ``actor_id``."""
    shared = engine().share_targets if plugin_types else {}
    if kind in shared:
        offered = {target_id for target_id, _label in shared[kind].names(actor_id) or ()}
        if group_id not in offered:
            problems.add(field, _l("Choose one of the groups offered for “%(kind)s”.",
                                   kind=str(shared[kind].label)))
        return
    if kind not in TARGET_TYPES:
        problems.add(field, _l("Choose a user, a team or a department."))
    elif not group_exists(kind, group_id):
        problems.add(field, {"user": _l("No such user."), "team": _l("No such team.")}.get(
            kind, _l("No such department.")))


def touch(instance, actor_id=None, expected_version=None):
    """Move a record's version for a change stored outside its own row (its members, its
    permissions); a stale ``expected_version`` raises VersionConflict and changes nothing."""
    model = type(instance)
    expected = instance.version if expected_version is None else int(expected_version)
    now = utcnow()
    count = (model.update({model.version: model.version + 1, model.updated_at: now,
                           model.updated_by_id: actor_id})
             .where((model.id == instance.id) & (model.version == expected)).execute())
    if count != 1:
        raise VersionConflict(model, instance.id, expected)
    instance.version, instance.updated_at, instance.updated_by_id = expected + 1, now, actor_id


# -- departments -------------------------------------------------------------------------------

def create_department(name, parent=None, head=None, actor_id=None):
    problems = Problems()
    name = _name(name, problems)
    _live_department(parent, problems, "parent_id")
    _live_user(head, problems, "head_id")
    problems.check()
    return create_record(Department, actor_id=actor_id, name=name, parent=_id(parent), head=_id(head))


def update_department(department, changes, actor_id=None, expected_version=None):
    """Rename, move (``parent_id``) or give a new head (``head_id``); returns what changed."""
    problems = Problems()
    values = {}
    if "name" in changes:
        values["name"] = _name(changes["name"], problems)
    if "parent_id" in changes:
        parent_id = _id(changes["parent_id"])
        _live_department(parent_id, problems, "parent_id")
        if parent_id is not None and "parent_id" not in problems and chain_reaches(
                Department, Department.get_by_id(parent_id), department.id, "parent"):
            problems.add("parent_id", _l("A department cannot be placed under itself."))
        values["parent"] = parent_id
    if "head_id" in changes:
        _live_user(changes["head_id"], problems, "head_id")
        values["head"] = _id(changes["head_id"])
    problems.check()
    return update_record(department, values, actor_id=actor_id, expected_version=expected_version)


def move_department(department, parent, actor_id=None, expected_version=None):
    """Put ``department`` under ``parent`` (None: top level); a cycle is refused."""
    return update_department(department, {"parent_id": parent}, actor_id=actor_id,
                             expected_version=expected_version)


def delete_department(department, actor_id=None, expected_version=None):
    """Into the recycle bin; its people move to the department above (or to none).

    Refused while departments below it are alive: they would lose their place in the tree.
    """
    from crm_core.recycle.services import move_to_bin

    if expected_version is not None and int(expected_version) != department.version:
        raise VersionConflict(Department, department.id, expected_version)
    if Department.alive().where(Department.parent == department.id).exists():
        raise UserError(_l("Move or delete the departments below first."), field="_schema",
                        code="has_children")
    with database.atomic():
        for user in User.select().where(User.department == department.id):
            update_record(user, {"department": department.parent_id}, actor_id=actor_id)
        group = move_to_bin(department, actor_id=actor_id, owner_field="head_id")
    log_security("department_deleted", actor_id=actor_id, subject=department.name)
    return group


# -- people -------------------------------------------------------------------------------------

def place_user(user, department=None, manager=None, actor_id=None, expected_version=None):
    """A user's department and (when it is not the department head) manager."""
    problems = Problems()
    _live_department(department, problems, "department_id")
    _live_user(manager, problems, "manager_id")
    if manager is not None and _id(manager) == user.id:
        problems.add("manager_id", _l("A user cannot be their own manager."))
    problems.check()
    return update_record(user, {"department": _id(department), "manager": _id(manager)},
                         actor_id=actor_id, expected_version=expected_version)


def role_by_key(key):
    return Role.get(Role.key == key)


def _roles(roles, problems, field="roles"):
    """Role objects for ``roles`` (Role objects, ids, built-in keys); unknown ones are a problem."""
    wanted, unknown = [], []
    for role in roles:
        if isinstance(role, str):
            found = Role.alive().where(Role.key == role).first()
            (wanted.append(found) if found else unknown.append(role))
        else:
            wanted.append(_id(role))
    ids = [r for r in wanted if not isinstance(r, Role)]
    known = {r.id: r for r in Role.alive().where(Role.id.in_(ids))} if ids else {}
    unknown += [str(r) for r in ids if r not in known]
    if unknown:
        problems.add(field, _l("No such role: %(names)s.", names=", ".join(unknown)))
    return sorted({r.id: r for r in [*(r for r in wanted if isinstance(r, Role)), *known.values()]}.values(),
                  key=lambda role: role.id)


def roles_named(names):
    """The live roles with these names; an unknown name is refused."""
    roles = list(Role.alive().where(Role.name.in_(list(names)))) if names else []
    unknown = sorted(set(names) - {role.name for role in roles})
    if unknown:
        raise UserError(_l("No such role: %(names)s.", names=", ".join(unknown)), field="roles")
    return roles


def role_ids_of(user):
    return sorted(r for (r,) in UserRole.select(UserRole.role).join(Role)
                  .where((UserRole.user == _id(user)) & Role.deleted_at.is_null()).tuples())


def set_roles(user, roles, actor_id=None, expected_version=None):
    """Give ``user`` exactly these roles (Role objects, ids or built-in keys).

    An administrator cannot take the administrator role away from themselves: nobody
    might be left to give it back.
    """
    problems = Problems()
    chosen = _roles(roles, problems)
    is_admin = any(role.key == "administrator" for role in chosen)
    if actor_id is not None and actor_id == user.id and not is_admin and "roles" not in problems:
        problems.add("roles", _l("You cannot take away your own administrator role."),
                     code="cannot_demote_self")
    problems.check()
    ids = [role.id for role in chosen]
    with database.atomic():
        touch(user, actor_id, expected_version)
        UserRole.delete().where(UserRole.user == user).execute()
        if ids:
            UserRole.insert_many([{"user": user.id, "role": rid} for rid in ids]).execute()
        # The flag mirrors the administrator role for the pages that only need a yes/no.
        User.update(is_admin=is_admin).where(User.id == user.id).execute()
        user.is_admin = is_admin
        log_security("roles_changed", actor_id=actor_id, subject=user.email, roles=ids)


# -- teams -------------------------------------------------------------------------------------

def _unique_name(model, name, problems, message, record=None, maximum=NAME_MAX):
    """A name no other record of ``model`` has (deleted ones included: the column is unique)."""
    name = _name(name, problems, maximum)
    if "name" not in problems:
        same = model.select().where(model.name == name)
        if record is not None:
            same = same.where(model.id != record.id)
        if same.exists():
            problems.add("name", message, code="duplicate")
    return name


def _team_name(name, problems, team=None):
    return _unique_name(Team, name, problems, _l("A team with this name already exists."), team)


def team_member_ids(team):
    return sorted(u for (u,) in TeamMember.select(TeamMember.user).where(TeamMember.team == _id(team)).tuples())


def create_team(name, member_ids=(), actor_id=None):
    problems = Problems()
    name = _team_name(name, problems)
    ids = _live_users(member_ids, problems, "member_ids")
    problems.check()
    with database.atomic():
        team = create_record(Team, actor_id=actor_id, name=name)
        _store_members(team, ids)
    log_security("team_changed", actor_id=actor_id, subject=name, members=ids)
    return team


def update_team(team, name=None, member_ids=None, actor_id=None, expected_version=None):
    """Rename and/or set exactly these members; the version moves either way."""
    problems = Problems()
    if name is not None:
        name = _team_name(name, problems, team)
    ids = _live_users(member_ids, problems, "member_ids") if member_ids is not None else None
    problems.check()
    members_change = ids is not None and ids != team_member_ids(team)
    with database.atomic():
        changed = update_record(team, {"name": name}, actor_id=actor_id,
                                expected_version=expected_version) if name is not None else {}
        if members_change:
            if not changed:
                touch(team, actor_id, expected_version)
            _store_members(team, ids)
    if members_change:
        log_security("team_changed", actor_id=actor_id, subject=team.name, members=ids)
    return team


def set_team_members(team, member_ids, actor_id=None, expected_version=None):
    return update_team(team, member_ids=member_ids, actor_id=actor_id,
                       expected_version=expected_version)


def _store_members(team, ids):
    TeamMember.delete().where(TeamMember.team == team).execute()
    if ids:
        TeamMember.insert_many([{"team": team.id, "user": uid} for uid in ids]).execute()


# -- roles: object permissions, named permissions, field security ---------------------------------

BUILT_IN_ROLES = (("administrator", "Administrator"), ("sales_manager", "Sales manager"),
                  ("sales_rep", "Sales rep"), ("auditor", "Auditor"))


def ensure_builtin_roles():
    """Create the built-in roles that are missing (idempotent)."""
    existing = {key for (key,) in Role.select(Role.key).where(Role.key.is_null(False)).tuples()}
    for key, name in BUILT_IN_ROLES:
        if key not in existing:
            create_record(Role, key=key, name=name)


def _role_name(name, problems, role=None):
    return _unique_name(Role, name, problems, _l("A role with this name already exists."), role,
                        ROLE_NAME_MAX)


def create_role(name, actor_id=None):
    problems = Problems()
    name = _role_name(name, problems)
    problems.check()
    role = create_record(Role, actor_id=actor_id, name=name)
    log_security("role_created", actor_id=actor_id, subject=name)
    return role


def rename_role(role, name, actor_id=None, expected_version=None):
    problems = Problems()
    name = _role_name(name, problems, role)
    problems.check()
    return update_record(role, {"name": name}, actor_id=actor_id, expected_version=expected_version)


def _known_object(object_name, problems, field="object"):
    if object_name not in engine().objects:
        problems.add(field, _l("No such kind of record."))


def object_permissions_of(role):
    """{object: ({flag: bool}, set_here)}: the stored row, else the role's built-in defaults."""
    from crm_core.permissions import _letters

    stored = {row.object: row for row in RolePermission.select().where(RolePermission.role == _id(role))}
    out = {}
    for name, obj in engine().objects.items():
        row = stored.get(name)
        if row is not None:
            out[name] = ({flag: bool(getattr(row, f"can_{flag}" if flag in OBJECT_FLAGS[:4] else flag))
                          for flag in OBJECT_FLAGS}, True)
        else:
            out[name] = (_letters(obj.role_defaults.get(role.key or "", "")), False)
    return out


def set_object_permissions(role, object_name, actor_id=None, expected_version=None, **flags):
    """Set one object's create/read/edit/delete/view all/modify all for the role."""
    return set_role_permissions(role, {object_name: flags}, actor_id=actor_id,
                                expected_version=expected_version)


def set_role_permissions(role, per_object, actor_id=None, expected_version=None):
    """Set the flags of several objects at once (``{object: {flag: bool}}``), as one change."""
    problems = Problems()
    for object_name, flags in per_object.items():
        _known_object(object_name, problems)
        if set(flags) - set(OBJECT_FLAGS):
            problems.add("permissions", _l("This value is not valid."))
    problems.check()
    with database.atomic():
        touch(role, actor_id, expected_version)
        for object_name, flags in per_object.items():
            values = {f"can_{k}" if k in OBJECT_FLAGS[:4] else k: bool(flags.get(k, False))
                      for k in OBJECT_FLAGS}
            (RolePermission.insert(role=role, object=object_name, **values)
             .on_conflict(conflict_target=[RolePermission.role, RolePermission.object], update=values)
             .execute())
            log_security("object_permissions_changed", actor_id=actor_id, subject=object_name,
                         role=role.id, **values)


def role_grants_of(role):
    """The named permissions the role holds: the stored ones once an administrator has set
    them, the registered defaults of its built-in key until then."""
    if role.grants_set:
        return sorted(p for (p,) in RoleGrant.select(RoleGrant.permission)
                      .where(RoleGrant.role == role.id).tuples())
    return sorted(name for name, permission in engine().permissions.items()
                  if role.key and role.key in permission.roles)


def set_role_grants(role, permission_names, actor_id=None, expected_version=None):
    """Exactly these named permissions for the role (from now on, not the defaults)."""
    names = sorted(set(permission_names))
    unknown = sorted(set(names) - set(engine().permissions))
    if unknown:
        raise UserError(_l("No such permission: %(names)s.", names=", ".join(unknown)),
                        field="permissions")
    with database.atomic():
        touch(role, actor_id, expected_version)
        Role.update(grants_set=True).where(Role.id == role.id).execute()
        role.grants_set = True
        RoleGrant.delete().where(RoleGrant.role == role).execute()
        if names:
            RoleGrant.insert_many([{"role": role.id, "permission": n} for n in names]).execute()
    log_security("role_grants_changed", actor_id=actor_id, subject=role.name, permissions=names)
    return names


FIELD_LEVELS = {"hidden": FIELD_HIDDEN, "read": 1, "edit": FIELD_EDIT}


def rule_fields(object_name):
    """The fields of an object that field security and criteria rules may name."""
    from crm_core.customfields.registry import definitions, opted_in

    obj = engine().objects[object_name]
    names = [name for name, column in obj.model._meta.fields.items()
             if name not in BOOKKEEPING and name != obj.owner_field and not column.primary_key
             and name != "custom"]
    if opted_in(obj.model):
        names += [spec.name for spec in definitions(object_name)]  # "custom.<key>"
    return names


def criteria_fields(object_name):
    """The fields a criteria sharing rule may compare (timestamps are never equal)."""
    from crm_core.db import UTCDateTimeField

    model = engine().objects[object_name].model
    return [name for name in rule_fields(object_name) if name in model._meta.fields
            and not isinstance(model._meta.fields[name], (UTCDateTimeField, peewee.DateTimeField))]


def field_rules_of(role):
    """{(object, field): level} of the role (fields without a rule are editable)."""
    return {(r.object, r.field): r.level for r in FieldRule.select().where(FieldRule.role == _id(role))}


def set_field_rules(role, rules, actor_id=None, expected_version=None):
    """Set the role's access to fields: ``{(object, field): "hidden" | "read" | "edit"}``.

    "edit" removes the rule (a field without one is editable).
    """
    problems = Problems()
    for (object_name, field_name), level in rules.items():
        _known_object(object_name, problems)
        if "object" not in problems and field_name not in rule_fields(object_name):
            problems.add("field", _l("No such field."))
        if level not in FIELD_LEVELS:
            problems.add("access", _l("Choose hidden, read or edit."))
    problems.check()
    current = field_rules_of(role)
    changes = {key: level for key, level in rules.items()
               if current.get(key, FIELD_EDIT) != FIELD_LEVELS[level]}
    with database.atomic():
        if not changes:
            if expected_version is not None and int(expected_version) != role.version:
                raise VersionConflict(Role, role.id, expected_version)
            return
        touch(role, actor_id, expected_version)
        for (object_name, field_name), level in changes.items():
            FieldRule.delete().where((FieldRule.role == role.id) & (FieldRule.object == object_name)
                                     & (FieldRule.field == field_name)).execute()
            if FIELD_LEVELS[level] != FIELD_EDIT:
                FieldRule.create(role=role.id, object=object_name, field=field_name,
                                 level=FIELD_LEVELS[level])
            log_security("field_rule_changed", actor_id=actor_id, subject=f"{object_name}.{field_name}",
                         role=role.id, access=level)


def reset_role(role, actor_id=None, expected_version=None):
    """Back to the built-in defaults: no stored object permissions, named permissions or
    field rules (a role an administrator made has no defaults: it then grants nothing)."""
    with database.atomic():
        touch(role, actor_id, expected_version)
        RolePermission.delete().where(RolePermission.role == role.id).execute()
        RoleGrant.delete().where(RoleGrant.role == role.id).execute()
        FieldRule.delete().where(FieldRule.role == role.id).execute()
        Role.update(grants_set=False).where(Role.id == role.id).execute()
        role.grants_set = False
    log_security("role_reset", actor_id=actor_id, subject=role.name)


# -- organisation-wide defaults -------------------------------------------------------------------

def default_of(object_name):
    """The stored default, or an unsaved one (private, managers inherit, version 0)."""
    row = AccessDefault.get_or_none(AccessDefault.object == object_name)
    return row or AccessDefault(object=object_name, access="private", managers_inherit=True, version=0)


def set_default(object_name, access, managers_inherit=True, actor_id=None, expected_version=None):
    problems = Problems()
    _known_object(object_name, problems)
    if access not in DEFAULT_LEVELS:
        problems.add("access", _l("Choose private, read or read-write."))
    problems.check()
    with database.atomic():
        current = default_of(object_name)
        if expected_version is not None and int(expected_version) != current.version:
            raise VersionConflict(AccessDefault, object_name, expected_version)
        if (current.access, bool(current.managers_inherit)) == (access, bool(managers_inherit)):
            return current
        if current.version == 0:
            written = (AccessDefault.insert(object=object_name, access=access,
                                            managers_inherit=managers_inherit, version=1)
                       .on_conflict_ignore().execute())
            if not AccessDefault.select().where((AccessDefault.object == object_name)
                                                & (AccessDefault.version == 1)
                                                & (AccessDefault.access == access)).exists():
                written = 0
        else:
            written = (AccessDefault.update(access=access, managers_inherit=managers_inherit,
                                            version=AccessDefault.version + 1)
                       .where((AccessDefault.object == object_name)
                              & (AccessDefault.version == current.version)).execute())
        if not written:
            raise VersionConflict(AccessDefault, object_name, current.version)
    log_security("default_changed", actor_id=actor_id, subject=object_name, access=access,
                 managers_inherit=managers_inherit)
    return default_of(object_name)


# -- sharing rules and shares -----------------------------------------------------------------------

def _criteria_values(obj, field_name, values, problems):
    """The values as text the rule stores, each one a value the field can hold."""
    if field_name not in rule_fields(obj.name):
        problems.add("field", _l("No such field."))
        return []
    if field_name not in criteria_fields(obj.name):
        problems.add("field", _l("A sharing rule cannot compare this field: choose another."))
        return []
    column = getattr(obj.model, field_name)
    cleaned = []
    for raw in values:
        try:
            cleaned.append(_as_text(rule_value(column, raw)))
        except (ValueError, TypeError, ArithmeticError, FieldValueError):
            problems.add("values", _l("“%(value)s” is not a value of this field.", value=str(raw)[:100]))
    if not cleaned:
        problems.add("values", _l("Name a field and at least one value."))
    return cleaned


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, decimal.Decimal, int)):
        return str(value)
    return value


def create_sharing_rule(object_name, name, target_type, target_id, level, source_type=None,
                        source_id=None, field=None, values=None, actor_id=None, kind=None):
    """Share the records of a group (``source_type``: kind "owner") or those whose ``field``
    is one of ``values`` (kind "criteria") with a user, team or department, for reading
    (READ) or editing (EDIT). Without ``kind``, a source makes it an owner rule. Either
    group may also be of a plugin's share target type (crm_register_share_targets)."""
    problems = Problems()
    _known_object(object_name, problems)
    name = _name(name, problems)
    kind = kind or ("owner" if source_type else "criteria")
    if kind == "owner":
        _group(source_type, source_id, problems, "source_id", actor_id, plugin_types=True)
    elif "object" not in problems:
        if not field:
            problems.add("field", _l("Name a field and at least one value."))
        else:
            values = _criteria_values(engine().objects[object_name], field, values or [], problems)
    _group(target_type, target_id, problems, "target_id", actor_id, plugin_types=True)
    if level not in (Level.READ, Level.EDIT):
        problems.add("level", _l("Share for reading or for editing."))
    problems.check()
    with database.atomic():
        rule = create_record(SharingRule, actor_id=actor_id, object=object_name, name=name, kind=kind,
                             source_type=source_type, source_id=source_id if kind == "owner" else None,
                             field=field if kind == "criteria" else None,
                             values=json.dumps(values) if kind == "criteria" else None,
                             target_type=target_type, target_id=target_id, level=int(level))
        log_security("sharing_rule_created", actor_id=actor_id, subject=object_name, name=name,
                     target=f"{target_type} {target_id}", level=int(level))
    return rule


def delete_sharing_rule(rule, actor_id=None, expected_version=None):
    from crm_core.records import soft_delete

    if expected_version is not None and int(expected_version) != rule.version:
        raise VersionConflict(SharingRule, rule.id, expected_version)
    with database.atomic():
        soft_delete(rule, actor_id=actor_id)
        log_security("sharing_rule_deleted", actor_id=actor_id, subject=rule.object, name=rule.name)


def share_record(object_name, record_id, target_type, target_id, level, actor_id=None):
    problems = Problems()
    _group(target_type, target_id, problems, "target_id")
    if level not in (Level.READ, Level.EDIT):
        problems.add("level", _l("Share for reading or for editing."))
    problems.check()
    with database.atomic():
        share = RecordShare.create(object=object_name, record_id=record_id, target_type=target_type,
                                   target_id=target_id, level=int(level), created_by_id=actor_id)
        log_security("record_shared", actor_id=actor_id, subject=f"{object_name} {record_id}",
                     target=f"{target_type} {target_id}", level=int(level))
    return share


def unshare(share, actor_id=None):
    with database.atomic():
        share.delete_instance()
        log_security("record_unshared", actor_id=actor_id, subject=f"{share.object} {share.record_id}",
                     target=f"{share.target_type} {share.target_id}")


def owner_changed(object_name, record_id):
    """A new owner: manual shares made by the old one end (I12)."""
    removed = RecordShare.delete().where((RecordShare.object == object_name)
                                         & (RecordShare.record_id == record_id)).execute()
    if removed:
        log_security("shares_removed", subject=f"{object_name} {record_id}", count=removed)
    return removed

