"""The rules of territory models, territories and members.

Every change goes through these functions; the API and the pages only parse and render.
A refused change raises ``crm_core.errors.UserError`` with a message per input (the API
answers 422, or 409 for a name already taken, a territory with territories below it or a
rep already in another territory). Versioned rows (models, territories) take the version
the caller read (``expected_version``; a stale one raises ``VersionConflict``).

Nothing here caches: access.py reads ``tree`` afresh on every request (kept only in that
request's memo), so a change counts from the very next request.

Function names are used by the API, the pages and the other modules of the plugin; keep
them stable:

- models: ``active_model``, ``get_model``, ``list_models``, ``create_model``,
  ``update_model``, ``activate_model``, ``delete_model``;
- territories: ``get_territory``, ``territories_of_model``, ``create_territory``,
  ``update_territory``, ``delete_territory``, ``criteria_of``;
- members: ``members_of``, ``add_member``, ``remove_member``, ``may_manage_members``;
- lookups: ``tree``, ``Tree.subtree``, ``Tree.path``, ``path_of``, ``subtree_ids``,
  ``territories_of_user``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from crm_core.db import database, utcnow
from crm_core.errors import UserError, VersionConflict
from crm_core.org.services import Problems
from crm_core.records import create_record, soft_delete, update_record
from crm_core.users.models import User
from crm_territory import criteria as criteria_module
from crm_territory.models import (ACCESS_LEVELS, MODEL_STATES, Territory, TerritoryMember, TerritoryModel,
                                  TerritoryRecord)

NAME_MAX = 200
DESCRIPTION_MAX = 2000
MANAGE = "territory.manage"
REALIGN = "territory.realign"


def setting(name):
    """A setting of the plugin (``several_territories_per_rep``, ``manager_level``...)."""
    return current_app.extensions["crm"].settings("territory")[name]


def _name(value, problems, name="name"):
    value = (value or "").strip() if isinstance(value, str) else value
    if not isinstance(value, str) or not value:
        problems.add(name, _l("Enter a name."))
    elif len(value) > NAME_MAX:
        problems.add(name, lazy_ngettext("Enter at most %(num)s character.",
                                         "Enter at most %(num)s characters.", NAME_MAX))
    return value


def _description(value, problems):
    value = value or ""
    if not isinstance(value, str):
        problems.add("description", _l("Enter a text."))
    elif len(value) > DESCRIPTION_MAX:
        problems.add("description", lazy_ngettext("Enter at most %(num)s character.",
                                                  "Enter at most %(num)s characters.", DESCRIPTION_MAX))
    return value if isinstance(value, str) else ""


def _changed():
    """Forget this request's territory access answers: the next decision reads the change."""
    from crm_territory.access import forget

    forget()


def announce(hook_name, **kwargs):
    """Call one of the hooks this plugin offers (crm_territory/hookspecs.py) inside the
    caller's transaction: an exception of an implementation rolls the change back."""
    getattr(current_app.extensions["crm"].hook, hook_name)(app=current_app._get_current_object(), **kwargs)


def _check_version(instance, expected_version):
    if expected_version is not None and int(expected_version) != instance.version:
        raise VersionConflict(type(instance), instance.id, expected_version, instance.version)


# -- models -----------------------------------------------------------------------------------------

def active_model():
    """The active model (the one that grants access), or None."""
    return (TerritoryModel.alive().where(TerritoryModel.state == "active")
            .order_by(TerritoryModel.id).first())


def get_model(model_id):
    """A model that is not deleted, or None."""
    return TerritoryModel.alive().where(TerritoryModel.id == model_id).first()


def list_models(state=None):
    """The models that are not deleted (of one ``state`` when given), newest first."""
    query = TerritoryModel.alive()
    if state is not None:
        query = query.where(TerritoryModel.state == state)
    return query.order_by(TerritoryModel.id.desc())


