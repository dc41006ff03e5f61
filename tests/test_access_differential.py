"""The access engine against a plain-Python reference of the rules (ACCESS_MODEL.md).

The first half of this file restates the rules as a small reference that never
touches the database nor the engine; hand-made cases below check the reference
itself. The second half builds 300 random organisations per run with Hypothesis
(2-5 users, some inactive, with random roles; a department tree of depth <= 3 with
random heads; explicit managers, cycles allowed; teams; object permission overrides;
org-wide defaults; owner- and criteria-based sharing rules; manual shares; 3-6
accounts with industries and amounts, some deleted; 0-4 contacts linked to them;
then 0-3 random changes) in the real database, SQLite or PostgreSQL
(CRM_DATABASE_URL), and asserts after building and after every change that, for
every user and every record, the engine's SQL path (lists at READ, EDIT and a
higher level, count, sum of amounts) and its per-record level agree with the
reference: I1 (one decision, two forms), I8 (the next request sees every change)
and I12 (changing the owner removes manual shares).

With the territory plugin on (as here), each organisation also has a territory model
(0-4 territories in a tree with read or edit levels and managers, some deleted; members,
several per rep; the core accounts placed in them), active or in planning, and a second
model in planning that places every account in one territory everyone belongs to; the
core accounts and contacts mirror the fixture ones and are compared too (territory grants
are on the core objects), through changes of members, managers, levels, placements and a
switch-over to the second model.

Each example runs in one transaction rolled back at its end (ids restart at 1, so
user 1, team 1 and department 1 coexist); sizes are chosen so that the file runs in
about a minute on 2 cores (the territory part adds about half). A failure lists every
mismatch (user, record, reference level and reasons, engine level and explain()
reasons), the organisation and the example to replay; CRM_HYPOTHESIS_SHRINK=1 also
shrinks it (slow).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from flask import g
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from crm_core.accounts.models import Account, Contact
from crm_core.db import utcnow, vendor
from crm_core.org import services as org
from crm_core.org.models import Department, RecordShare, Role, SharingRule, Team, UserRole
from crm_core.permissions import Level, engine
from crm_core.records import create_record, soft_delete, update_record
from crm_core.testing import reset_database
from crm_core.users.models import User
from crm_core.users.services import UserError, create_user, set_active
from crm_fx.models import FxAccount, FxContact
from crm_territory import services as territory_services
from crm_territory.models import Territory, TerritoryMember, TerritoryModel, TerritoryRecord

pytestmark = pytest.mark.crm_plugins("fx", "territory")


# =================================================================================================
# The reference: the rules in plain Python
# =================================================================================================

NONE, READ, EDIT, DELETE, TRANSFER, ALL = 0, 1, 2, 3, 4, 5
LEVEL_NAMES = ("NONE", "READ", "EDIT", "DELETE", "TRANSFER", "ALL")

# Object permissions of the built-in roles when no RolePermission row says otherwise:
# c create, r read, e edit, d delete, V view all, M modify all.
ROLE_DEFAULTS = {"sales_manager": "cred", "sales_rep": "cred", "auditor": "rV"}
DEFAULT_ACCESS = {"private": NONE, "read": READ, "read_write": EDIT}
# The fields of each object and how their values compare "as stored".
OBJECT_FIELDS = {
    "fx_account": {"name": str, "owner_id": int, "industry": str, "amount": Decimal},
    "fx_contact": {"name": str, "owner_id": int, "account_id": int},
    "account": {"name": str, "owner_id": int},
    "contact": {"name": str, "owner_id": int, "account_id": int},
}
# Implicit parent read: (child object, the child's field pointing at the parent).
CHILDREN = {"fx_account": [("fx_contact", "account_id")], "fx_contact": [],
            "account": [("contact", "account_id")], "contact": []}
# The objects territories grant on (the core's): accounts by their own placement, contacts
# by their account's. A territory manager's level (the plugin's default manager_level).
TERRITORY_OBJECTS = ("account", "contact")
TERRITORY_LEVELS = {"read": READ, "edit": EDIT}
MANAGER_LEVEL = EDIT


@dataclass
class RUser:
    active: bool = True
    roles: set = field(default_factory=lambda: {"sales_rep"})
    department: int | None = None
    manager: int | None = None  # explicit manager


@dataclass
class RDepartment:
    parent: int | None = None
    head: int | None = None


@dataclass
class RRecord:
    owner: int
    values: dict = field(default_factory=dict)  # name, industry, amount, account_id...
    deleted: bool = False

    def value(self, name):
        return self.owner if name == "owner_id" else self.values.get(name)


@dataclass
class RRule:
    object: str
    target: tuple  # (target type, id)
    level: int
    source: tuple | None = None  # owner-based: (source type, id)
    field: str | None = None  # criteria-based: field and values
    values: tuple = ()


@dataclass
class RShare:
    object: str
    record_id: int
    target: tuple
    level: int


@dataclass
class RTerritory:
    model: str  # "main" or "other"
    parent: int | None = None
    level: int = EDIT  # the access level of its members on its records
    manager: int | None = None
    deleted: bool = False


@dataclass
class World:
    users: dict = field(default_factory=dict)  # id -> RUser
    departments: dict = field(default_factory=dict)  # id -> RDepartment
    teams: dict = field(default_factory=dict)  # id -> set of user ids
    permissions: dict = field(default_factory=dict)  # (role key, object) -> letters
    defaults: dict = field(default_factory=dict)  # object -> (access, managers_inherit)
    rules: list = field(default_factory=list)
    shares: list = field(default_factory=list)
    records: dict = field(default_factory=lambda: {"fx_account": {}, "fx_contact": {},
                                                   "account": {}, "contact": {}})
    territories: dict = field(default_factory=dict)  # id -> RTerritory
    territory_members: set = field(default_factory=set)  # (territory id, user id)
    placements: dict = field(default_factory=dict)  # (model, account id) -> territory id
    active_model: str | None = None  # "main", "other" or None


def permissions(world, uid, obj):
    """The user's object permission letters, OR-ed over their roles."""
    user = world.users[uid]
    if not user.active:
        return set()
    if "administrator" in user.roles:
        return set("credVM")
    letters = set()
    for role in user.roles:
        letters |= set(world.permissions.get((role, obj), ROLE_DEFAULTS.get(role, "")))
    if "M" in letters:
        letters |= set("redV")
    if "V" in letters:
        letters |= set("r")
    return letters


