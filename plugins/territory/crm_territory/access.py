"""Territory visibility through the access engine's hooks (the plan's "Visibility").

A user's territories are those of the ACTIVE model where they are a member or the manager.
- A member of T gets, on every record placed in T's subtree, the access level of the
  territory the record is placed in (read -> READ, edit -> EDIT);
- the manager of T gets the ``manager_level`` setting (EDIT by default) on T's subtree;
- the highest wins. Accounts and leads count by their own placement (``TerritoryRecord``),
  contacts and opportunities by their account's.

The query form (``query_grants``: one grant per level) and the per-record form
(``record_grants``) read the same per-user map ``{territory id: level}``, so they agree.
The map is memoised in the access engine's per-request memo (``flask.g._crm_access``,
dropped whenever the engine's answers are): nothing survives the request, so moving a
rep changes the very next request.
"""

from __future__ import annotations

from collections import defaultdict

from flask import g, has_app_context
from flask_babel import lazy_gettext as _l

from crm_core.permissions import Level, QueryGrant, Reason, in_subquery
from crm_territory.placement import placed_in, placement_of

OWN_PLACEMENT = ("account", "lead")  # placed themselves
BY_ACCOUNT = ("contact", "opportunity")  # follow their account's placement
OBJECTS = OWN_PLACEMENT + BY_ACCOUNT
LEVEL_OF_ACCESS = {"read": Level.READ, "edit": Level.EDIT}
REASON = "territory"


def permissions():
    """``territory.manage`` (models, territories, members: administrators) and
    ``territory.realign`` (administrators and sales managers)."""
    from crm_core.permissions import Permission

    return [Permission("territory.manage", _l("Manage territories, their models and members"),
                       roles=("administrator",)),
            Permission("territory.realign", _l("Realign a territory model"),
                       roles=("administrator", "sales_manager"))]


# -- per-request state -----------------------------------------------------------------------

def _memo():
    """The access engine's per-request memo (a fresh dict outside an app context)."""
    if not has_app_context():
        return {}
    cache = g.get("_crm_access")
    if cache is None:
        cache = g._crm_access = {}
    return cache


def forget():
    """Drop this request's territory answers (after a change made in the same request)."""
    if has_app_context() and g.get("_crm_access") is not None:
        for key in [k for k in g._crm_access if isinstance(k, tuple) and k[:1] == (REASON,)]:
            del g._crm_access[key]


def active_tree():
    """(active model id, its Tree), or (None, None): read once per request."""
    from crm_territory import services

    memo = _memo()
    key = (REASON, "tree")
    if key not in memo:
        model = services.active_model()
        memo[key] = (model.id, services.tree(model.id)) if model is not None else (None, None)
    return memo[key]


def _manager_level():
    from crm_territory import services

    return LEVEL_OF_ACCESS.get(str(services.setting("manager_level")).strip().lower(), Level.EDIT)


def _own_territories(tree, user_id):
    """``(member of, managed)``: the territories of ``tree`` where ``user_id`` is a member,
    and those they manage."""
    from crm_territory.models import TerritoryMember

    member_of = [t for (t,) in TerritoryMember.select(TerritoryMember.territory_id)
                 .where(TerritoryMember.user_id == user_id).tuples() if t in tree.by_id]
    managed = [t for t, territory in tree.by_id.items() if territory.manager_id == user_id]
    return member_of, managed


def levels_of(user_id):
    """``(model id, {territory id: Level})``: where ``user_id`` sees placed records, and at
    which level, in the active model (``(None, {})`` when no model is active)."""
    memo = _memo()
    key = (REASON, "levels", user_id)
    if key in memo:
        return memo[key]
    model_id, tree = active_tree()
    levels = {}
    if tree is not None:
        member_of, managed = _own_territories(tree, user_id)
        for territory_id in member_of:
            for below in tree.subtree(territory_id):
                level = LEVEL_OF_ACCESS.get(tree.by_id[below].access_level, Level.READ)
                levels[below] = max(levels.get(below, Level.NONE), level)
        if managed:
            manager_level = _manager_level()
            for territory_id in managed:
                for below in tree.subtree(territory_id):
                    levels[below] = max(levels.get(below, Level.NONE), manager_level)
    memo[key] = (model_id, levels)
    return memo[key]


def _user_id(actor):
    return getattr(actor, "user_id", None) or getattr(actor, "id", None) or (
        actor if isinstance(actor, int) and not isinstance(actor, bool) else None)


def _reader_levels(actor, object):
    """``levels_of`` the actor for an object territories govern; ``(None, {})`` otherwise."""
    user_id = _user_id(actor) if object in OBJECTS else None
    return levels_of(user_id) if user_id is not None else (None, {})


# -- the query form ---------------------------------------------------------------------------------