def create_model(name, description="", actor_id=None):
    """A new model in planning: build its tree, then activate it (``activate_model``)."""
    problems = Problems()
    name = _name(name, problems)
    description = _description(description, problems)
    problems.check()
    return create_record(TerritoryModel, actor_id=actor_id, name=name, description=description,
                         state="planning")


def update_model(model, changes, actor_id=None, expected_version=None):
    """Rename a model or change its description (the state changes by ``activate_model``
    only); returns what changed."""
    problems = Problems()
    values = {}
    if "name" in changes:
        values["name"] = _name(changes["name"], problems)
    if "description" in changes:
        values["description"] = _description(changes["description"], problems)
    unknown = set(changes) - {"name", "description"}
    for key in sorted(unknown):
        problems.add(key, _l("This field cannot be changed."))
    problems.check()
    return update_record(model, values, actor_id=actor_id, expected_version=expected_version)


def activate_model(model, actor_id=None, expected_version=None):
    """The switch-over: ``model`` (in planning) becomes the active model and the model active
    until now is archived, in one transaction (never two active models, never a moment
    with none). An archived model cannot come back (copy it into a new plan instead)."""
    _check_version(model, expected_version)
    if model.state != "planning":
        raise UserError(_l("Only a model in planning can be activated."), field="state",
                        code="stale" if model.state == "active" else "invalid")
    now = utcnow()
    with database.atomic():
        previous_models = list(TerritoryModel.alive().where((TerritoryModel.state == "active")
                                                            & (TerritoryModel.id != model.id)))
        for previous in previous_models:
            update_record(previous, {"state": "archived"}, actor_id=actor_id)
        update_record(model, {"state": "active", "activated_at": now}, actor_id=actor_id)
        announce("crm_territory_model_activated", model=model,
                 previous=previous_models[0] if previous_models else None, actor_id=actor_id)
    _changed()
    return model


def delete_model(model, actor_id=None, expected_version=None):
    """Delete a model in planning or archived, with its territories (soft), members and
    placements. The active model cannot be deleted: activate another one first."""
    _check_version(model, expected_version)
    if model.state == "active":
        raise UserError(_l("The active model cannot be deleted: activate another model first."),
                        field="state", code="invalid")
    with database.atomic():
        territory_ids = [t for (t,) in Territory.alive(Territory.id)
                         .where(Territory.model_id == model.id).tuples()]
        now = utcnow()
        if territory_ids:
            TerritoryMember.delete().where(TerritoryMember.territory_id.in_(territory_ids)).execute()
            (Territory.update({Territory.deleted_at: now, Territory.deleted_by_id: actor_id,
                               Territory.version: Territory.version + 1})
             .where(Territory.id.in_(territory_ids)).execute())
        TerritoryRecord.delete().where(TerritoryRecord.model_id == model.id).execute()
        soft_delete(model, actor_id=actor_id, now=now)
    _changed()


# -- territories ----------------------------------------------------------------------------------------

def get_territory(territory_id):
    """A territory that is not deleted, or None."""
    return Territory.alive().where(Territory.id == territory_id).first()


def territories_of_model(model_id):
    """The model's territories in tree order's sort key: (position, id)."""
    return (Territory.alive().where(Territory.model_id == model_id)
            .order_by(Territory.position, Territory.id))


def criteria_of(territory):
    """The territory's criteria as a dict."""
    return json.loads(territory.criteria or "{}")


def _active_user(user_id, problems, name):
    if user_id is None:
        return None
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not User.alive().where(
            (User.id == user_id) & (User.active == True)).exists():  # noqa: E712 (SQL)
        problems.add(name, _l("No such active user."))
    return user_id


def _criteria(raw, problems):
    try:
        clean = criteria_module.validate(raw)
    except criteria_module.CriteriaError as error:
        for key, message in error.problems.items():
            problems.add("criteria" if key == "criteria" else f"criteria.{key}", message)
        return None
    return json.dumps(clean, sort_keys=True, ensure_ascii=False)


