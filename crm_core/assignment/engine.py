"""The compiled rule set: load the rules and groups of an object once, then
``propose(values) -> owner_id | None`` in plain Python, fast enough for imports.

Round-robin groups rotate on a counter (``turns``) stored with the group. A proposer
reserves turns in blocks by a conditional update on the group's version, so two workers
assigning at once never take the same turn; a block it did not use up is given back when
nobody else moved the counter in the meantime. Capacity: each member may hold at most
``capacity`` open records of the object (counted when the proposer is compiled, plus what
it assigned since); full and inactive members are skipped; when the whole group is full,
the next rule is tried.

A rule may instead name a plugin's target (``crm_register_assignment_targets``): its picker
is compiled once per run and gives a user id or None (the next rule decides); a target no
longer registered (its plugin switched off) or not serving the object skips the rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import peewee

from crm_core.assignment.conditions import compile_parts, norm
from crm_core.assignment.models import AssignmentGroup, AssignmentGroupMember, AssignmentRule
from crm_core.assignment.objects import assignable
from crm_core.assignment.targets import targets_for
from crm_core.users.models import User

ONLINE_BLOCK = 1      # a record created or assigned on demand takes one turn
BULK_BLOCK = 1000     # an import reserves turns a thousand at a time


class Rotation:
    """Turns of one group for one proposer."""

    def __init__(self, group_id, members, open_counts, block):
        self.group_id = group_id
        self.members = members            # [(user_id, limit or None, usable)] in position order
        self.counts = dict(open_counts)   # user_id -> open records held
        self.block = block
        self.turn = self.end = 0

    def _reserve(self):
        # A conditional update on the version: of two writers reading the same counter,
        # one moves it and the other reads again.
        while True:
            turns, version = (AssignmentGroup.select(AssignmentGroup.turns, AssignmentGroup.version)
                              .where(AssignmentGroup.id == self.group_id).tuples().get())
            moved = (AssignmentGroup.update({AssignmentGroup.turns: turns + self.block,
                                             AssignmentGroup.version: version + 1})
                     .where((AssignmentGroup.id == self.group_id) & (AssignmentGroup.version == version))
                     .execute())
            if moved == 1:
                self.turn, self.end = turns, turns + self.block
                return

    def next(self):
        count = len(self.members)
        for _ in range(count):
            if self.turn >= self.end:
                self._reserve()
            user_id, limit, usable = self.members[self.turn % count]
            self.turn += 1
            if usable and (limit is None or self.counts.get(user_id, 0) < limit):
                self.counts[user_id] = self.counts.get(user_id, 0) + 1
                return user_id
        return None

    def release(self):
        """Give back the turns reserved and not taken (if nobody moved the counter since)."""
        if self.end > self.turn:
            (AssignmentGroup.update({AssignmentGroup.turns: self.turn,
                                     AssignmentGroup.version: AssignmentGroup.version + 1})
             .where((AssignmentGroup.id == self.group_id) & (AssignmentGroup.turns == self.end))
             .execute())
            self.end = self.turn


@dataclass
class CompiledRule:
    rule_id: int
    parts: list  # [(field, getter, test)]; the Proposer turns them into [(field index, test)]
    owner_id: int | None
    rotation: Rotation | None
    picker: object = None  # a target's picker: pick(values) -> user id | None


class Proposer:
    """The rules of one object, compiled. ``mode`` is the rule set's ("apply"/"propose")."""

    def __init__(self, object_name, mode, rules, pickers=()):
        self.object_name = object_name
        self.mode = mode
        self.pickers = list(pickers)  # each compiled once, finished once
        self._usable = {}  # user id -> active? (a picker's answer is checked once per user)
        # The fields the rules test, in a fixed order; each rule's conditions point at them.
        fields = []
        for rule in rules:
            for field, _, _ in rule.parts:
                if field not in fields:
                    fields.append(field)
        self.getters = [next(get for rule in rules for f, get, _ in rule.parts if f == field) for field in fields]
        from crm_core.assignment.conditions import is_special

        self.plain_fields = None if any(is_special(object_name, field) for field in fields) else fields
        for rule in rules:
            rule.parts = [(fields.index(field), test) for field, _, test in rule.parts]
        self.rules = rules

    def propose_with_rule(self, values):
        """(owner_id, rule_id) of the first rule that matches and can give an owner, or None."""
        # Each field any rule tests is read and normalised once per row.
        if self.plain_fields is not None:  # no special getters: one dict lookup a field
            get = values.get
            row = [norm(get(field)) for field in self.plain_fields]
        else:
            row = [norm(get(values)) for get in self.getters]
        for rule in self.rules:
            for index, test in rule.parts:
                if not test(row[index]):
                    break
            else:
                if rule.owner_id is not None:
                    return rule.owner_id, rule.rule_id
                if rule.picker is not None:
                    picked = rule.picker.pick(values)
                    if picked is not None and self._active(picked):
                        return picked, rule.rule_id
                    continue
                picked = rule.rotation.next()
                if picked is not None:
                    return picked, rule.rule_id
        return None

    def propose(self, values):
        """The owner the rules give a record with ``values`` (API field names), or None."""
        found = self.propose_with_rule(values)
        return found[0] if found else None

    def _active(self, user_id):
        if user_id not in self._usable:
            self._usable[user_id] = user_id in _active_users({user_id})
        return self._usable[user_id]

    def finish(self):
        """Give back unused round-robin turns and finish the targets' pickers; call once
        the batch is done."""
        for rule in self.rules:
            if rule.rotation is not None:
                rule.rotation.release()
        pickers, self.pickers = self.pickers, []
        for picker in pickers:
            finish = getattr(picker, "finish", None)
            if finish is not None:
                finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.finish()