def effective_manager(world, uid):
    """The explicit manager; else the nearest department head up the tree who is not uid."""
    user = world.users[uid]
    if user.manager is not None:
        return user.manager
    department, seen = user.department, set()
    while department is not None and department not in seen:
        seen.add(department)
        head = world.departments[department].head
        if head is not None and head != uid:
            return head
        department = world.departments[department].parent
    return None


def managers_above(world, uid):
    """Everyone up the management chain of uid (stops at a cycle)."""
    found = set()
    manager = effective_manager(world, uid)
    while manager is not None and manager not in found:
        found.add(manager)
        manager = effective_manager(world, manager)
    return found


def is_within(world, department, top):
    """Is ``department`` ``top`` or below it?"""
    while department is not None:
        if department == top:
            return True
        department = world.departments[department].parent
    return False


def members(world, target):
    """The user ids of a group: (user|team|department|department_tree, id)."""
    kind, ident = target
    if kind == "user":
        return {ident}
    if kind == "team":
        return set(world.teams.get(ident, ()))
    if kind == "department":
        return {u for u, user in world.users.items() if user.department == ident}
    if kind == "department_tree":
        return {u for u, user in world.users.items() if is_within(world, user.department, ident)}
    raise ValueError(kind)


def territory_level(world, uid, obj, rid):
    """The territory grant: a member of the record's territory or of one above it gets the
    record's territory's level, the manager of one of them MANAGER_LEVEL (active model only;
    the way up stops at a deleted territory)."""
    if obj not in TERRITORY_OBJECTS or world.active_model is None:
        return NONE
    record = world.records[obj][rid]
    account_id = rid if obj == "account" else record.value("account_id")
    placed = world.placements.get((world.active_model, account_id))
    best, current, seen = NONE, placed, set()
    while current is not None and current not in seen and not world.territories[current].deleted:
        seen.add(current)
        territory = world.territories[current]
        if (current, uid) in world.territory_members:
            best = max(best, world.territories[placed].level)
        if territory.manager == uid:
            best = max(best, MANAGER_LEVEL)
        current = territory.parent
    return best


def rule_matches(world, rule, record):
    if rule.source is not None:
        return record.owner in members(world, rule.source)
    kind = OBJECT_FIELDS[rule.object].get(rule.field)
    value = record.value(rule.field)
    if kind is None or value is None:
        return False
    return any(kind(value) == kind(wanted) for wanted in rule.values)


def level(world, uid, obj, rid):
    """(level, reasons) of user ``uid`` on record ``rid`` of ``obj``."""
    user = world.users.get(uid)
    if user is None or not user.active:
        return NONE, [("NONE", "inactive")]
    letters = permissions(world, uid, obj)
    if "r" not in letters:
        return NONE, [("NONE", "no read permission")]
    record = world.records[obj][rid]
    if record.deleted:
        return NONE, [("NONE", "deleted")]
    grants = []
    if "administrator" in user.roles:
        grants.append((ALL, "administrator"))
    if "M" in letters:
        grants.append((TRANSFER, "modify all"))
    if "V" in letters:
        grants.append((READ, "view all"))
    if record.owner == uid:
        grants.append((ALL, "owner"))
    access, managers_inherit = world.defaults.get(obj, ("private", True))
    if managers_inherit and uid in managers_above(world, record.owner):
        grants.append((ALL, "manager"))
    grants.append((DEFAULT_ACCESS[access], "default " + access))
    for number, rule in enumerate(world.rules):
        if (rule.object == obj and uid in members(world, rule.target)
                and rule_matches(world, rule, record)):
            grants.append((rule.level, f"rule #{number}"))
    for share in world.shares:
        if share.object == obj and share.record_id == rid and uid in members(world, share.target):
            grants.append((share.level, f"share to {share.target}"))
    territory = territory_level(world, uid, obj, rid)
    if territory:
        grants.append((territory, "territory"))
    for child, link in CHILDREN[obj]:
        for child_id, child_record in world.records[child].items():
            if child_record.value(link) == rid and level(world, uid, child, child_id)[0] >= READ:
                grants.append((READ, f"parent of {child} {child_id}"))
    reasons = [(LEVEL_NAMES[lv], why) for lv, why in grants if lv] or [("NONE", "no grant")]
    return max(lv for lv, _ in grants), reasons


def selected(world, uid, obj, at_least=READ):
    """The record ids a list at ``at_least`` shows to ``uid``."""
    return {rid for rid in world.records[obj] if level(world, uid, obj, rid)[0] >= at_least}


def amount_sum(world, uid, at_least=READ):
    amounts = [world.records["fx_account"][rid].values.get("amount")
               for rid in selected(world, uid, "fx_account", at_least)]
    amounts = [Decimal(a) for a in amounts if a is not None]
    return sum(amounts) if amounts else None


# =================================================================================================
# The reference on hand-made cases
# =================================================================================================

def company():
    """Sales (10, head boss 1) > North (11, head lead 2); ann 3 in North, bob 4 in Sales,
    cat 5 in Other (12, no head); all sales reps."""
    world = World()
    world.departments = {10: RDepartment(None, 1), 11: RDepartment(10, 2), 12: RDepartment()}
    world.users = {1: RUser(department=10), 2: RUser(department=11), 3: RUser(department=11),
                   4: RUser(department=10), 5: RUser(department=12)}
    return world


def account(world, rid, owner, **values):
    world.records["fx_account"][rid] = RRecord(owner, values)


def levels_of(world, obj, rid):
    return {uid: level(world, uid, obj, rid)[0] for uid in world.users}


def test_reference_owner_and_department_heads():
    world = company()
    account(world, 100, owner=3)  # ann's
    account(world, 101, owner=2)  # lead's: the head of North reports to the head of Sales
    account(world, 102, owner=1)  # boss's: nobody above
    assert levels_of(world, "fx_account", 100) == {1: ALL, 2: ALL, 3: ALL, 4: NONE, 5: NONE}
    assert levels_of(world, "fx_account", 101) == {1: ALL, 2: ALL, 3: NONE, 4: NONE, 5: NONE}
    assert levels_of(world, "fx_account", 102) == {1: ALL, 2: NONE, 3: NONE, 4: NONE, 5: NONE}
    assert effective_manager(world, 2) == 1 and effective_manager(world, 5) is None
    assert selected(world, 1, "fx_account") == {100, 101, 102}
    assert selected(world, 3, "fx_account") == {100}