def _writable_model(model_id, problems):
    model = get_model(model_id) if isinstance(model_id, int) and not isinstance(model_id, bool) else None
    if model is None:
        problems.add("model_id", _l("No such territory model."))
    elif model.state == "archived":
        problems.add("model_id", _l("An archived model cannot be changed."))
    return model


def _parent(parent_id, model_id, problems):
    if parent_id is None:
        return None
    parent = get_territory(parent_id) if isinstance(parent_id, int) else None
    if parent is None:
        problems.add("parent_id", _l("No such territory."))
    elif parent.model_id != model_id:
        problems.add("parent_id", _l("The parent must be a territory of the same model."))
    return parent


def _unique_among_siblings(name, model_id, parent_id, problems, territory=None):
    if "name" in problems or "parent_id" in problems:
        return
    query = Territory.alive(Territory.id, Territory.name).where(
        (Territory.model_id == model_id)
        & (Territory.parent_id.is_null() if parent_id is None else (Territory.parent_id == parent_id)))
    if territory is not None:
        query = query.where(Territory.id != territory.id)
    if any(other.casefold() == name.casefold() for _, other in query.tuples()):
        problems.add("name", _l("Another territory at this place of the tree has this name."),
                     code="duplicate")


def _access_level(value, problems):
    if value not in ACCESS_LEVELS:
        problems.add("access_level", _l("Choose read or edit."))
    return value


def _position(value, problems):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        problems.add("position", _l("Enter a whole number from 0."))
    return value


def create_territory(model_id, name, parent_id=None, criteria=None, access_level="edit",
                     manager_id=None, position=0, description="", actor_id=None):
    """A territory of ``model_id`` under ``parent_id`` (None: a root). Its name is unique
    among its siblings; criteria are checked by ``crm_territory.criteria.validate``; the
    manager must be an active user."""
    problems = Problems()
    model = _writable_model(model_id, problems)
    name = _name(name, problems)
    if model is not None:
        _parent(parent_id, model.id, problems)
    stored_criteria = _criteria(criteria if criteria is not None else {}, problems)
    _access_level(access_level, problems)
    _active_user(manager_id, problems, "manager_id")
    _position(position, problems)
    description = _description(description, problems)
    if model is not None:
        _unique_among_siblings(name, model.id, parent_id, problems)
    problems.check()
    territory = create_record(Territory, actor_id=actor_id, model_id=model.id, parent_id=parent_id, name=name,
                              description=description, criteria=stored_criteria, access_level=access_level,
                              manager_id=manager_id, position=position)
    _changed()
    return territory


TERRITORY_FIELDS = ("name", "parent_id", "criteria", "access_level", "manager_id", "position", "description")


def update_territory(territory, changes, actor_id=None, expected_version=None):
    """Change a territory (any of ``TERRITORY_FIELDS``; the model cannot change); moving it
    under one of its own descendants is refused. Returns what changed."""
    problems = Problems()
    _writable_model(territory.model_id, problems)
    if "model_id" in problems:
        problems.fields["_schema"] = problems.fields.pop("model_id")
    for key in sorted(set(changes) - set(TERRITORY_FIELDS)):
        problems.add(key, _l("This field cannot be changed."))
    values = {}
    if "name" in changes:
        values["name"] = _name(changes["name"], problems)
    if "parent_id" in changes:
        parent_id = changes["parent_id"]
        parent = _parent(parent_id, territory.model_id, problems)
        if parent is not None and "parent_id" not in problems and territory.id in tree(
                territory.model_id).path_ids(parent.id):
            problems.add("parent_id", _l("A territory cannot be placed under itself."))
        values["parent_id"] = parent_id
    if "criteria" in changes:
        values["criteria"] = _criteria(changes["criteria"] if changes["criteria"] is not None else {},
                                       problems)
    if "access_level" in changes:
        values["access_level"] = _access_level(changes["access_level"], problems)
    if "manager_id" in changes:
        values["manager_id"] = _active_user(changes["manager_id"], problems, "manager_id")
    if "position" in changes:
        values["position"] = _position(changes["position"], problems)
    if "description" in changes:
        values["description"] = _description(changes["description"], problems)
    if "name" in values or "parent_id" in values:
        _unique_among_siblings(values.get("name", territory.name), territory.model_id,
                               values.get("parent_id", territory.parent_id), problems, territory)
    problems.check()
    changed = update_record(territory, values, actor_id=actor_id, expected_version=expected_version)
    _changed()
    return changed


