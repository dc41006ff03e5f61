"""The access engine: who may see and change which record (see ACCESS_MODEL.md).

One set of rules, three forms that must always agree:
- ``level(user, record)``: the user's level on one record;
- ``read_filter(user, object, level)``: a peewee expression selecting exactly the
  records where the user has at least ``level`` (lists, counts, sums, exports...);
- ``explain(user, record)``: the level and every reason behind it.

Nothing is cached between requests: the organisation, roles, rules and shares are
read when a request first needs them (I8).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import peewee
from flask import current_app, g, has_app_context

from crm_core.errors import FieldValueError, RegistryError

log = logging.getLogger("crm.access")


class Level(IntEnum):
    NONE = 0
    READ = 1
    EDIT = 2
    DELETE = 3
    TRANSFER = 4
    ALL = 5


# What each operation needs.
OPERATION_LEVEL = {"read": Level.READ, "update": Level.EDIT, "delete": Level.DELETE,
                   "transfer": Level.TRANSFER, "share": Level.ALL}
DEFAULT_LEVELS = {"private": Level.NONE, "read": Level.READ, "read_write": Level.EDIT}
FIELD_HIDDEN, FIELD_READ, FIELD_EDIT = 0, 1, 2


@dataclass(frozen=True)
class ChildLink:
    """Readers of a ``child`` record whose ``field`` points here may READ this record."""

    child: str
    field: str


@dataclass(frozen=True)
class AccessObject:
    """A kind of record under the access rules.

    ``owner_field``: the column holding the owner's user id. ``children``: the
    implicit parent read. ``role_defaults``: object permissions of the built-in
    roles when an administrator has not set them, as letters: c r e d (create,
    read, edit, delete), V (view all), M (modify all).
    """

    name: str
    model: Any
    label: Any = None
    owner_field: str = "owner_id"
    children: tuple = ()
    role_defaults: dict = field(default_factory=lambda: {
        "sales_manager": "cred", "sales_rep": "cred", "auditor": "rV"})

    @property
    def owner_column(self):
        return getattr(self.model, self.owner_field)


@dataclass(frozen=True)
class Permission:
    """A named permission beyond the object permissions (``territory.realign``)."""

    name: str
    label: Any = None
    roles: tuple = ("administrator",)


@dataclass(frozen=True)
class ObjectPermissions:
    create: bool = False
    read: bool = False
    edit: bool = False
    delete: bool = False
    view_all: bool = False
    modify_all: bool = False


ALL_PERMISSIONS = ObjectPermissions(True, True, True, True, True, True)


@dataclass(frozen=True)
class Reason:
    level: Level
    code: str  # owner, manager, default, sharing_rule, share, parent, plugin, view_all, ...
    detail: str = ""


@dataclass(frozen=True)
class QueryGrant:
    """A plugin's grant in query form: records matching ``expression`` at ``level``."""

    level: Level
    expression: Any
    reason: str = ""


@dataclass(frozen=True)
class ShareTarget:
    """A kind of group sharing rules can share with (see crm_register_share_targets):
    ``members(target_id) -> set of user ids``, ``targets_of(user_id) -> set of target
    ids``, ``names(actor_id) -> [(target_id, label)]``."""

    type: str
    label: Any
    members: Any
    targets_of: Any
    names: Any


@dataclass(frozen=True)
class ReadParts:
    """A read filter as whole owners plus other grants (see ``AccessEngine.read_parts``)."""

    everyone: bool
    owners: frozenset = frozenset()
    others: tuple = ()


# -- the organisation as the rules need it --------------------------------------------------

