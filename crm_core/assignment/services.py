"""The rules of assignment: rule sets, rules, round-robin groups; running them on creation,
on import and on demand; proposals a manager confirms, changes or rejects; the progress of
the leads reps were given. Every new owner is notified (in the app and by email)."""

from __future__ import annotations

import json
from collections import defaultdict

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.assignment.conditions import check_conditions
from crm_core.assignment.engine import ONLINE_BLOCK, compile_rules
from crm_core.assignment.models import (PROPOSAL_STATUSES, RULE_SET_MODES, AssignmentGroup,
                                        AssignmentGroupMember, AssignmentProposal, AssignmentRule,
                                        AssignmentRuleSet)
from crm_core.assignment.objects import assignable
from crm_core.assignment.targets import targets_for
from crm_core.db import database, utcnow
from crm_core.errors import UserError, VersionConflict
from crm_core.org.services import Problems
from crm_core.permissions import Level, engine
from crm_core.users.models import User

PERMISSION = "assignment.manage"
NAME_MAX = 200
CHUNK = 500


def _check_version(instance, expected_version):
    if expected_version is not None and int(expected_version) != instance.version:
        raise VersionConflict(type(instance), instance.get_id(), expected_version, instance.version)


def _conditional_save(model, instance, values, expected_version):
    """Write ``values`` on the version the caller saw (a conditional update)."""
    expected = instance.version if expected_version is None else int(expected_version)
    values = {**values, "version": expected + 1, "updated_at": utcnow()}
    done = (model.update({model._meta.fields[k]: v for k, v in values.items()})
            .where((model._meta.primary_key == instance.get_id()) & (model.version == expected)).execute())
    if done != 1:
        raise VersionConflict(model, instance.get_id(), expected, instance.version)
    instance.__data__.update(model.get_by_id(instance.get_id()).__data__)
    return instance


def _live_user(user_id, problems, field):
    if user_id is None or not User.alive().where((User.id == user_id) & (User.active == True)).exists():  # noqa: E712
        problems.add(field, _l("No such user."))


def _capacity(value, problems, field="capacity"):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        problems.add(field, _l("Enter a whole number, 0 or more."))


# -- rule sets ----------------------------------------------------------------------------------

def rule_set(object_name):
    """The settings of ``object_name``'s rules (stored or the defaults: apply, on creation)."""
    found = AssignmentRuleSet.get_or_none(AssignmentRuleSet.object == object_name)
    return found or AssignmentRuleSet(object=object_name, mode="apply", run_on_create=True, version=0)


def set_rule_set(object_name, actor_id=None, expected_version=None, **changes):
    assignable(object_name)
    problems = Problems()
    if "mode" in changes and changes["mode"] not in RULE_SET_MODES:
        problems.add("mode", _l("Choose one of: %(choices)s.", choices=", ".join(RULE_SET_MODES)))
    problems.check()
    with database.atomic():
        current = rule_set(object_name)
        if current.version == 0:
            _check_version(current, expected_version)
            AssignmentRuleSet.insert(object=object_name, mode=changes.get("mode", "apply"),
                                     run_on_create=changes.get("run_on_create", True), version=1,
                                     updated_at=utcnow(), updated_by_id=actor_id).execute()
            return rule_set(object_name)
        values = {k: v for k, v in changes.items() if getattr(current, k) != v}
        if not values:
            _check_version(current, expected_version)
            return current
        return _conditional_save(AssignmentRuleSet, current, {**values, "updated_by_id": actor_id},
                                 expected_version)


# -- rules ----------------------------------------------------------------------------------------