def delete_territory(territory, actor_id=None, expected_version=None):
    """Soft delete a territory, its members and the placements the rules made in it (the
    next realignment places those records again). Refused (409) while territories below it
    are alive or records were placed in it by hand: they would be lost silently."""
    _check_version(territory, expected_version)
    problems = Problems()
    _writable_model(territory.model_id, problems)
    if problems.fields:
        raise UserError(problems.fields["model_id"], field="_schema")
    if Territory.alive().where(Territory.parent_id == territory.id).exists():
        raise UserError(_l("Move or delete the territories below it first."), field="_schema",
                        code="has_children")
    if TerritoryRecord.select().where((TerritoryRecord.territory_id == territory.id)
                                      & (TerritoryRecord.source == "manual")).exists():
        raise UserError(_l("Records were placed in this territory by hand: place them elsewhere first."),
                        field="_schema", code="has_children")
    with database.atomic():
        TerritoryMember.delete().where(TerritoryMember.territory_id == territory.id).execute()
        TerritoryRecord.delete().where(TerritoryRecord.territory_id == territory.id).execute()
        soft_delete(territory, actor_id=actor_id)
    _changed()


# -- lookups ---------------------------------------------------------------------------------------------

@dataclass
class Tree:
    """One model's territories read in one query: ``by_id``, ``children`` (ids in
    (position, id) order) and ``roots``. Built per call, never kept between requests."""

    model_id: int
    by_id: dict
    children: dict = field(default_factory=lambda: defaultdict(list))
    roots: list = field(default_factory=list)

    def subtree(self, territory_id):
        """The ids of the territory and of every territory below it (breadth first)."""
        if territory_id not in self.by_id:
            return []
        found, todo, seen = [], [territory_id], set()
        while todo:
            current = todo.pop(0)
            if current in seen:  # a loop written behind the services' back stops here
                continue
            seen.add(current)
            found.append(current)
            todo.extend(self.children.get(current, ()))
        return found

    def path_ids(self, territory_id):
        """The ids from the root down to the territory (itself last)."""
        chain, seen, current = [], set(), territory_id
        while current is not None and current in self.by_id and current not in seen:
            seen.add(current)
            chain.append(current)
            current = self.by_id[current].parent_id
        return list(reversed(chain))

    def path(self, territory_id):
        """The names from the root down: ``["World", "Asia", "Vietnam", "South Vietnam"]``."""
        return [self.by_id[t].name for t in self.path_ids(territory_id)]


def tree(model_id):
    """The tree of a model (territories that are not deleted)."""
    territories = list(territories_of_model(model_id))
    result = Tree(model_id=model_id, by_id={t.id: t for t in territories})
    for territory in territories:
        if territory.parent_id is None or territory.parent_id not in result.by_id:
            result.roots.append(territory.id)
        else:
            result.children[territory.parent_id].append(territory.id)
    return result


def subtree_ids(territory):
    """The ids of ``territory`` and of every territory below it."""
    return tree(territory.model_id).subtree(territory.id)


def path_of(territory):
    """The names from the root down to ``territory``."""
    return tree(territory.model_id).path(territory.id)