def test_reference_explicit_manager_and_cycles():
    world = company()
    world.users[3].manager = 5  # ann reports to cat, not to lead
    account(world, 100, owner=3)
    assert levels_of(world, "fx_account", 100) == {1: NONE, 2: NONE, 3: ALL, 4: NONE, 5: ALL}
    world.users[5].manager = 3  # cat <-> ann: a cycle ends the chain
    assert managers_above(world, 3) == {5, 3}
    assert levels_of(world, "fx_account", 100)[5] == ALL
    world.users[5].manager = 4  # ann -> cat -> bob -> boss
    assert managers_above(world, 3) == {5, 4, 1}
    world.defaults["fx_account"] = ("private", False)  # managers do not inherit
    assert levels_of(world, "fx_account", 100) == {1: NONE, 2: NONE, 3: ALL, 4: NONE, 5: NONE}


def test_reference_inactive_deleted_and_object_permissions():
    world = company()
    account(world, 100, owner=3)
    world.users[3].active = False
    assert level(world, 3, "fx_account", 100)[0] == NONE
    world.users[3].active = True
    world.users[3].roles = set()  # no role: no read permission, even as owner
    assert level(world, 3, "fx_account", 100)[0] == NONE
    world.users[3].roles = {"auditor"}
    assert level(world, 3, "fx_account", 100)[0] == ALL  # owner still wins
    world.permissions[("sales_rep", "fx_account")] = "ce"  # a row without read
    assert level(world, 2, "fx_account", 100)[0] == NONE
    world.permissions[("sales_rep", "fx_account")] = "M"  # modify all implies read
    assert level(world, 4, "fx_account", 100)[0] == TRANSFER
    world.records["fx_account"][100].deleted = True
    assert levels_of(world, "fx_account", 100) == dict.fromkeys(world.users, NONE)


def test_reference_roles_bypass_and_administrator():
    world = company()
    account(world, 100, owner=3)
    world.users[5].roles = {"auditor"}
    assert level(world, 5, "fx_account", 100)[0] == READ  # view all
    world.users[5].roles = {"auditor", "administrator"}
    assert level(world, 5, "fx_account", 100)[0] == ALL
    world.users[5].roles = {"sales_rep"}
    world.permissions[("sales_rep", "fx_account")] = "rV"
    assert level(world, 4, "fx_account", 100)[0] == READ
    world.permissions[("auditor", "fx_account")] = ""  # an auditor row without read
    world.users[4].roles = {"auditor", "sales_manager"}  # ... but the other role reads
    assert level(world, 4, "fx_account", 100)[0] == NONE  # sales_manager: cred, no bypass
    world.defaults["fx_account"] = ("read_write", True)
    assert level(world, 4, "fx_account", 100)[0] == EDIT
    assert selected(world, 5, "fx_account", EDIT) == {100}


def test_reference_org_wide_defaults():
    world = company()
    account(world, 100, owner=3)
    for access, expected in (("private", NONE), ("read", READ), ("read_write", EDIT)):
        world.defaults["fx_account"] = (access, True)
        assert level(world, 5, "fx_account", 100)[0] == expected
        assert level(world, 1, "fx_account", 100)[0] == ALL


def test_reference_owner_based_sharing_rules():
    world = company()
    account(world, 100, owner=3)  # ann, North
    account(world, 101, owner=4)  # bob, Sales
    world.rules.append(RRule("fx_account", ("user", 5), READ, source=("department", 10)))
    assert selected(world, 5, "fx_account") == {101}  # Sales alone: bob
    world.rules[0] = RRule("fx_account", ("user", 5), EDIT, source=("department_tree", 10))
    assert selected(world, 5, "fx_account", EDIT) == {100, 101}  # Sales and North
    world.teams[10] = {3}  # a team with the same id as a department
    world.rules[0] = RRule("fx_account", ("team", 10), READ, source=("user", 4))
    assert selected(world, 3, "fx_account") == {100, 101}
    assert selected(world, 1, "fx_account") == {100, 101}  # boss: manager anyway
    assert selected(world, 5, "fx_account") == set()


def test_reference_criteria_rules_compare_as_stored():
    world = company()
    account(world, 100, owner=3, industry="retail", amount=Decimal("10.5"))
    account(world, 101, owner=3, industry="Retail", amount=Decimal("10"))
    account(world, 102, owner=3, industry=None, amount=None)
    world.rules.append(RRule("fx_account", ("department", 12), READ, field="industry",
                             values=("retail",)))
    assert selected(world, 5, "fx_account") == {100}  # case-sensitive, null never matches
    world.rules[0] = RRule("fx_account", ("department", 12), READ, field="amount",
                           values=("10.50", "1E+1"))
    assert selected(world, 5, "fx_account") == {100, 101}
    world.rules[0] = RRule("fx_account", ("department_tree", 12), EDIT, field="owner_id",
                           values=("3",))
    assert selected(world, 5, "fx_account", EDIT) == {100, 101, 102}
    world.rules[0] = RRule("fx_contact", ("department", 12), EDIT, field="owner_id",
                           values=("3",))  # another object's rule
    assert selected(world, 5, "fx_account") == set()


def test_reference_manual_shares():
    world = company()
    account(world, 100, owner=4)
    world.teams[1] = {5, 3}
    world.shares.append(RShare("fx_account", 100, ("team", 1), EDIT))
    world.shares.append(RShare("fx_account", 100, ("department_tree", 10), READ))
    world.shares.append(RShare("fx_contact", 100, ("user", 2), EDIT))  # another object
    assert levels_of(world, "fx_account", 100) == {1: ALL, 2: READ, 3: EDIT, 4: ALL, 5: EDIT}


def test_reference_implicit_parent_read():
    world = company()
    account(world, 100, owner=4)
    world.records["fx_contact"][200] = RRecord(5, {"account_id": 100})
    world.records["fx_contact"][201] = RRecord(3, {"account_id": 100}, deleted=True)
    assert levels_of(world, "fx_account", 100) == {1: ALL, 2: NONE, 3: NONE, 4: ALL, 5: READ}
    world.shares.append(RShare("fx_contact", 200, ("user", 2), READ))  # lead reads the contact
    assert level(world, 2, "fx_account", 100)[0] == READ
    assert selected(world, 2, "fx_account", EDIT) == set()  # parent read is READ only
    world.permissions[("sales_rep", "fx_contact")] = "c"  # nobody reads contacts any more
    assert levels_of(world, "fx_account", 100) == {1: ALL, 2: NONE, 3: NONE, 4: ALL, 5: NONE}