def _check_rule(object_name, values, problems):
    if "name" in values:
        name = (values["name"] or "").strip()
        values["name"] = name
        if not name:
            problems.add("name", _l("This field is required."))
        elif len(name) > NAME_MAX:
            problems.add("name", _l("At most %(max)s characters.", max=NAME_MAX))
    if "conditions" in values:
        check_conditions(object_name, assignable(object_name).fields, values["conditions"], problems)
    owner_id, group_id, target = values.get("owner_id"), values.get("group_id"), values.get("target")
    given = [name for name, value in (("owner_id", owner_id), ("group_id", group_id), ("target", target))
             if value is not None]
    if len(given) != 1:
        if targets_for(object_name):
            problems.add("owner_id", _l("Give exactly one of: an owner, a round-robin group or a target."))
        else:
            problems.add("owner_id", _l("Give either an owner or a round-robin group."))
    elif owner_id is not None:
        _live_user(owner_id, problems, "owner_id")
    elif group_id is not None:
        if AssignmentGroup.get_or_none(AssignmentGroup.id == group_id) is None:
            problems.add("group_id", _l("No such round-robin group."))
    elif target not in targets_for(object_name):
        problems.add("target", _l("No such assignment target for these records."))


def rules_of(object_name):
    return list(AssignmentRule.select().where(AssignmentRule.object == object_name)
                .order_by(AssignmentRule.position, AssignmentRule.id))


def _rule_columns(values):
    out = dict(values)
    if "conditions" in out:
        out["conditions"] = json.dumps(out["conditions"], ensure_ascii=False)
    if "group_id" in out:
        out["group"] = out.pop("group_id")
    return out


def create_rule(object_name, values, actor_id=None):
    """A rule at the end of ``object_name``'s rules (or at ``position``)."""
    assignable(object_name)
    values = {"conditions": [], "owner_id": None, "group_id": None, "target": None, **values}
    problems = Problems()
    if "name" not in values:
        values["name"] = ""
    _check_rule(object_name, values, problems)
    problems.check()
    with database.atomic():
        if values.get("position") is None:
            last = (AssignmentRule.select(peewee.fn.MAX(AssignmentRule.position))
                    .where(AssignmentRule.object == object_name).scalar())
            values["position"] = (last or 0) + 10
        rule = AssignmentRule.create(object=object_name, **_rule_columns(values))
    return rule


def update_rule(rule, changes, actor_id=None, expected_version=None):
    problems = Problems()
    merged = {"owner_id": rule.owner_id, "group_id": rule.group_id, "target": rule.target, **changes}
    _check_rule(rule.object, merged, problems)
    problems.check()
    for key in ("name",):
        if key in changes:
            changes[key] = merged[key]
    return _conditional_save(AssignmentRule, rule, _rule_columns(changes), expected_version)


def delete_rule(rule, actor_id=None, expected_version=None):
    _check_version(rule, expected_version)
    AssignmentRule.delete().where(AssignmentRule.id == rule.id).execute()


def rule_conditions(rule):
    return json.loads(rule.conditions)


# -- round-robin groups ------------------------------------------------------------------------------

def _check_members(members, problems):
    if not isinstance(members, list):
        problems.add("members", _l("Give a list of members."))
        return
    seen = set()
    for member in members:
        user_id = member.get("user_id")
        if user_id in seen:
            problems.add("members", _l("A member is listed twice."))
        seen.add(user_id)
        _live_user(user_id, problems, "members")
        _capacity(member.get("capacity"), problems, "members")


def _group_name(name, problems, group=None):
    name = (name or "").strip()
    if not name:
        problems.add("name", _l("This field is required."))
    elif len(name) > NAME_MAX:
        problems.add("name", _l("At most %(max)s characters.", max=NAME_MAX))
    elif AssignmentGroup.select().where((peewee.fn.LOWER(AssignmentGroup.name) == name.lower())
                                        & (AssignmentGroup.id != (group.id if group else 0))).exists():
        problems.add("name", _l("This name is already taken."), code="duplicate")
    return name


def _store_members(group, members):
    AssignmentGroupMember.delete().where(AssignmentGroupMember.group == group.id).execute()
    for position, member in enumerate(members):
        AssignmentGroupMember.create(group=group.id, user_id=member["user_id"], position=position,
                                     capacity=member.get("capacity"), active=member.get("active", True))