@dataclass
class Organisation:
    """Departments, effective managers and teams, read once per request."""

    department_parent: dict
    department_head: dict
    user_department: dict
    user_manager: dict
    user_active: dict
    team_members: dict
    # {type: ShareTarget} the plugins registered (crm_register_share_targets)
    share_targets: dict = field(default_factory=dict)
    # {(type, id): user ids} of the plugins' groups asked so far (this organisation lives
    # as long as the request)
    plugin_members: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, share_targets=None):
        from crm_core.org.models import Department, TeamMember
        from crm_core.users.models import User

        def rows(query):
            # Plain ids and flags: read without peewee's per-value conversion, which costs
            # more than the query itself for a company of a thousand people.
            return query.model._meta.database.execute_sql(*query.sql()).fetchall()

        departments = rows(Department.select(Department.id, Department.parent, Department.head)
                           .where(Department.deleted_at.is_null()))
        users = [(u, d, m, bool(a)) for u, d, m, a in rows(
            User.select(User.id, User.department, User.manager, User.active).where(User.deleted_at.is_null()))]
        members = defaultdict(set)
        for team_id, user_id in rows(TeamMember.select(TeamMember.team, TeamMember.user)):
            members[team_id].add(user_id)
        return cls(
            department_parent={d: p for d, p, _ in departments},
            department_head={d: h for d, _, h in departments},
            user_department={u: d for u, d, _, _ in users},
            user_manager={u: m for u, _, m, _ in users},
            user_active={u: a for u, _, _, a in users},
            team_members=members,
            share_targets=dict(share_targets or {}),
        )

    def ancestors(self, department_id):
        """The department and every department above it."""
        # Memoised per organisation (one request): the manager of each of a thousand
        # users walks up the same few departments.
        chains = self.__dict__.setdefault("_chains", {})
        if department_id not in chains:
            chain, seen, current = [], set(), department_id
            while current is not None and current not in seen:
                seen.add(current)
                chain.append(current)
                current = self.department_parent.get(current)
            chains[department_id] = tuple(chain)
        return list(chains[department_id])

    def subtree(self, department_id):
        return {d for d in self.department_parent if department_id in self.ancestors(d)}

    def manager_of(self, user_id):
        """The explicit manager, else the head of the department (or of the one above)."""
        explicit = self.user_manager.get(user_id)
        if explicit is not None:
            return explicit
        for department_id in self.ancestors(self.user_department.get(user_id)):
            head = self.department_head.get(department_id)
            if head is not None and head != user_id:
                return head
        return None

    def subordinates(self, user_id):
        """Everyone below ``user_id`` in the management chain (any depth)."""
        reports = defaultdict(set)
        for other in self.user_department:
            manager = self.manager_of(other)
            if manager is not None:
                reports[manager].add(other)
        found, todo = set(), [user_id]
        while todo:
            for report in reports.get(todo.pop(), ()):
                if report not in found and report != user_id:
                    found.add(report)
                    todo.append(report)
        return found

    def members(self, target_type, target_id):
        """User ids in a group."""
        if target_type == "user":
            return {target_id}
        if target_type == "team":
            return set(self.team_members.get(target_id, ()))
        if target_type == "department":
            return {u for u, d in self.user_department.items() if d == target_id}
        if target_type == "department_tree":
            tree = self.subtree(target_id)
            return {u for u, d in self.user_department.items() if d in tree}
        if target_type in self.share_targets:
            known = self.plugin_members  # a plugin's group is asked once per request
            if (target_type, target_id) not in known:
                known[(target_type, target_id)] = _plugin_ids(
                    self.share_targets[target_type], "members", target_id)
            return set(known[(target_type, target_id)])
        return set()


@dataclass(frozen=True)
class Subject:
    """Who asks, with everything the rules need to know about them (frozen: a hook
    cannot change what later decisions see)."""

    user_id: int
    active: bool
    is_admin: bool
    departments: list  # own department and those above
    teams: set
    subordinates: set
    role_ids: list
    role_keys: set
    # (type, id) of the plugins' share targets the user belongs to, computed when the
    # subject is built (once per request): {("territory", 7), ...}
    plugin_targets: frozenset = frozenset()

    def in_target(self, target_type, target_id):
        if target_type == "user":
            return target_id == self.user_id
        if target_type == "team":
            return target_id in self.teams
        if target_type == "department":
            return bool(self.departments) and self.departments[0] == target_id
        if target_type == "department_tree":
            return target_id in self.departments
        return (target_type, target_id) in self.plugin_targets


# -- the engine -----------------------------------------------------------------------------