def _active_users(user_ids):
    if not user_ids:
        return set()
    return {uid for (uid,) in User.alive(User.id).where(User.id.in_(sorted(user_ids))
                                                        & (User.active == True)).tuples()}  # noqa: E712


def open_counts(object_name, user_ids):
    """Open records of ``object_name`` each user owns (what capacities count)."""
    spec = assignable(object_name)
    if not user_ids:
        return {}
    model = spec.model
    query = (model.select(model.owner_id, peewee.fn.COUNT(model.id))
             .where(model.deleted_at.is_null() & model.owner_id.in_(sorted(user_ids))))
    if spec.open_condition is not None:
        query = query.where(spec.open_condition())
    return dict(query.group_by(model.owner_id).tuples())


def compile_rules(object_name, block=BULK_BLOCK, for_creation=False):
    """Load the active rules of ``object_name`` (in order) and their groups, once.

    ``for_creation``: for new records (an import, web-to-lead); when the rule set does not
    run on creation, the proposer has no rules and proposes nobody."""
    from crm_core.assignment.services import rule_set

    assignable(object_name)  # refuses an object nobody registered
    settings = rule_set(object_name)
    if for_creation and not settings.run_on_create:
        return Proposer(object_name, settings.mode, [])
    rules = list(AssignmentRule.select().where((AssignmentRule.object == object_name)
                                               & (AssignmentRule.active == True))  # noqa: E712
                 .order_by(AssignmentRule.position, AssignmentRule.id))
    group_ids = {r.group_id for r in rules if r.group_id}
    members = list(AssignmentGroupMember.select().where(AssignmentGroupMember.group.in_(sorted(group_ids)))
                   .order_by(AssignmentGroupMember.position, AssignmentGroupMember.id)) if group_ids else []
    capacities = dict(AssignmentGroup.select(AssignmentGroup.id, AssignmentGroup.capacity)
                      .where(AssignmentGroup.id.in_(sorted(group_ids))).tuples()) if group_ids else {}
    people = {r.owner_id for r in rules if r.owner_id} | {m.user_id for m in members}
    alive = _active_users(people)
    counts = open_counts(object_name, {m.user_id for m in members})
    rotations, pickers = {}, {}
    serving = targets_for(object_name)
    for key in dict.fromkeys(r.target for r in rules if r.target):
        if key in serving:  # compiled once per run, shared by the rules naming it
            pickers[key] = serving[key].compile(object_name, block)
    for group_id in group_ids:
        own = [(m.user_id, m.capacity if m.capacity is not None else capacities.get(group_id),
                m.active and m.user_id in alive) for m in members if m.group_id == group_id]
        rotations[group_id] = Rotation(group_id, own, counts, block) if own else None
    compiled = []
    for rule in rules:
        if rule.target:
            if rule.target in pickers:  # else its plugin is off: the next rule decides
                compiled.append(CompiledRule(rule.id, compile_parts(object_name, json.loads(rule.conditions)),
                                             None, None, pickers[rule.target]))
            continue
        if rule.owner_id is not None and rule.owner_id not in alive:
            continue  # an owner who left cannot take records: the next rule decides
        rotation = rotations.get(rule.group_id) if rule.group_id else None
        if rule.owner_id is None and rotation is None:
            continue
        compiled.append(CompiledRule(rule.id, compile_parts(object_name, json.loads(rule.conditions)),
                                     rule.owner_id, rotation))
    return Proposer(object_name, settings.mode, compiled, pickers.values())