def test_reference_counts_and_sums():
    world = company()
    account(world, 100, owner=3, amount=Decimal("10.50"))
    account(world, 101, owner=3, amount=Decimal("-0.25"))
    account(world, 102, owner=3)
    account(world, 103, owner=4, amount=Decimal("7"))
    assert amount_sum(world, 3) == Decimal("10.25")
    assert amount_sum(world, 1) == Decimal("17.25")
    assert amount_sum(world, 5) is None


def test_reference_territories():
    """World 20 > Asia 21 (manager boss 1) > South 22 (read); World > Poland 23 (edit).
    ann 3 is in South, cat 5 in Poland and in World; accounts are owned by bob 4."""
    world = company()
    world.territories = {20: RTerritory("main"), 21: RTerritory("main", 20, EDIT, manager=1),
                         22: RTerritory("main", 21, READ), 23: RTerritory("main", 20, EDIT),
                         30: RTerritory("other")}
    world.territory_members = {(22, 3), (23, 5), (20, 5), (30, 2)}
    world.records["account"] = {100: RRecord(4), 101: RRecord(4), 102: RRecord(4)}
    world.records["contact"] = {200: RRecord(4, {"account_id": 101}), 201: RRecord(4, {"account_id": None})}
    world.placements = {("main", 100): 22, ("main", 101): 23, ("other", 100): 30, ("other", 101): 30}
    assert levels_of(world, "account", 100) == {1: ALL, 2: NONE, 3: NONE, 4: ALL, 5: NONE}  # no model active
    world.active_model = "main"
    # Members: the record's territory's level, from their territory or one above it;
    # boss manages Asia: the manager level on South (read for its members).
    assert levels_of(world, "account", 100) == {1: ALL, 2: NONE, 3: READ, 4: ALL, 5: READ}
    assert levels_of(world, "account", 101) == {1: ALL, 2: NONE, 3: NONE, 4: ALL, 5: EDIT}
    assert levels_of(world, "contact", 200) == {1: ALL, 2: NONE, 3: NONE, 4: ALL, 5: EDIT}
    assert levels_of(world, "contact", 201)[5] == NONE and levels_of(world, "account", 102)[5] == NONE
    world.territories[21].manager = 2  # lead manages Asia now: EDIT on South's records
    assert levels_of(world, "account", 100)[2] == EDIT
    world.territories[21].deleted = True  # the way up stops at a deleted territory
    assert levels_of(world, "account", 100) == {1: ALL, 2: NONE, 3: READ, 4: ALL, 5: NONE}
    world.active_model = "other"  # the switch-over: only the active model grants
    assert levels_of(world, "account", 100) == {1: ALL, 2: EDIT, 3: NONE, 4: ALL, 5: NONE}


# =================================================================================================
# Random organisations
# =================================================================================================

ROLE_KEYS = ("administrator", "sales_manager", "sales_rep", "auditor")
OBJECTS = {"fx_account": FxAccount, "fx_contact": FxContact}
# Every object compared: the fixture ones, and the core's on which territories grant.
COMPARED = {**OBJECTS, "account": Account, "contact": Contact}
TARGET_TYPES = ("user", "team", "department", "department_tree")
INDUSTRIES = ("retail", "mining", "Retail")
AMOUNTS = ("0", "10", "10.5", "99.99", "-3.25")
AMOUNT_SPELLINGS = ("10", "10.00", "1E+1", "10.5", "10.50", "99.99", "-3.25", "0.00", "7.77")
# Fields a random criteria rule tests ("industry" on a contact: a field it does not have).
CRITERIA_FIELDS = {"fx_account": ("industry", "amount", "owner_id"),
                   "fx_contact": ("account_id", "owner_id", "name", "industry")}
# Lists are compared at READ and EDIT for every user and object, and at one of the higher
# levels in turn (above EDIT only the owner, the managers and the bypasses remain: Modify
# All reaches TRANSFER, not ALL).
HIGHER_LISTS = tuple((name, at_least) for at_least in (Level.DELETE, Level.TRANSFER, Level.ALL)
                     for name in ("fx_account", "fx_contact"))
MISSING = 987_654  # an id no group has


# The administrator and the auditor (View All) see everything: rarer, so that the other
# rules decide most levels.
rarely = st.integers(0, 3).map(lambda n: n == 3)
role_sets = st.tuples(st.integers(0, 7).map(lambda n: n == 7), st.booleans(),
                      rarely.map(lambda rare: not rare), rarely).map(
    lambda flags: [key for key, on in zip(ROLE_KEYS, flags) if on])
amounts = st.one_of(st.none(), st.sampled_from(AMOUNTS).map(Decimal),
                    st.decimals(min_value=-1000, max_value=100000, places=2,
                                allow_nan=False, allow_infinity=False))
permission_flags = st.fixed_dictionaries({
    "create": st.booleans(), "read": st.booleans(), "edit": st.booleans(), "delete": st.booleans(),
    "view_all": rarely, "modify_all": rarely})
defaults = st.tuples(st.sampled_from(("private", "read", "read_write")), st.booleans())
share_levels = st.sampled_from((int(Level.READ), int(Level.EDIT)))