def territories_of_user(user_id, model_id=None):
    """``{"member": [ids], "manager": [ids]}``: the territories (of ``model_id``, by default
    the active model; none when no model is active) where the user is a member or the manager."""
    if model_id is None:
        model = active_model()
        if model is None:
            return {"member": [], "manager": []}
        model_id = model.id
    member = [t for (t,) in Territory.alive(Territory.id)
              .join(TerritoryMember, on=(TerritoryMember.territory_id == Territory.id))
              .where((Territory.model_id == model_id) & (TerritoryMember.user_id == user_id))
              .order_by(Territory.id).tuples()]
    manager = [t for (t,) in Territory.alive(Territory.id)
               .where((Territory.model_id == model_id) & (Territory.manager_id == user_id))
               .order_by(Territory.id).tuples()]
    return {"member": member, "manager": manager}


# -- members -------------------------------------------------------------------------------------------

def members_of(territory):
    """The territory's members (TerritoryMember rows), by user id."""
    return list(TerritoryMember.select().where(TerritoryMember.territory_id == territory.id)
                .order_by(TerritoryMember.user_id))


def may_manage_members(actor_id, territory):
    """May ``actor_id`` add and remove members of ``territory``? Holders of
    ``territory.manage`` may; so may the manager of the territory or of one above it."""
    from crm_core.permissions import engine

    if engine().has_permission(actor_id, MANAGE):
        return True
    if not engine().subject(actor_id).active:
        return False
    model_tree = tree(territory.model_id)
    return any(model_tree.by_id[t].manager_id == actor_id for t in model_tree.path_ids(territory.id))


def add_member(territory, user_id, actor_id=None):
    """Make ``user_id`` (an active user) a member of ``territory``. A rep is a member of one
    territory per model unless the setting ``several_territories_per_rep`` is on: a second
    one is refused (409); so is the same territory twice."""
    problems = Problems()
    _writable_model(territory.model_id, problems)
    if "model_id" in problems:
        problems.fields["_schema"] = problems.fields.pop("model_id")
    _active_user(user_id, problems, "user_id")
    problems.check()
    with database.atomic():
        if TerritoryMember.select().where((TerritoryMember.territory_id == territory.id)
                                          & (TerritoryMember.user_id == user_id)).exists():
            raise UserError(_l("This user is already a member of the territory."), field="user_id",
                            code="duplicate")
        if not setting("several_territories_per_rep"):
            other = (Territory.alive().join(TerritoryMember, on=(TerritoryMember.territory_id == Territory.id))
                     .where((Territory.model_id == territory.model_id) & (TerritoryMember.user_id == user_id))
                     .first())
            if other is not None:
                raise UserError(_l("This user is already a member of the territory %(name)s: "
                                   "a rep belongs to one territory per model.", name=other.name),
                                field="user_id", code="duplicate")
        member = TerritoryMember.create(territory_id=territory.id, user_id=user_id, created_at=utcnow(),
                                        created_by_id=actor_id)
        announce("crm_territory_members_changed", territory=territory, added=[user_id], removed=[],
                 actor_id=actor_id)
    _changed()
    return member


def remove_member(territory, user_id, actor_id=None):
    """Take ``user_id`` out of ``territory``; False when they were not a member."""
    problems = Problems()
    _writable_model(territory.model_id, problems)
    if problems.fields:
        raise UserError(problems.fields["model_id"], field="_schema")
    with database.atomic():
        removed = bool(TerritoryMember.delete().where((TerritoryMember.territory_id == territory.id)
                                                      & (TerritoryMember.user_id == user_id)).execute())
        if removed:
            announce("crm_territory_members_changed", territory=territory, added=[], removed=[user_id],
                     actor_id=actor_id)
    _changed()
    return removed


__all__ = ["MODEL_STATES", "ACCESS_LEVELS", "MANAGE", "REALIGN", "Tree", "active_model", "get_model",
           "list_models", "create_model", "update_model", "activate_model", "delete_model", "get_territory",
           "territories_of_model", "criteria_of", "create_territory", "update_territory", "delete_territory",
           "tree", "subtree_ids", "path_of", "territories_of_user", "members_of", "may_manage_members",
           "add_member", "remove_member", "setting"]