def query_grants(actor, object):
    """One ``QueryGrant`` per level the user holds somewhere: the records of ``object``
    placed (by themselves or by their account) in the territories of that level."""
    from crm_core.permissions import engine

    model_id, levels = _reader_levels(actor, object)
    if not levels:
        return []
    model = engine().objects[object].model
    by_level = defaultdict(set)
    for territory_id, level in levels.items():
        by_level[level].add(territory_id)
    grants = []
    for level in sorted(by_level, reverse=True):
        if object in OWN_PLACEMENT:
            expression = in_subquery(model.id, placed_in(model_id, object, by_level[level]))
        else:
            expression = in_subquery(model.account_id, placed_in(model_id, "account", by_level[level]))
        grants.append(QueryGrant(level, expression, REASON))
    return grants


# -- the per-record form ---------------------------------------------------------------------------

def record_grants(actor, object, record):
    """``[Reason(level, "territory", <name of the record's territory>)]`` when the record
    (or its account) is placed where the user has a level; else nothing."""
    model_id, levels = _reader_levels(actor, object)
    if not levels:
        return []
    if object in OWN_PLACEMENT:
        placed_object, record_id = object, record.get_id()
    else:
        placed_object, record_id = "account", record.__data__.get("account")
    placement = placement_of(model_id, placed_object, record_id) if record_id is not None else None
    if placement is None or placement.territory_id not in levels:
        return []
    _model_id, tree = active_tree()
    return [Reason(levels[placement.territory_id], REASON, tree.by_id[placement.territory_id].name)]


# -- ext.territory ------------------------------------------------------------------------------------

def record_ext(actor, object, records):
    """``{"territory": {record id: {"id", "name", "path", "source"}}}``: where each record
    (or its account) is placed in the active model; unplaced records are left out. One
    query per page of records."""
    from crm_territory.models import TerritoryRecord

    if object not in OBJECTS or not records:
        return {}
    model_id, tree = active_tree()
    if tree is None:
        return {}
    if object in OWN_PLACEMENT:
        key_of = {record.id: record.id for record in records}
        placed_object = object
    else:
        key_of = {record.id: record.__data__.get("account") for record in records}
        placed_object = "account"
    wanted = sorted({k for k in key_of.values() if k is not None})
    if not wanted:
        return {}
    placements = {}
    for record_id, territory_id, source in (
            TerritoryRecord.select(TerritoryRecord.record_id, TerritoryRecord.territory_id,
                                   TerritoryRecord.source)
            .where((TerritoryRecord.model_id == model_id) & (TerritoryRecord.object == placed_object)
                   & TerritoryRecord.record_id.in_(wanted)).tuples()):
        if territory_id in tree.by_id:
            placements[record_id] = (territory_id, source)
    part = {}
    for record_id, key in key_of.items():
        if key in placements:
            territory_id, source = placements[key]
            part[record_id] = {"id": territory_id, "name": tree.by_id[territory_id].name,
                               "path": tree.path(territory_id), "source": source}
    return {"territory": part} if part else {}


# -- the share target "territory" ---------------------------------------------------------------------

def _people_of(tree, territory_ids):
    """Members and managers of ``territory_ids``."""
    from crm_territory.models import TerritoryMember

    ids = sorted(territory_ids)
    if not ids:
        return set()
    people = {u for (u,) in TerritoryMember.select(TerritoryMember.user_id)
              .where(TerritoryMember.territory_id.in_(ids)).tuples()}
    people |= {tree.by_id[t].manager_id for t in ids if tree.by_id[t].manager_id is not None}
    return people


def share_members(territory_id):
    """Who a sharing rule with the territory reaches: the members and managers of the
    territory and of every territory below it (active model; nobody for another model's)."""
    _model_id, tree = active_tree()
    if tree is None or territory_id not in tree.by_id:
        return set()
    return _people_of(tree, tree.subtree(territory_id))


def share_targets_of(user_id):
    """The territories whose sharing rules reach ``user_id``: every territory at or above
    one where they are a member or the manager (the relation of ``share_members`` seen
    from the user)."""
    _model_id, tree = active_tree()
    if tree is None:
        return set()
    member_of, managed = _own_territories(tree, user_id)
    targets = set()
    for territory_id in {*member_of, *managed}:
        targets.update(tree.path_ids(territory_id))
    return targets


def share_names(actor_id=None):
    """``[(territory id, "World / Asia / Vietnam")]`` of the active model, in tree order."""
    _model_id, tree = active_tree()
    if tree is None:
        return []
    out, todo = [], list(reversed(tree.roots))
    while todo:
        territory_id = todo.pop()
        out.append((territory_id, " / ".join(tree.path(territory_id))))
        todo.extend(reversed(tree.children.get(territory_id, ())))
    return out


def share_targets():
    """The share target ``territory`` (crm_register_share_targets)."""
    from crm_core.permissions import ShareTarget

    return [ShareTarget("territory", _l("Territory"), share_members, share_targets_of, share_names)]