@st.composite
def organisations(draw):
    n_users = draw(st.integers(2, 5))
    user_index = st.integers(0, n_users - 1)
    departments, depth = [], []
    for i in range(draw(st.integers(0, 4))):
        parents = [j for j in range(i) if depth[j] < 3]
        parent = draw(st.none() | st.sampled_from(parents)) if parents else None
        depth.append(1 if parent is None else depth[parent] + 1)
        departments.append((parent, draw(st.none() | user_index)))
    department_index = st.none()
    if departments:
        department_index = st.none() | st.integers(0, len(departments) - 1)

    def manager_of(i):
        return st.none() | st.integers(0, n_users - 1).filter(lambda m: m != i)

    users = [{"active": draw(st.integers(0, 4)) != 4, "roles": draw(role_sets),
              "department": draw(department_index),
              "manager": draw(manager_of(i)) if draw(st.booleans()) else None}
             for i in range(n_users)]
    teams = draw(st.lists(st.lists(user_index, max_size=4, unique=True), max_size=2))

    def target():
        counts = {"user": n_users, "team": len(teams), "department": len(departments),
                  "department_tree": len(departments)}
        kind = draw(st.sampled_from(TARGET_TYPES))
        # An index past the end names a group that does not exist.
        index = draw(st.integers(0, counts[kind] - 1 if kind == "user" else counts[kind]))
        return kind, index

    n_accounts = draw(st.integers(3, 6))
    accounts = [{"owner": draw(user_index),
                 "industry": draw(st.none() | st.sampled_from(INDUSTRIES)),
                 "amount": draw(amounts), "deleted": draw(st.integers(0, 5)) == 5}
                for _ in range(n_accounts)]
    contacts = [{"owner": draw(user_index),
                 "account": draw(st.none() | st.integers(0, n_accounts - 1)),
                 "deleted": draw(st.integers(0, 5)) == 5}
                for _ in range(draw(st.integers(0, 4)))]
    counts = {"fx_account": n_accounts, "fx_contact": len(contacts)}
    with_records = [name for name, count in counts.items() if count]
    # The territory model: a tree (a parent comes first), levels, managers, members (a rep
    # may be in several), where each core account is placed (None: nowhere).
    n_territories = draw(st.integers(0, 4))
    territory_index = st.integers(0, n_territories - 1) if n_territories else st.none()
    territories = {
        "active": draw(st.integers(0, 4)) != 0,
        "tree": [{"parent": draw(st.none() | st.integers(0, i - 1)) if i else None,
                  "level": draw(st.sampled_from(("read", "edit"))), "manager": draw(st.none() | user_index),
                  "deleted": draw(st.integers(0, 7)) == 7} for i in range(n_territories)],
        "members": draw(st.lists(st.tuples(territory_index, user_index), max_size=4, unique=True))
        if n_territories else [],
        "placements": [draw(st.none() | territory_index) for _ in range(n_accounts)],
    }

    def rule():
        name = draw(st.sampled_from(("fx_account", "fx_contact")))
        spec = {"object": name, "target": target(), "level": draw(share_levels)}
        if draw(st.booleans()):
            spec["source"] = target()
            return spec
        fields = CRITERIA_FIELDS[name]
        spec["field"] = draw(st.sampled_from(fields))
        values = {"industry": st.sampled_from(INDUSTRIES + ("energy",)),
                  "amount": st.sampled_from(AMOUNT_SPELLINGS),
                  "owner_id": st.tuples(st.just("user"), st.integers(0, n_users)),
                  "account_id": st.tuples(st.just("fx_account"), st.integers(0, n_accounts)),
                  "name": st.sampled_from(("c0", "c1", "c2", "a0", "nobody"))}[spec["field"]]
        spec["values"] = draw(st.lists(values, min_size=1, max_size=2))
        return spec

    def share():
        name = draw(st.sampled_from(with_records))
        return {"object": name, "record": draw(st.integers(0, counts[name] - 1)),
                "target": target(), "level": draw(share_levels)}

    plan = {
        "users": users,
        "departments": departments,
        "teams": teams,
        "permissions": draw(st.lists(st.tuples(st.sampled_from(ROLE_KEYS),
                                               st.sampled_from(tuple(OBJECTS)), permission_flags),
                                     max_size=3, unique_by=lambda p: p[:2])),
        "defaults": {name: draw(st.none() | defaults) for name in OBJECTS},
        "accounts": accounts,
        "contacts": contacts,
        "rules": [rule() for _ in range(draw(st.integers(0, 3)))],
        "shares": [share() for _ in range(draw(st.integers(0, 3)))],
        "territories": territories,
    }

    steps = []
    for _ in range(draw(st.integers(0, 3))):
        kinds = ["move", "owner", "share", "default", "active", "delete", "roles", "rule",
                 "permission", "switch_over"] + ["head"] * bool(departments) + ["team"] * bool(teams) + [
                 "member", "territory", "place"] * bool(n_territories)
        kind = draw(st.sampled_from(kinds))
        if kind == "move":
            i = draw(user_index)
            step = (kind, i, draw(department_index), draw(manager_of(i)))
        elif kind == "head":
            step = (kind, draw(st.integers(0, len(departments) - 1)), draw(st.none() | user_index))
        elif kind in ("owner", "delete"):
            name = draw(st.sampled_from(with_records))
            step = (kind, name, draw(st.integers(0, counts[name] - 1)))
            step += (draw(user_index),) if kind == "owner" else ()
        elif kind == "share":
            step = (kind, share())
        elif kind == "default":
            step = (kind, draw(st.sampled_from(tuple(OBJECTS))), draw(defaults))
        elif kind == "active":
            step = (kind, draw(user_index))
        elif kind == "roles":
            step = (kind, draw(user_index), draw(role_sets))
        elif kind == "rule":
            step = (kind, rule())
        elif kind == "permission":
            step = (kind, draw(st.sampled_from(ROLE_KEYS)), draw(st.sampled_from(tuple(OBJECTS))),
                    draw(permission_flags))
        elif kind == "switch_over":
            step = (kind,)
        elif kind == "member":  # in or out of a territory
            step = (kind, draw(territory_index), draw(user_index))
        elif kind == "territory":  # another manager and level
            step = (kind, draw(territory_index), draw(st.none() | user_index),
                    draw(st.sampled_from(("read", "edit"))))
        elif kind == "place":
            step = (kind, draw(st.integers(0, n_accounts - 1)), draw(st.none() | territory_index))
        else:  # team
            step = (kind, draw(st.integers(0, len(teams) - 1)),
                    draw(st.lists(user_index, max_size=4, unique=True)))
        steps.append(step)
    return plan, steps


# -- the plan in the database and in the reference ----------------------------------------------