def members_of(group):
    return list(AssignmentGroupMember.select().where(AssignmentGroupMember.group == group.id)
                .order_by(AssignmentGroupMember.position))


def create_group(name, members=(), capacity=None, actor_id=None):
    """A round-robin group; ``members`` is a list of ``{"user_id", "capacity"?, "active"?}``
    in the order they take turns."""
    members = list(members)
    problems = Problems()
    name = _group_name(name, problems)
    _capacity(capacity, problems)
    _check_members(members, problems)
    problems.check()
    with database.atomic():
        group = AssignmentGroup.create(name=name, capacity=capacity)
        _store_members(group, members)
    return group


def update_group(group, changes, actor_id=None, expected_version=None):
    problems = Problems()
    values = {}
    if "name" in changes:
        values["name"] = _group_name(changes["name"], problems, group)
    if "capacity" in changes:
        _capacity(changes["capacity"], problems)
        values["capacity"] = changes["capacity"]
    if "members" in changes:
        _check_members(changes["members"], problems)
    problems.check()
    with database.atomic():
        _conditional_save(AssignmentGroup, group, values, expected_version)
        if "members" in changes:
            _store_members(group, changes["members"])
    return group


def delete_group(group, actor_id=None, expected_version=None):
    _check_version(group, expected_version)
    if AssignmentRule.select().where(AssignmentRule.group == group.id).exists():
        raise UserError(_l("Rules still use this group: change them first."), code="has_children")
    AssignmentGroup.delete().where(AssignmentGroup.id == group.id).execute()


# -- running the rules ------------------------------------------------------------------------------

def _values_of(record):
    """A record's values under API names (``campaign_id`` for the foreign key ``campaign``)."""
    out = {}
    for name, field in type(record)._meta.fields.items():
        out[field.column_name if hasattr(field, "rel_model") else name] = record.__data__.get(name)
    return out


def _give(object_name, record, owner_id, actor_id):
    """Change the owner through the record's own write path (version, history, shares)."""
    from crm_core.record_checks import save_changes

    return bool(save_changes(record, object_name, {"owner_id": owner_id}, actor_id=actor_id))


def apply_rules(object_name, records, actor_id=None, proposed=None, block=ONLINE_BLOCK):
    """Run ``object_name``'s rules over ``records`` (model instances) and act on the result.

    In "apply" mode the owner changes at once; in "propose" mode a pending proposal is
    recorded for a manager. ``proposed`` ({record id: owner id}) gives owners the caller
    already computed with a compiled proposer (an import), so the rules are not run twice.
    New owners are notified. Returns ``{record id: (status, owner id)}`` with status
    ``assigned``, ``proposed``, ``kept`` (the rules give the present owner) or ``unmatched``.
    """
    from crm_core.notifications.services import notify_assigned, send_soon

    records = list(records)
    if not records:
        return {}
    outcome, given = {}, defaultdict(list)
    proposer = None
    with database.atomic():
        settings = rule_set(object_name)
        if proposed is None:
            proposer = compile_rules(object_name, block=block)
        for record in records:
            if proposed is not None:
                found = (proposed.get(record.id), None) if proposed.get(record.id) else None
            else:
                found = proposer.propose_with_rule(_values_of(record))
            if found is None:
                outcome[record.id] = ("unmatched", None)
                continue
            owner_id, rule_id = found
            if owner_id == record.owner_id:
                outcome[record.id] = ("kept", owner_id)
                if proposed is not None and settings.mode == "apply":
                    given[owner_id].append(record.id)  # an import set the owner already
                continue
            if settings.mode == "propose":
                (AssignmentProposal.update({AssignmentProposal.status: "rejected",
                                            AssignmentProposal.decided_at: utcnow(),
                                            AssignmentProposal.decided_by_id: actor_id})
                 .where((AssignmentProposal.object == object_name) & (AssignmentProposal.record_id == record.id)
                        & (AssignmentProposal.status == "pending")).execute())
                AssignmentProposal.create(object=object_name, record_id=record.id, rule_id=rule_id,
                                          proposed_owner_id=owner_id, created_by_id=actor_id)
                outcome[record.id] = ("proposed", owner_id)
                continue
            _give(object_name, record, owner_id, actor_id)
            given[owner_id].append(record.id)
            outcome[record.id] = ("assigned", owner_id)
        if proposer is not None:
            proposer.finish()
        for owner_id, ids in given.items():
            if owner_id != actor_id:
                notify_assigned(owner_id, object_name, ids, actor_id=actor_id)
    send_soon()
    return outcome