class AccessEngine:
    """The rules of one application (objects from the core and the plugins, hooks)."""

    def __init__(self, app, objects, permissions=(), share_targets=()):
        self.app = app
        self.permissions = {permission.name: permission for permission in permissions}
        self.share_targets = {target.type: target for target in share_targets}
        self.objects = {}
        for obj in objects:
            if obj.name in self.objects:
                raise RegistryError(f"access object {obj.name!r} is registered twice")
            self.objects[obj.name] = obj
        self._by_model = {}
        for obj in self.objects.values():
            if obj.model in self._by_model:
                raise RegistryError(f"access objects {self._by_model[obj.model].name!r} and "
                                    f"{obj.name!r} use the same model {obj.model.__name__}")
            self._by_model[obj.model] = obj

    # -- per-request state ---------------------------------------------------------------

    def _cache(self):
        """Per-request memo (flask.g); a fresh dict outside a request."""
        if has_app_context():
            cache = g.get("_crm_access")
            if cache is None:
                cache = g._crm_access = {}
            return cache
        return {}

    def organisation(self):
        cache = self._cache()
        if "org" not in cache:
            cache["org"] = Organisation.load(self.share_targets)
        return cache["org"]

    def subject(self, user):
        from crm_core.org.models import Role, UserRole

        user_id = getattr(user, "id", user)
        cache = self._cache()
        key = ("subject", user_id)
        if key not in cache:
            org = self.organisation()
            roles = list(Role.select(Role.id, Role.key).join(UserRole)
                         .where((UserRole.user == user_id) & Role.deleted_at.is_null()).tuples())
            role_keys = {k for _, k in roles if k}
            cache[key] = Subject(
                user_id=user_id,
                active=bool(org.user_active.get(user_id, False)),
                is_admin="administrator" in role_keys,
                departments=tuple(org.ancestors(org.user_department.get(user_id))),
                teams=frozenset(t for t, members in org.team_members.items() if user_id in members),
                subordinates=frozenset(org.subordinates(user_id)),
                role_ids=tuple(r for r, _ in roles),
                role_keys=frozenset(role_keys),
                plugin_targets=frozenset(
                    (kind, target_id) for kind, target in self.share_targets.items()
                    for target_id in _plugin_ids(target, "targets_of", user_id)),
            )
        return cache[key]

    def object(self, name_or_model):
        if isinstance(name_or_model, str):
            return self.objects[name_or_model]
        return self._by_model[name_or_model]

    # -- object permissions --------------------------------------------------------------

    def object_permissions(self, user, name):
        from crm_core.org.models import RolePermission

        subject = self.subject(user)
        if not subject.active:
            return ObjectPermissions()
        if subject.is_admin:
            return ALL_PERMISSIONS
        cache = self._cache()
        key = ("perms", subject.user_id, name)
        if key in cache:
            return cache[key]
        obj = self.objects[name]
        rows = {row.role_id: row for row in RolePermission.select().where(
            RolePermission.role.in_(subject.role_ids) & (RolePermission.object == name))}
        flags = dict.fromkeys(("create", "read", "edit", "delete", "view_all", "modify_all"), False)
        for role_id in subject.role_ids:
            row = rows.get(role_id)
            if row is not None:
                granted = {"create": row.can_create, "read": row.can_read, "edit": row.can_edit,
                           "delete": row.can_delete, "view_all": row.view_all,
                           "modify_all": row.modify_all}
            else:
                granted = _letters(obj.role_defaults.get(self._role_key(role_id), ""))
            for flag, value in granted.items():
                flags[flag] = flags[flag] or value
        if flags["modify_all"]:
            flags.update(read=True, edit=True, delete=True, view_all=True)
        if flags["view_all"]:
            flags["read"] = True
        cache[key] = ObjectPermissions(**flags)
        return cache[key]

    def has_permission(self, user, name):
        """Does any of the user's roles hold the named permission? (Administrators: all.)"""
        from crm_core.org.models import RoleGrant

        if name not in self.permissions:
            raise KeyError(f"no permission {name!r}; registered: {', '.join(sorted(self.permissions))}")
        subject = self.subject(user)
        if not subject.active:
            return False
        if subject.is_admin:
            return True
        cache = self._cache()
        key = ("grants", subject.user_id)
        if key not in cache:
            from crm_core.org.models import Role

            roles = list(Role.select(Role.id, Role.key, Role.grants_set)
                         .where(Role.id.in_(sorted(subject.role_ids))))
            granted = {p for (p,) in RoleGrant.select(RoleGrant.permission)
                       .where(RoleGrant.role.in_([r.id for r in roles if r.grants_set])).tuples()}
            # A role whose named permissions no administrator has set yet holds the
            # defaults each permission was registered with.
            cache[key] = (granted, {r.key for r in roles if not r.grants_set and r.key})
        granted, undecided_keys = cache[key]
        return name in granted or bool(set(self.permissions[name].roles) & undecided_keys)

    def _role_key(self, role_id):
        from crm_core.org.models import Role

        cache = self._cache()
        if "role_keys" not in cache:
            cache["role_keys"] = dict(Role.select(Role.id, Role.key).tuples())
        return cache["role_keys"].get(role_id)

    # -- settings read per request ---------------------------------------------------------

    def default(self, name):
        from crm_core.org.models import AccessDefault

        cache = self._cache()
        if "defaults" not in cache:
            cache["defaults"] = {row.object: row for row in AccessDefault.select()}
        row = cache["defaults"].get(name)
        return (DEFAULT_LEVELS.get(row.access, Level.NONE) if row else Level.NONE,
                row.managers_inherit if row else True)

    def sharing_rules(self, name):
        from crm_core.org.models import SharingRule

        cache = self._cache()
        key = ("rules", name)
        if key not in cache:
            cache[key] = list(SharingRule.select().where(
                (SharingRule.object == name) & SharingRule.deleted_at.is_null()))
        return cache[key]

    # -- hooks ------------------------------------------------------------------------------

    def _hook_results(self, hook_name, **kwargs):
        """[(owner, answer items)] of every plugin, and whether any of them failed.

        Each owner is called on its own, so a plugin that raises loses only its own
        grants (and, for restrictions, denies): it is logged with its name (I5).
        """
        host = self.app.extensions["crm"]
        answers, failed = [], False
        for owner, caller in host._owner_callers(hook_name):
            try:
                results = caller(app=self.app, **kwargs)
            except Exception:  # a broken plugin must never open access
                log.exception("access hook %s of %s failed: it grants nothing and denies", hook_name, owner)
                failed = True
                continue
            for result in reversed(results):
                answers.append((owner, result if isinstance(result, (list, tuple)) else [result]))
        return answers, failed

    @staticmethod
    def _junk(hook_name, owner, item):
        log.error("access hook %s of %s returned %r, which is not understood: ignored, denying",
                  hook_name, owner, item)

    # -- one record ---------------------------------------------------------------------------

    def explain(self, user, record):
        """(level, reasons): the level on ``record`` and every reason behind it."""
        obj = self.object(type(record))
        subject = self.subject(user)
        reasons = []
        if not subject.active:
            return Level.NONE, [Reason(Level.NONE, "inactive")]
        permissions = self.object_permissions(user, obj.name)
        if not permissions.read:
            return Level.NONE, [Reason(Level.NONE, "no_object_permission", obj.name)]
        if getattr(record, "deleted_at", None) is not None:
            return Level.NONE, [Reason(Level.NONE, "deleted")]
        answers, failed = self._hook_results("crm_access_record_restrictions", actor=subject,
                                             object=obj.name, record=record)
        denials = []
        for owner, items in answers:
            for item in items:
                if isinstance(item, str):
                    if item:
                        denials.append(item)
                elif item not in (None, False):
                    self._junk("crm_access_record_restrictions", owner, item)
                    failed = True
        if failed or denials:
            return Level.NONE, [Reason(Level.NONE, "restricted", "; ".join(map(str, denials))
                                       or "a restriction hook failed")]
        if subject.is_admin:
            reasons.append(Reason(Level.ALL, "administrator"))
        if permissions.modify_all:
            reasons.append(Reason(Level.TRANSFER, "modify_all"))
        elif permissions.view_all:
            reasons.append(Reason(Level.READ, "view_all"))
        reasons.extend(self._record_grants(subject, obj, record))
        level = max((r.level for r in reasons), default=Level.NONE)
        return Level(level), reasons

    def level(self, user, record):
        return self.explain(user, record)[0]

    def _record_grants(self, subject, obj, record):
        org = self.organisation()
        owner = getattr(record, obj.owner_field)
        default, managers_inherit = self.default(obj.name)
        grants = []
        if owner == subject.user_id:
            grants.append(Reason(Level.ALL, "owner"))
        if managers_inherit and owner in subject.subordinates:
            grants.append(Reason(Level.ALL, "manager", str(owner)))
        if default > Level.NONE:
            grants.append(Reason(default, "default"))
        for rule in self.sharing_rules(obj.name):
            if subject.in_target(rule.target_type, rule.target_id) and _rule_matches(
                    rule, obj, record, org):
                grants.append(Reason(Level(rule.level), "sharing_rule", rule.name))
        for share in self._shares_of(obj.name, record.get_id()):
            if subject.in_target(share.target_type, share.target_id):
                grants.append(Reason(Level(share.level), "share", f"{share.target_type} {share.target_id}"))
        for link in obj.children:
            child = self.objects[link.child]
            readable = self.read_filter(subject.user_id, link.child)
            if readable is not None and child.model.select().where(
                    readable & (getattr(child.model, link.field) == record.get_id())).exists():
                grants.append(Reason(Level.READ, "parent", link.child))
        answers, _failed = self._hook_results("crm_access_record_grants", actor=subject,
                                              object=obj.name, record=record)
        for owner, items in answers:
            for reason in items:
                level = _valid_level(getattr(reason, "level", None)) if isinstance(reason, Reason) else None
                if level is None:
                    if reason is not None:
                        self._junk("crm_access_record_grants", owner, reason)
                    continue
                grants.append(Reason(level, reason.code, reason.detail))
        return grants

    def _shares_of(self, name, record_id):
        from crm_core.org.models import RecordShare

        return list(RecordShare.select().where((RecordShare.object == name)
                                               & (RecordShare.record_id == record_id)))

    def can(self, user, record, operation):
        """May ``user`` do ``operation`` (read/update/delete/transfer/share) on ``record``?"""
        obj = self.object(type(record))
        permissions = self.object_permissions(user, obj.name)
        needed = {"update": permissions.edit, "delete": permissions.delete}.get(operation, True)
        return needed and self.level(user, record) >= OPERATION_LEVEL[operation]

    # -- the query form --------------------------------------------------------------------

    def read_filter(self, user, name, level=Level.READ):
        """The records of ``name`` where ``user`` has at least ``level``, as an expression;
        None when there are none (the caller answers an empty list, never everything)."""
        parts = self.read_branches(user, name, level)
        if parts is None:
            return None
        bounded, grants = parts
        if grants is None:
            return bounded if bounded is not None else peewee.SQL("1 = 1")
        either = _or(grants)
        return either if bounded is None else (bounded & either)

    def read_branches(self, user, name, level=Level.READ):
        """The read filter in parts: None when nothing is readable, else ``(bounded, grants)``:
        a visible record satisfies ``bounded`` (None: no bound) and at least one of ``grants``
        (None: ``bounded`` alone decides). ``read_filter`` is their AND.

        A first page can then run one query per grant, each on its own index and stopping at
        the page's end, instead of one OR that the planner answers by collecting and sorting
        every readable row (``page_of``)."""
        obj = self.objects[name]
        model = obj.model
        subject = self.subject(user)
        if not subject.active or not self.object_permissions(user, name).read:
            return None
        restrictions = self._plugin_restrictions(subject, name)
        if restrictions is None:
            return None
        if hasattr(model, "deleted_at"):
            restrictions.insert(0, model.deleted_at.is_null())
        bounded = _and(restrictions)
        if self._sees_everything(subject, name, level):
            return bounded, None
        grants = self._query_grants(subject, obj, level)
        if grants is None:  # the default alone grants it
            return bounded, None
        if not grants:
            return None
        return bounded, grants

    def _plugin_restrictions(self, subject, name):
        """The plugins' restrictions on ``name`` as a list of expressions; None when a hook
        failed or answered junk (nothing is visible then: fail closed)."""
        restrictions = []
        answers, failed = self._hook_results("crm_access_restrictions", actor=subject, object=name)
        for owner, items in answers:
            for expression in items:
                if expression is None:
                    continue
                if not isinstance(expression, peewee.Node):
                    self._junk("crm_access_restrictions", owner, expression)
                    failed = True
                    continue
                restrictions.append(expression)
        return None if failed else restrictions

    def _sees_everything(self, subject, name, level):
        """Administrator, Modify All (up to transfer) or View All (reading)."""
        permissions = self.object_permissions(subject.user_id, name)
        return subject.is_admin or (permissions.modify_all and level <= Level.TRANSFER) or (
            permissions.view_all and level <= Level.READ)

    def page_of(self, user, name, condition=None, order=None, offset=0, limit=50, level=Level.READ):
        """The records of ``name`` that ``user`` may see (at ``level``) and that match
        ``condition``, ordered by ``order`` (fields or orderings; the id breaks ties) from
        ``offset``, at most ``limit``: the same rows as ``query(...).where(condition)``.

        With several grants each runs as its own branch, ordered and cut at
        ``offset + limit`` (each on the index its grant allows: a rep's owner index walked in
        page order, a share list, a rule's column), and the union of the branches is ordered
        and cut again. A rep's first page then costs what the plain owner query costs."""
        model = self.objects[name].model
        order = list(order or [model.id.desc()])
        if not any(getattr(o, "node", o) is model.id for o in order):
            descending = getattr(order[-1], "direction", "ASC") == "DESC"
            order.append(model.id.desc() if descending else model.id.asc())
        parts = self.read_branches(user, name, level)
        if parts is None:
            return []
        bounded, grants = parts
        base = [e for e in (bounded, condition) if e is not None]
        if grants is None or len(grants) == 1:
            where = _and(base + list(grants or [])) or peewee.SQL("1 = 1")
            return list(model.select().where(where).order_by(*order).offset(offset).limit(limit))
        branch_sql, branch_params = [], []
        for i, grant in enumerate(grants):
            branch = (model.select(model.id).where(_and(base + [grant]))
                      .order_by(*order).limit(offset + limit))
            sql, params = branch.sql()
            branch_sql.append(f'SELECT "b{i}"."id" FROM ({sql}) AS "b{i}"')
            branch_params.extend(params)
        ids = peewee.SQL("(" + " UNION ".join(branch_sql) + ")", branch_params)
        return list(model.select().where(model.id.in_(ids)).order_by(*order).offset(offset).limit(limit))

    def _query_grants(self, subject, obj, level):
        parts = self._grant_parts(subject, obj, level)
        if parts is None:
            return None
        owners, others = parts
        return [obj.owner_column.in_(sorted(owners)), *others]

    def _grant_parts(self, subject, obj, level):
        """(owners, other grants): every record of the ``owners`` (the user, their
        subordinates when managers inherit, the owners of an owner-based sharing rule that
        reaches the user), plus the records matching any of the other expressions; None
        when the organisation-wide default alone grants ``level``."""
        from crm_core.org.models import RecordShare

        org = self.organisation()
        model = obj.model
        default, managers_inherit = self.default(obj.name)
        if default >= level:
            return None
        owners = {subject.user_id}
        if managers_inherit:
            owners |= subject.subordinates
        others = []
        for rule in self.sharing_rules(obj.name):
            if rule.level >= level and subject.in_target(rule.target_type, rule.target_id):
                if rule.kind == "owner":
                    owners |= org.members(rule.source_type, rule.source_id)
                    continue
                expression = _rule_expression(rule, obj, org)
                if expression is not None:
                    others.append(expression)
        targets = [(RecordShare.target_type == "user") & (RecordShare.target_id == subject.user_id)]
        if subject.teams:
            targets.append((RecordShare.target_type == "team")
                           & RecordShare.target_id.in_(sorted(subject.teams)))
        if subject.departments:
            targets.append((RecordShare.target_type == "department")
                           & (RecordShare.target_id == subject.departments[0]))
            targets.append((RecordShare.target_type == "department_tree")
                           & RecordShare.target_id.in_(subject.departments))
        shared = (RecordShare.select(RecordShare.record_id)
                  .where((RecordShare.object == obj.name) & (RecordShare.level >= int(level))
                         & _or(targets)))
        others.append(in_subquery(model.id, shared))
        if level <= Level.READ:
            for link in obj.children:
                child = self.objects[link.child]
                readable = self.read_filter(subject.user_id, link.child)
                if readable is not None:
                    column = getattr(child.model, link.field)
                    others.append(in_subquery(model.id, child.model.select(column).where(
                        readable & column.is_null(False))))
        answers, _failed = self._hook_results("crm_access_grants", actor=subject, object=obj.name)
        for owner, items in answers:
            for grant in items:
                valid = (isinstance(grant, QueryGrant) and _valid_level(grant.level) is not None
                         and isinstance(grant.expression, peewee.Node))
                if not valid:
                    if grant is not None:
                        self._junk("crm_access_grants", owner, grant)
                    continue
                if grant.level >= level:
                    others.append(grant.expression)
        return owners, others

    def read_parts(self, user, name, level=Level.READ):
        """The read filter split for maintained aggregates, or None when it cannot be split
        (no access at all, a plugin restriction, a failing restriction hook): the caller
        then scans with ``read_filter``, which is always exact.

        The records the user may read (at ``level``) are exactly the live records
        (``deleted_at`` empty) owned by one of ``parts.owners`` (by anyone when
        ``parts.everyone``) plus the live records matching one of ``parts.others``.
        """
        obj = self.objects[name]
        subject = self.subject(user)
        if not subject.active or not self.object_permissions(user, name).read \
                or not hasattr(obj.model, "deleted_at"):
            return None
        if self._plugin_restrictions(subject, name) != []:  # failed (None) or restricted
            return None
        if self._sees_everything(subject, name, level):
            return ReadParts(everyone=True)
        parts = self._grant_parts(subject, obj, level)
        if parts is None:
            return ReadParts(everyone=True)
        owners, others = parts
        return ReadParts(everyone=False, owners=frozenset(owners), others=tuple(others))

    def query(self, user, name, *fields, level=Level.READ):
        """``SELECT`` of the records ``user`` may see (at ``level``): lists, counts, sums."""
        model = self.objects[name].model
        condition = self.read_filter(user, name, level)
        return model.select(*fields).where(condition if condition is not None else peewee.SQL("1 = 0"))

    # -- fields ---------------------------------------------------------------------------------

    def field_levels(self, user, name):
        """{field: hidden/read/edit} for the fields some rule mentions; others are editable.

        A user's roles combine by the most permissive; plugin rules only restrict.
        """
        subject = self.subject(user)
        cache = self._cache()
        key = ("role_fields", subject.user_id, name)
        if key not in cache:
            # Asked once per record when a list is dumped: the roles' rules are read once
            # per request (the plugins' rules are asked every time, they are in memory).
            cache[key] = self._role_field_levels(subject, name)
        levels = dict(cache[key])
        answers, failed = self._hook_results("crm_access_field_rules", actor=subject, object=name)
        for owner, items in answers:
            for rules in items:
                if rules is None:
                    continue
                if not isinstance(rules, dict) or not all(
                        isinstance(k, str) and type(v) is int and FIELD_HIDDEN <= v <= FIELD_EDIT
                        for k, v in rules.items()):
                    self._junk("crm_access_field_rules", owner, rules)
                    failed = True
                    continue
                for field_name, value in rules.items():
                    levels[field_name] = min(levels.get(field_name, FIELD_EDIT), value)
        if failed:
            levels["*"] = FIELD_HIDDEN  # every field hidden: fail closed
        return levels

    @staticmethod
    def _role_field_levels(subject, name):
        """The roles' rules: for each field, the most permissive of the user's roles."""
        from crm_core.org.models import FieldRule

        if subject.is_admin:
            return {}
        per_field = defaultdict(dict)
        for rule in FieldRule.select().where(FieldRule.role.in_(subject.role_ids)
                                             & (FieldRule.object == name)):
            per_field[rule.field][rule.role_id] = rule.level
        levels = {}
        for field_name, by_role in per_field.items():
            # A role without a rule for this field leaves it editable.
            levels[field_name] = max(by_role.get(r, FIELD_EDIT) for r in subject.role_ids)
        return {f: lv for f, lv in levels.items() if lv < FIELD_EDIT}