class Scenario:
    """One random organisation, both in the database and in the reference ``world``."""

    def __init__(self, example=None):
        self.example = example  # the plan and the steps, to replay a failure
        self.world = World()
        self.users, self.departments, self.teams = [], [], []
        self.records = {"fx_account": [], "fx_contact": [], "account": [], "contact": []}
        self.territories = []  # ids of the main model's territories, in plan order
        self.models = {}  # "main"/"other" -> TerritoryModel id
        self.other_territory = None
        self.checks = 0

    def pick(self, pool, index):
        return pool[index] if index is not None and index < len(pool) else (
            None if index is None else MISSING)

    def target(self, spec):
        kind, index = spec
        pool = {"user": self.users, "team": self.teams}.get(kind, self.departments)
        return kind, self.pick(pool, index)

    def insert(self, model, rows):
        """Insert ``rows`` with one statement (the random data is large and the services
        add nothing the rules read); their ids, in order."""
        if not rows:
            return []
        now = utcnow()
        model.insert_many([{"version": 1, "created_at": now, "updated_at": now, **row}
                           for row in rows]).execute()
        names = [row["name"] for row in rows]
        ids = dict(model.select(model.name, model.id).where(model.name.in_(names)).tuples())
        return [ids[name] for name in names]

    def build(self, plan):
        world = self.world
        role_ids = dict(Role.select(Role.key, Role.id).where(Role.key.is_null(False)).tuples())
        users = plan["users"]
        self.users = self.insert(User, [
            {"email": f"u{i}@example.com", "name": f"u{i}", "active": spec["active"],
             "is_admin": "administrator" in spec["roles"]} for i, spec in enumerate(users)])
        links = [{"user": uid, "role": role_ids[key]}
                 for uid, spec in zip(self.users, users) for key in spec["roles"]]
        if links:
            UserRole.insert_many(links).execute()
        for i, (parent, head) in enumerate(plan["departments"]):
            parent, head = self.pick(self.departments, parent), self.pick(self.users, head)
            self.departments.append(org.create_department(f"d{i}", parent=parent, head=head).id)
            world.departments[self.departments[-1]] = RDepartment(parent, head)
        for uid, spec in zip(self.users, users):
            department = self.pick(self.departments, spec["department"])
            manager = self.pick(self.users, spec["manager"])
            if department is not None or manager is not None:
                User.update(department=department, manager=manager).where(User.id == uid).execute()
            world.users[uid] = RUser(spec["active"], set(spec["roles"]), department, manager)
        for i, member_indexes in enumerate(plan["teams"]):
            member_ids = {self.users[m] for m in member_indexes}
            self.teams.append(org.create_team(f"t{i}", member_ids).id)
            world.teams[self.teams[-1]] = member_ids
        for role, name, flags in plan["permissions"]:
            self.set_permissions(role, name, flags)
        for name, spec in plan["defaults"].items():
            if spec is not None:
                self.set_default(name, *spec)
        accounts = [{"name": f"a{i}", "owner_id": self.users[spec["owner"]],
                     "industry": spec["industry"], "amount": spec["amount"],
                     "currency": "EUR" if spec["amount"] is not None else None}
                    for i, spec in enumerate(plan["accounts"])]
        self.records["fx_account"] = self.insert(FxAccount, accounts)
        contacts = [{"name": f"c{i}", "owner_id": self.users[spec["owner"]],
                     "account_id": self.pick(self.records["fx_account"], spec["account"])}
                    for i, spec in enumerate(plan["contacts"])]
        self.records["fx_contact"] = self.insert(FxContact, contacts)
        for (name, model), rows, specs in zip(OBJECTS.items(), (accounts, contacts),
                                              (plan["accounts"], plan["contacts"])):
            deleted = [rid for rid, spec in zip(self.records[name], specs) if spec["deleted"]]
            if deleted:  # as soft_delete does it
                model.update(deleted_at=utcnow(), version=model.version + 1).where(
                    model.id.in_(deleted)).execute()
            for rid, row, spec in zip(self.records[name], rows, specs):
                values = {k: v for k, v in row.items() if k not in ("owner_id", "currency")}
                world.records[name][rid] = RRecord(row["owner_id"], values, spec["deleted"])
        for spec in plan["rules"]:
            self.add_rule(spec)
        for spec in plan["shares"]:
            self.share(spec)
        self.build_territories(plan)

    def build_territories(self, plan):
        """The core accounts and contacts (mirrors of the fixture ones: owners, links,
        deletions) and the two territory models, written as the plugin stores them."""
        world, spec = self.world, plan["territories"]
        now = utcnow()
        for i, account_spec in enumerate(plan["accounts"]):
            owner = self.users[account_spec["owner"]]
            rid = Account.insert(name=f"ca{i}", owner_id=owner, version=1, created_at=now, updated_at=now,
                                 deleted_at=now if account_spec["deleted"] else None).execute()
            self.records["account"].append(rid)
            world.records["account"][rid] = RRecord(owner, {"name": f"ca{i}"}, account_spec["deleted"])
        for i, contact_spec in enumerate(plan["contacts"]):
            owner = self.users[contact_spec["owner"]]
            account_id = self.pick(self.records["account"], contact_spec["account"])
            rid = Contact.insert(last_name=f"cc{i}", owner_id=owner, account=account_id, version=1,
                                 created_at=now, updated_at=now,
                                 deleted_at=now if contact_spec["deleted"] else None).execute()
            self.records["contact"].append(rid)
            world.records["contact"][rid] = RRecord(owner, {"name": f"cc{i}", "account_id": account_id},
                                                    contact_spec["deleted"])
        main = territory_services.create_model("main")
        other = territory_services.create_model("other")
        self.models = {"main": main.id, "other": other.id}
        for i, node in enumerate(spec["tree"]):
            parent = self.territories[node["parent"]] if node["parent"] is not None else None
            manager = self.pick(self.users, node["manager"])
            territory = create_record(Territory, model_id=main.id, parent_id=parent, name=f"T{i}",
                                      access_level=node["level"], manager_id=manager)
            if node["deleted"]:
                soft_delete(territory)
            self.territories.append(territory.id)
            world.territories[territory.id] = RTerritory("main", parent, TERRITORY_LEVELS[node["level"]],
                                                         manager, node["deleted"])
        for t_index, u_index in spec["members"]:
            self.set_member(self.territories[t_index], self.users[u_index], True)
        for a_index, t_index in enumerate(spec["placements"]):
            if t_index is not None:
                self.place(a_index, t_index)
        # The other model: one territory everyone is in, every account placed in it.
        self.other_territory = create_record(Territory, model_id=other.id, name="Everything").id
        world.territories[self.other_territory] = RTerritory("other")
        for uid in self.users:
            self.set_member(self.other_territory, uid, True)
        for rid in self.records["account"]:
            TerritoryRecord.create(model_id=other.id, object="account", record_id=rid,
                                   territory_id=self.other_territory)
            world.placements[("other", rid)] = self.other_territory
        if spec["active"]:
            territory_services.activate_model(main)
            world.active_model = "main"

    def set_member(self, territory_id, user_id, member):
        if member:
            TerritoryMember.create(territory_id=territory_id, user_id=user_id)
            self.world.territory_members.add((territory_id, user_id))
        else:
            TerritoryMember.delete().where((TerritoryMember.territory_id == territory_id)
                                           & (TerritoryMember.user_id == user_id)).execute()
            self.world.territory_members.discard((territory_id, user_id))

    def place(self, account_index, territory_index):
        """Place the core account (a rule's placement) in the main model; None: nowhere."""
        rid, model_id = self.records["account"][account_index], self.models["main"]
        TerritoryRecord.delete().where((TerritoryRecord.model_id == model_id) & (TerritoryRecord.object == "account")
                                       & (TerritoryRecord.record_id == rid)).execute()
        self.world.placements.pop(("main", rid), None)
        if territory_index is not None:
            territory_id = self.territories[territory_index]
            TerritoryRecord.create(model_id=model_id, object="account", record_id=rid, territory_id=territory_id)
            self.world.placements[("main", rid)] = territory_id

    # -- changes, each applied to both sides -------------------------------------------

    def set_permissions(self, role, name, flags):
        org.set_object_permissions(org.role_by_key(role), name, **flags)
        letters = "".join(letter for letter, flag in zip("credVM", (
            "create", "read", "edit", "delete", "view_all", "modify_all")) if flags[flag])
        self.world.permissions[(role, name)] = letters

    def set_default(self, name, access, managers_inherit):
        org.set_default(name, access, managers_inherit)
        self.world.defaults[name] = (access, managers_inherit)

    def delete(self, name, index):
        rid = self.records[name][index]
        if not self.world.records[name][rid].deleted:
            soft_delete(OBJECTS[name].get_by_id(rid))
            self.world.records[name][rid].deleted = True

    def add_rule(self, spec):
        values = None
        if "field" in spec:
            pools = {"user": self.users, "fx_account": self.records["fx_account"]}
            values = [str(self.pick(pools[v[0]], v[1])) if isinstance(v, tuple) else v
                      for v in spec["values"]]
        source = self.target(spec["source"]) if "source" in spec else (None, None)
        target = self.target(spec["target"])
        name = f"rule {len(self.world.rules)}"
        try:
            org.create_sharing_rule(spec["object"], name, *target, spec["level"], source_type=source[0],
                                    source_id=source[1], field=spec.get("field"), values=values)
        except UserError:
            # The service refuses a group or field that does not exist (or the owner field);
            # stored anyway, as a rule made before its group or field went away, which the
            # engine must still read safely.
            create_record(SharingRule, object=spec["object"], name=name,
                          kind="owner" if source[0] else "criteria", source_type=source[0],
                          source_id=source[1], field=spec.get("field"),
                          values=json.dumps(values) if values else None, target_type=target[0],
                          target_id=target[1], level=int(spec["level"]))
        self.world.rules.append(RRule(spec["object"], target, spec["level"],
                                      source=source if source[0] else None,
                                      field=spec.get("field"), values=tuple(values or ())))

    def share(self, spec):
        rid = self.records[spec["object"]][spec["record"]]
        target = self.target(spec["target"])
        try:
            org.share_record(spec["object"], rid, *target, spec["level"])
        except UserError:  # a group that does not exist: as if it had gone away since
            RecordShare.create(object=spec["object"], record_id=rid, target_type=target[0],
                               target_id=target[1], level=int(spec["level"]))
        self.world.shares.append(RShare(spec["object"], rid, target, spec["level"]))

    def apply(self, step):
        kind, world = step[0], self.world
        if kind == "move":
            uid = self.users[step[1]]
            department = self.pick(self.departments, step[2])
            manager = self.pick(self.users, step[3])
            org.place_user(User.get_by_id(uid), department, manager)
            world.users[uid].department, world.users[uid].manager = department, manager
        elif kind == "head":
            did, head = self.departments[step[1]], self.pick(self.users, step[2])
            update_record(Department.get_by_id(did), {"head": head})
            world.departments[did].head = head
        elif kind == "owner":
            name, rid, owner = step[1], self.records[step[1]][step[2]], self.users[step[3]]
            if not world.records[name][rid].deleted:  # a deleted record cannot be updated
                update_record(OBJECTS[name].get_by_id(rid), {"owner_id": owner})
                org.owner_changed(name, rid)
                world.records[name][rid].owner = owner
                world.shares = [s for s in world.shares if (s.object, s.record_id) != (name, rid)]
        elif kind == "share":
            self.share(step[1])
        elif kind == "default":
            self.set_default(step[1], *step[2])
        elif kind == "active":
            uid = self.users[step[1]]
            set_active(User.get_by_id(uid), not world.users[uid].active)
            world.users[uid].active = not world.users[uid].active
        elif kind == "delete":
            self.delete(step[1], step[2])
        elif kind == "roles":
            uid = self.users[step[1]]
            org.set_roles(User.get_by_id(uid), step[2])
            world.users[uid].roles = set(step[2])
        elif kind == "rule":
            self.add_rule(step[1])
        elif kind == "permission":
            self.set_permissions(*step[1:])
        elif kind == "team":
            tid, member_ids = self.teams[step[1]], {self.users[m] for m in step[2]}
            org.set_team_members(Team.get_by_id(tid), member_ids)
            world.teams[tid] = member_ids
        elif kind == "switch_over":  # the other model becomes the active one, the main one archived
            other = TerritoryModel.get_by_id(self.models["other"])
            if other.state == "planning":
                territory_services.activate_model(other)
                world.active_model = "other"
        elif kind == "member":
            tid, uid = self.territories[step[1]], self.users[step[2]]
            self.set_member(tid, uid, (tid, uid) not in world.territory_members)
        elif kind == "territory":
            tid, manager = self.territories[step[1]], self.pick(self.users, step[2])
            Territory.update(manager_id=manager, access_level=step[3]).where(Territory.id == tid).execute()
            world.territories[tid].manager, world.territories[tid].level = manager, TERRITORY_LEVELS[step[3]]
        elif kind == "place":
            self.place(step[1], step[2])
        else:
            raise ValueError(kind)

    # -- the comparison -----------------------------------------------------------------

    def describe(self):
        w = self.world
        lines = ["users: " + "; ".join(
            f"{uid}{'' if u.active else ' (inactive)'} roles={sorted(u.roles)} dept={u.department}"
            f" manager={u.manager} effective={effective_manager(w, uid)}"
            for uid, u in w.users.items()),
            "departments: " + "; ".join(f"{d} parent={x.parent} head={x.head}"
                                        for d, x in w.departments.items()),
            f"teams: {w.teams}", f"permissions: {w.permissions}", f"defaults: {w.defaults}",
            f"rules: {w.rules}", f"shares: {w.shares}",
            f"territories (active model: {w.active_model}): {w.territories}",
            f"territory members: {sorted(w.territory_members)}", f"placements: {w.placements}"]
        for name, records in w.records.items():
            lines.append(f"{name}: " + "; ".join(
                f"{rid} owner={r.owner} {r.values}{' deleted' if r.deleted else ''}"
                for rid, r in records.items()))
        return "\n".join(lines)

    def why(self, uid, name, rid):
        record = COMPARED[name].get_by_id(rid)
        got, reasons = engine().explain(uid, record)
        want, because = level(self.world, uid, name, rid)
        return (f"user {uid} on {name} {rid}: reference {LEVEL_NAMES[want]} {because}; "
                f"engine {got.name} " + str([(r.level.name, r.code, r.detail) for r in reasons]))

    def check(self, phase):
        """Compare every user's lists, counts, sums and per-record levels with the reference."""
        g.pop("_crm_access", None)  # the next request
        access, world = engine(), self.world
        problems = []
        records = {name: list(model.select()) for name, model in COMPARED.items()}
        for uid in self.users:
            self.checks += 1
            lists = [(name, at_least) for name in COMPARED for at_least in (Level.READ, Level.EDIT)]
            lists.append(HIGHER_LISTS[self.checks % len(HIGHER_LISTS)])
            for name, at_least in lists:
                model = COMPARED[name]
                got = {rid for (rid,) in access.query(uid, name, model.id, level=at_least).tuples()}
                want = selected(world, uid, name, at_least)
                for rid in sorted(got ^ want):
                    shows = "shows" if rid in got else "hides"
                    problems.append(f"query({name}, {at_least.name}) {shows} "
                                    + self.why(uid, name, rid))
            # A page through the branch-per-grant union is the same page as the plain query.
            order = [FxAccount.name.asc()] if self.checks % 2 else [FxAccount.id.desc()]
            offset = self.checks % 3
            paged = [r.id for r in access.page_of(uid, "fx_account", order=order, offset=offset, limit=3)]
            plain = [r.id for r in access.query(uid, "fx_account").order_by(*order, FxAccount.id.asc()
                                                                                 if self.checks % 2 else
                                                                                 FxAccount.id.desc())
                     .offset(offset).limit(3)]
            if paged != plain:
                problems.append(f"user {uid}: page_of(fx_account) {paged} != {plain}")
            count = access.query(uid, "fx_account").count()
            want = len(selected(world, uid, "fx_account"))
            if count != want:
                problems.append(f"user {uid}: count(fx_account) {count} != {want}")
            total, want = (access.query(uid, "fx_account", FxAccount.amount.sum()).scalar(),
                           amount_sum(world, uid))
            if total != want:
                problems.append(f"user {uid}: sum(fx_account.amount) {total!r} != {want!r}")
            for name in COMPARED:
                for record in records[name]:
                    if access.level(uid, record) != level(world, uid, name, record.id)[0]:
                        problems.append("level() " + self.why(uid, name, record.id))
        assert not problems, f"{phase}: {len(problems)} mismatch(es)\n" + "\n".join(
            problems[:20]) + "\n" + self.describe() + f"\nthe example: {self.example!r}"