def records_created(object_name, records, actor_id=None, proposed=None):
    """After records were created (a form, the API, web-to-lead, an import): run the rules
    when the rule set runs on creation, and notify the new owners. Call it after the
    records are stored, for the records whose creator named no owner.

    ``records``: model instances or ids. ``proposed``: {record id: owner id or None} from a
    compiled proposer (an import): in "apply" mode the importer stored those owners
    already, so they are only notified (nothing is read back); in "propose" mode the
    proposals are recorded."""
    from crm_core.notifications.services import notify_assigned, send_soon

    settings = rule_set(object_name)
    if not settings.run_on_create:
        return {}
    if proposed is not None and settings.mode == "apply":
        by_owner = defaultdict(list)
        for record_id, owner_id in proposed.items():
            if owner_id is not None and owner_id != actor_id:
                by_owner[owner_id].append(record_id)
        with database.atomic():
            for owner_id, ids in by_owner.items():
                notify_assigned(owner_id, object_name, ids, actor_id=actor_id)
        send_soon()
        return {record_id: ("kept", owner_id) if owner_id is not None else ("unmatched", None)
                for record_id, owner_id in proposed.items()}
    records = list(records)
    ids = [r for r in records if isinstance(r, int)]
    if ids:
        model = assignable(object_name).model
        records = [r for r in records if not isinstance(r, int)]
        for start in range(0, len(ids), CHUNK):
            records.extend(model.alive().where(model.id.in_(ids[start:start + CHUNK])).order_by(model.id))
    return apply_rules(object_name, records, actor_id=actor_id, proposed=proposed)


def run_on_demand(object_name, record_ids, actor_id):
    """Run the rules over a selection: every record must be one the actor may read (else
    the whole request is refused like a missing record: ``LookupError``) and give away
    (``PermissionError``); nothing is written unless all may be."""
    from crm_core.errors import UserError as _UserError

    spec = assignable(object_name)
    ids = sorted(set(record_ids))
    if not ids or len(ids) > CHUNK:
        raise _UserError(_l("Choose between 1 and %(max)s records.", max=CHUNK), field="ids")
    readable = list(engine().query(actor_id, object_name).where(spec.model.id.in_(ids)))
    if len(readable) != len(ids):
        raise LookupError(object_name)
    if any(not engine().can(actor_id, record, "transfer") for record in readable):
        raise PermissionError(object_name)
    return apply_rules(object_name, readable, actor_id=actor_id)


# -- proposals ----------------------------------------------------------------------------------------

def proposals_query(actor_id, object_name):
    """Pending proposals of records the actor may give away (TRANSFER), oldest first."""
    spec = assignable(object_name)
    decidable = engine().query(actor_id, object_name, spec.model.id, level=Level.TRANSFER)
    return (AssignmentProposal.select()
            .where((AssignmentProposal.object == object_name) & (AssignmentProposal.status == "pending")
                   & AssignmentProposal.record_id.in_(decidable))
            .order_by(AssignmentProposal.created_at, AssignmentProposal.id))