# -- helpers ---------------------------------------------------------------------------------------

def _plugin_ids(target, function, argument):
    """A share target's ``members``/``targets_of`` answer as a set of ints. A plugin that
    raises or answers junk gives nobody (logged): a broken plugin never opens access (I5)."""
    try:
        answer = getattr(target, function)(argument)
        ids = {int(item) for item in answer or () if not isinstance(item, bool)}
        if len(ids) != len(list(answer or ())):
            raise TypeError(f"not a set of ids: {answer!r}")
        return ids
    except Exception:  # noqa: BLE001 - any failure of a plugin's function denies
        log.exception("share target %s: %s(%r) failed: it gives nobody", target.type, function, argument)
        return set()


def _valid_level(value):
    """A Level, or None for anything else (a plugin's junk)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return Level(value)
    except ValueError:
        return None


def _letters(spec):
    return {"create": "c" in spec, "read": "r" in spec, "edit": "e" in spec, "delete": "d" in spec,
            "view_all": "V" in spec, "modify_all": "M" in spec}


def _and(expressions):
    result = None
    for expression in expressions:
        result = expression if result is None else (result & expression)
    return result


def _or(expressions):
    result = None
    for expression in expressions:
        result = expression if result is None else (result | expression)
    return result


def in_subquery(column, query):
    """``column IN (query)``; on PostgreSQL written ``column = ANY(ARRAY(query))``: the array
    is computed once, so an OR of grants combines index scans (BitmapOr) instead of testing
    every row against a hashed subplan (a rep's first page of 1M opportunities: ~230 ms ->
    ~1 ms). ``query`` must select no NULL."""
    from crm_core.db import vendor

    if vendor() == "postgresql":
        return column == peewee.fn.ANY(peewee.NodeList((peewee.SQL("ARRAY"), query)))
    return column.in_(query)


def rule_value(column, raw):
    """What a criteria rule's stored text ``raw`` means for ``column``, as Python sees it.

    Raises ValueError (or the money field's FieldValueError) when ``raw`` cannot be a value
    of the column; timestamps are refused: no two records share one to the microsecond.
    """
    from crm_core.db import MoneyField, UTCDateTimeField

    text = str(raw).strip()
    if isinstance(column, peewee.ForeignKeyField):
        column = column.rel_field
    if isinstance(column, (UTCDateTimeField, peewee.DateTimeField)):
        raise ValueError("a sharing rule cannot compare timestamps")
    if isinstance(column, peewee.BooleanField):
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if text.lower() not in truth:
            raise ValueError(raw)
        return truth[text.lower()]
    if isinstance(column, (MoneyField, peewee.DecimalField)):
        value = decimal.Decimal(text)
        if not value.is_finite():
            raise ValueError(raw)
        column.db_value(value)  # refuses what the column cannot hold (places, range)
        return value
    if isinstance(column, peewee.IntegerField):
        if not re.fullmatch(r"[+-]?\d{1,19}", text) or abs(int(text)) >= 2**63:
            raise ValueError(raw)
        return int(text)
    if isinstance(column, peewee.FloatField):
        return float(text)
    if isinstance(column, peewee.DateField):
        return dt.date.fromisoformat(text)
    if isinstance(column, peewee.CharField) and column.max_length and len(str(raw)) > column.max_length:
        raise ValueError(raw)
    return str(raw)


def _rule_values(rule, column):
    """The rule's values for ``column``; one that cannot be a value of it (a rule written
    before the field changed type) matches nothing, and is logged."""
    values = []
    for raw in json.loads(rule.values or "[]"):
        try:
            values.append(rule_value(column, raw))
        except (ValueError, TypeError, ArithmeticError, FieldValueError):
            log.warning("sharing rule %s: %r is not a value of %s; it matches nothing",
                        rule.id, raw, column.name)
    return values


def _rule_expression(rule, obj, org):
    if rule.kind == "owner":
        members = org.members(rule.source_type, rule.source_id)
        return obj.owner_column.in_(sorted(members)) if members else None
    column = getattr(obj.model, rule.field, None)
    if column is None:
        return None
    values = _rule_values(rule, column)
    return column.in_(values) if values else None


def _rule_matches(rule, obj, record, org):
    if rule.kind == "owner":
        return getattr(record, obj.owner_field) in org.members(rule.source_type, rule.source_id)
    column = getattr(obj.model, rule.field, None)
    if column is None:
        return False
    value = record.__data__.get(rule.field)
    # Compared as stored, as the SQL form compares them.
    return value is not None and column.db_value(value) in {
        column.db_value(v) for v in _rule_values(rule, column)}


def engine(app=None):
    return (app or current_app).extensions["crm_access"]