@pytest.fixture
def empty_db(app, db):
    reset_database(db)  # empty tables and the built-in roles; each example rolls back to this
    return db


def restart_ids(db):
    """Ids from 1 in every example (user 1, team 1 and department 1 coexist)."""
    if vendor(db) == "postgresql":  # SQLite reuses the ids of rolled-back rows by itself
        db.execute_sql("SELECT " + ", ".join(
            f"setval(pg_get_serial_sequence('\"{model._meta.table_name}\"', 'id'), 1, false)"
            for model in (User, Department, Team, SharingRule, FxAccount, FxContact, Account, Contact,
                          TerritoryModel, Territory)))


# Shrinking a failure takes minutes (each example is a whole organisation), and the failure
# message already describes the organisation and every mismatch with the engine's reasons:
# set CRM_HYPOTHESIS_SHRINK=1 to get a minimal example while investigating.
PHASES = tuple(Phase) if os.environ.get("CRM_HYPOTHESIS_SHRINK") else (
    Phase.explicit, Phase.reuse, Phase.generate)


@settings(max_examples=300, deadline=None, derandomize=True, database=None, phases=PHASES,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(organisations())
def test_engine_agrees_with_the_reference(empty_db, scenario):
    plan, steps = scenario
    # Each example runs in one transaction, rolled back at its end: the next example
    # starts from the empty database again (much faster than emptying every table).
    with empty_db.atomic() as transaction:
        try:
            restart_ids(empty_db)
            subject = Scenario(scenario)
            subject.build(plan)
            subject.check("after building")
            for number, step in enumerate(steps, 1):
                subject.apply(step)
                subject.check(f"after step {number} {step}")
        finally:
            transaction.rollback()


# =================================================================================================
# Bugs found by the comparison, pinned by a minimal case
# =================================================================================================

# The SQL form of a criteria rule converted the values twice (column.db_value, then again
# by column.in_): a rule on amount 10.50 looked for 1050000000 units, so lists, counts and
# sums missed the record while level() granted it (fixed in 4cbf2ea).

def test_criteria_rule_on_a_money_field_compares_as_stored(empty_db):
    owner, reader = (create_user(f"{name}@example.com", name) for name in ("owner", "reader"))
    for user in (owner, reader):
        org.set_roles(user, ["sales_rep"])
    shared = create_record(FxAccount, name="shared", owner_id=owner.id, amount=Decimal("10.5"),
                           currency="EUR")
    create_record(FxAccount, name="other", owner_id=owner.id, amount=Decimal("7"), currency="EUR")
    org.create_sharing_rule("fx_account", "10.50 to reader", "user", reader.id, Level.READ,
                            field="amount", values=["10.50"])
    g.pop("_crm_access", None)
    access = engine()
    assert access.level(reader.id, shared) == Level.READ  # the per-record form: right
    assert [r.id for r in access.query(reader.id, "fx_account")] == [shared.id]
    assert access.query(reader.id, "fx_account").count() == 1
    assert access.query(reader.id, "fx_account", FxAccount.amount.sum()).scalar() == Decimal("10.5")