def decide(actor_id, object_name, proposal_ids, action="confirm", owner_id=None):
    """Confirm (to the proposed owner, or to ``owner_id`` instead) or reject proposals, all
    or none: a proposal the actor may not decide is refused like a missing one
    (``LookupError``). Returns the decided proposals."""
    if action not in ("confirm", "reject"):
        raise UserError(_l("Choose one of: %(choices)s.", choices="confirm, reject"), field="action")
    if owner_id is not None:
        problems = Problems()
        _live_user(owner_id, problems, "owner_id")
        problems.check()
    ids = sorted(set(proposal_ids))
    if not ids or len(ids) > CHUNK:
        raise UserError(_l("Choose between 1 and %(max)s records.", max=CHUNK), field="ids")
    from crm_core.notifications.services import notify_assigned, send_soon

    spec = assignable(object_name)
    given = defaultdict(list)
    with database.atomic():
        found = list(proposals_query(actor_id, object_name).where(AssignmentProposal.id.in_(ids)))
        if len(found) != len(ids):
            raise LookupError("proposal")
        records = {r.id: r for r in spec.model.alive().where(spec.model.id.in_([p.record_id for p in found]))}
        now = utcnow()
        for proposal in found:
            record = records.get(proposal.record_id)
            new_owner = owner_id or proposal.proposed_owner_id
            if action == "confirm" and record is not None:
                if _give(object_name, record, new_owner, actor_id):
                    given[new_owner].append(record.id)
            done = (AssignmentProposal.update({
                AssignmentProposal.status: "confirmed" if action == "confirm" else "rejected",
                AssignmentProposal.decided_at: now, AssignmentProposal.decided_by_id: actor_id,
                AssignmentProposal.owner_id: new_owner if action == "confirm" else None})
                .where((AssignmentProposal.id == proposal.id) & (AssignmentProposal.status == "pending"))
                .execute())
            if done != 1:  # someone decided it at the same moment
                raise VersionConflict(AssignmentProposal, proposal.id, "pending")
        for owner, record_ids in given.items():
            if owner != actor_id:
                notify_assigned(owner, object_name, record_ids, actor_id=actor_id)
    send_soon()
    return found


# -- progress -------------------------------------------------------------------------------------------

PROGRESS_STATUSES = ("new", "contacted", "qualified", "converted")


def progress(actor_id, untouched_days=7):
    """Per rep below the actor: leads held, by status, and the new ones nobody touched for
    ``untouched_days`` days; counted among the leads the actor may read."""
    import datetime as dt

    from crm_core.leads.models import Lead

    if isinstance(untouched_days, bool) or not isinstance(untouched_days, int) or not 1 <= untouched_days <= 3650:
        raise UserError(_l("Choose between 1 and %(max)s days.", max=3650), field="days")
    reps = sorted(engine().organisation().subordinates(actor_id))
    if not reps:
        return []
    names = dict(User.select(User.id, User.name).where(User.id.in_(reps)).tuples())
    rows = {rep: {"user_id": rep, "name": names.get(rep, ""), "assigned": 0, "untouched": 0,
                  **{status: 0 for status in PROGRESS_STATUSES}} for rep in reps}
    visible = engine().query(actor_id, "lead", Lead.owner_id, Lead.status, peewee.fn.COUNT(Lead.id))
    for owner, status, count in visible.where(Lead.owner_id.in_(reps)).group_by(Lead.owner_id, Lead.status).tuples():
        rows[owner]["assigned"] += count
        if status in PROGRESS_STATUSES:
            rows[owner][status] += count
    since = utcnow() - dt.timedelta(days=untouched_days)
    stale = (engine().query(actor_id, "lead", Lead.owner_id, peewee.fn.COUNT(Lead.id))
             .where(Lead.owner_id.in_(reps) & (Lead.status == "new") & (Lead.updated_at < since))
             .group_by(Lead.owner_id).tuples())
    for owner, count in stale:
        rows[owner]["untouched"] = count
    return sorted(rows.values(), key=lambda row: row["name"].lower())


__all__ = ["compile_rules", "records_created", "apply_rules", "run_on_demand", "decide",
           "proposals_query", "progress", "rule_set", "set_rule_set", "PROPOSAL_STATUSES"]
