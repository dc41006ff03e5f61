"""The rules of opportunities: what one holds, the references it makes (to records the
person may see), its stage and what a stage move requires and writes, team selling, and
the company's lists of pipelines, stages and lost reasons.

Every write of an opportunity goes through ``create_opportunity``/``update_opportunity``
so that stage gates, the stage history and the hooks apply on every path.
"""

from __future__ import annotations

import peewee
from flask import current_app
from flask_babel import lazy_gettext as _l

from crm_core.customfields.values import check as custom_check
from crm_core.db import database, utcnow
from crm_core.errors import UserError
from crm_core.opportunities import transitions
from crm_core.opportunities.models import (MEMBER_ACCESS, MEMBER_ROLES, OPPORTUNITY_SOURCES, STAGE_KINDS,
                                           LostReason, Opportunity, OpportunityMember, Pipeline, Stage)
from crm_core.opportunities.pipelines import source_of, sync_registered
from crm_core.org.services import Problems
from crm_core.record_checks import choice, columns, delete_to_bin, owner, readable, save_changes, text
from crm_core.records import create_record
from crm_core.users.models import User

OPPORTUNITY_TEXT = ("name", "competitors", "next_step", "lost_note", "description")


# -- pipelines and stages -------------------------------------------------------------------------

def pipelines(include_inactive=False):
    """The company's pipelines in their order (contributed ones written first if missing)."""
    sync_registered()
    query = Pipeline.alive()
    if not include_inactive:
        query = query.where(Pipeline.active == True)  # noqa: E712
    return list(query.order_by(Pipeline.position, Pipeline.id))


def default_pipeline():
    sync_registered()
    alive = Pipeline.alive().where(Pipeline.active == True)  # noqa: E712
    return (alive.where(Pipeline.is_default == True).first()  # noqa: E712
            or alive.order_by(Pipeline.position, Pipeline.id).first())


def stages(pipeline, include_inactive=False):
    query = Stage.alive().where(Stage.pipeline == getattr(pipeline, "id", pipeline))
    if not include_inactive:
        query = query.where(Stage.active == True)  # noqa: E712
    return list(query.order_by(Stage.position, Stage.id))


def first_open_stage(pipeline):
    return next((s for s in stages(pipeline) if s.kind == "open"), None)


def _check_pipeline(values, problems):
    text(values, "name", problems, required=True)
    text(values, "description", problems)
    if "key" in values:
        text(values, "key", problems, required=True)


def create_pipeline(values, actor_id=None):
    """A company pipeline; ``stages`` (a list of {name, probability, kind}) may come with it."""
    values = dict(values)
    stage_values = values.pop("stages", None) or []
    problems = Problems()
    _check_pipeline(values, problems)
    values.setdefault("key", None)
    problems.check()
    with database.atomic():
        key = values.pop("key") or _free_key(values["name"])
        if Pipeline.select().where(Pipeline.key == key).exists():
            raise UserError(_l("A pipeline with this key exists already."), field="key", code="duplicate")
        if values.get("is_default"):
            Pipeline.update(is_default=False).where(Pipeline.is_default == True).execute()  # noqa: E712
        pipeline = create_record(Pipeline, actor_id=actor_id, key=key, source="company", **values)
        for position, stage in enumerate(stage_values):
            create_stage(pipeline, {**stage, "position": position}, actor_id=actor_id)
    return pipeline


def _free_key(name):
    import re
    import uuid

    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60] or "pipeline"
    key = base
    while Pipeline.select().where(Pipeline.key == key).exists():
        key = f"{base}_{uuid.uuid4().hex[:6]}"
    return key


def update_pipeline(pipeline, changes, actor_id=None, expected_version=None):
    changes = dict(changes)
    problems = Problems()
    _check_pipeline(changes, problems)
    if "key" in changes and changes["key"] != pipeline.key:
        problems.add("key", _l("A pipeline's key cannot change: scripts and plugins rely on it."))
    problems.check()
    changes.pop("key", None)
    with database.atomic():
        if changes.get("is_default"):
            Pipeline.update(is_default=False).where(
                (Pipeline.is_default == True) & (Pipeline.id != pipeline.id)).execute()  # noqa: E712
        if changes.get("active") is False and (changes.get("is_default") or pipeline.is_default):
            raise UserError(_l("The default pipeline cannot be switched off: make another one the "
                               "default first."), field="active")
        return save_changes(pipeline, "pipeline", changes, actor_id, expected_version)


def delete_pipeline(pipeline, actor_id=None, expected_version=None):
    """Into the recycle bin with its stages; refused while opportunities use it, for the
    default one, and for one a plugin contributes (it would come back)."""
    if source_of(pipeline.key) is not None:
        raise UserError(_l("This pipeline comes with %(source)s: switch it off instead.",
                           source=source_of(pipeline.key)), field="id", code="has_children")
    if pipeline.is_default:
        raise UserError(_l("The default pipeline cannot be deleted: make another one the default first."),
                        field="id", code="has_children")
    if Opportunity.alive().where(Opportunity.pipeline == pipeline.id).exists():
        raise UserError(_l("Opportunities use this pipeline: move them to another one or switch "
                           "the pipeline off."), field="id", code="has_children")
    return delete_to_bin(pipeline, actor_id, expected_version, children=stages(pipeline, True))


def _check_stage(values, problems):
    text(values, "name", problems, required="name" in values)
    if "kind" in values and values["kind"] is None:
        problems.add("kind", _l("This field is required."))
    choice(values, "kind", STAGE_KINDS, problems)
    if values.get("probability") is not None and not 0 <= int(values["probability"]) <= 100:
        problems.add("probability", _l("Enter a percentage from 0 to 100."))


def create_stage(pipeline, values, actor_id=None):
    values = {"kind": "open", "probability": 0, **values}
    problems = Problems()
    _check_stage(values, problems)
    if not values.get("name"):
        problems.add("name", _l("This field is required."))
    problems.check()
    pipeline_id = getattr(pipeline, "id", pipeline)
    with database.atomic():
        if values.get("position") is None:
            values["position"] = (Stage.select(Stage.position).where(Stage.pipeline == pipeline_id)
                                  .order_by(Stage.position.desc()).scalar() or 0) + 1
        key = values.pop("key", None) or _free_stage_key(pipeline_id, values["name"])
        return create_record(Stage, actor_id=actor_id, pipeline=pipeline_id, key=key, **values)


def _free_stage_key(pipeline_id, name):
    import re
    import uuid

    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60] or "stage"
    key = base
    while Stage.select().where((Stage.pipeline == pipeline_id) & (Stage.key == key)).exists():
        key = f"{base}_{uuid.uuid4().hex[:6]}"
    return key


def update_stage(stage, changes, actor_id=None, expected_version=None):
    """Rename, re-weigh, reorder or switch off a stage. Its kind is fixed once
    opportunities are in it (their status and the funnel's history rely on it)."""
    changes = dict(changes)
    changes.pop("key", None)
    problems = Problems()
    _check_stage(changes, problems)
    if "kind" in changes and changes["kind"] != stage.kind and Opportunity.alive().where(
            Opportunity.stage == stage.id).exists():
        problems.add("kind", _l("Opportunities are in this stage: its kind cannot change."))
    problems.check()
    return save_changes(stage, "stage", changes, actor_id, expected_version)


def delete_stage(stage, actor_id=None, expected_version=None):
    from crm_core.opportunities.models import StageChange

    if Opportunity.alive().where(Opportunity.stage == stage.id).exists():
        raise UserError(_l("Opportunities are in this stage: move them first, or switch the stage off."),
                        field="id", code="has_children")
    if StageChange.select().where((StageChange.to_stage == stage.id)
                                  | (StageChange.from_stage == stage.id)).exists():
        raise UserError(_l("Opportunities have passed through this stage: switch it off instead, "
                           "so their history stays whole."), field="id", code="has_children")
    return delete_to_bin(stage, actor_id, expected_version)


def reorder_stages(pipeline, stage_ids, actor_id=None):
    """Put the pipeline's stages in the order of ``stage_ids`` (all of them, once each)."""
    current = {s.id: s for s in stages(pipeline, include_inactive=True)}
    if sorted(stage_ids) != sorted(current):
        raise UserError(_l("List every stage of the pipeline once."), field="stage_ids")
    with database.atomic():
        for position, stage_id in enumerate(stage_ids):
            if current[stage_id].position != position:
                save_changes(current[stage_id], "stage", {"position": position}, actor_id)


# -- lost reasons --------------------------------------------------------------------------------

def lost_reasons(include_inactive=False):
    query = LostReason.alive()
    if not include_inactive:
        query = query.where(LostReason.active == True)  # noqa: E712
    return list(query.order_by(LostReason.position, LostReason.name))


def _check_lost_reason(values, problems, reason=None):
    text(values, "name", problems, required="name" in values or reason is None)
    if values.get("name"):
        clash = LostReason.alive().where(LostReason.name == values["name"])
        if reason is not None:
            clash = clash.where(LostReason.id != reason.id)
        if clash.exists():
            problems.add("name", _l("This name is taken."), code="duplicate")


def create_lost_reason(values, actor_id=None):
    values = dict(values)
    problems = Problems()
    _check_lost_reason(values, problems)
    problems.check()
    return create_record(LostReason, actor_id=actor_id, **values)


def update_lost_reason(reason, changes, actor_id=None, expected_version=None):
    changes = dict(changes)
    problems = Problems()
    _check_lost_reason(changes, problems, reason)
    problems.check()
    return save_changes(reason, "lost_reason", changes, actor_id, expected_version)


def delete_lost_reason(reason, actor_id=None, expected_version=None):
    if Opportunity.select().where(Opportunity.lost_reason == reason.id).exists():
        raise UserError(_l("Lost deals give this reason: switch it off instead, so the lost-deal "
                           "analysis stays whole."), field="id", code="has_children")
    return delete_to_bin(reason, actor_id, expected_version)


# -- opportunities --------------------------------------------------------------------------------

def _lost_reason_by_name(values, problems):
    """``lost_reason`` (CONTRACT.md's name for scripts) names a reason of the company's list,
    in any case: it becomes ``lost_reason_id``."""
    if "lost_reason" not in values:
        return
    name = values.pop("lost_reason")
    name = name.strip() if isinstance(name, str) else name
    if not name:
        values["lost_reason_id"] = None
        return
    reason = LostReason.alive().where(peewee.fn.LOWER(LostReason.name) == str(name).lower()).first()
    if reason is None:
        problems.add("lost_reason", _l("Choose a reason from the company's list."))
    else:
        values["lost_reason_id"] = reason.id


def _check_opportunity(values, problems, actor_id, opportunity=None):
    _lost_reason_by_name(values, problems)
    for name in OPPORTUNITY_TEXT:
        text(values, name, problems, required=name == "name")
    choice(values, "source", OPPORTUNITY_SOURCES, problems)
    owner(values, problems)
    if "account_id" in values and values["account_id"] is None:
        problems.add("account_id", _l("This field is required."))
    account = readable("account", values.get("account_id"), actor_id, problems, "account_id",
                       _l("No such account."))
    contact = readable("contact", values.get("contact_id"), actor_id, problems, "contact_id",
                       _l("No such contact."))
    account_id = values.get("account_id", getattr(opportunity, "account_id", None))
    if contact is not None and account is not None or (contact is not None and account_id):
        if contact.account_id is not None and contact.account_id != account_id:
            problems.add("contact_id", _l("Choose a contact of the opportunity's account."))
    readable("campaign", values.get("campaign_id"), actor_id, problems, "campaign_id",
             _l("No such campaign."))
    readable("lead", values.get("lead_id"), actor_id, problems, "lead_id", _l("No such lead."))
    if values.get("probability") is not None and not 0 <= int(values["probability"]) <= 100:
        problems.add("probability", _l("Enter a percentage from 0 to 100."))
    if values.get("amount") is not None and values["amount"] < 0:
        problems.add("amount", _l("Enter an amount that is not negative."))
    if values.get("lost_reason_id") is not None and not LostReason.alive().where(
            LostReason.id == values["lost_reason_id"]).exists():
        problems.add("lost_reason_id", _l("Choose a reason from the company's list."))


def _resolve_stage(values, problems, opportunity=None):
    """(pipeline, stage) after the change: a pipeline given alone starts at its first open
    stage; a stage given alone must be of the opportunity's pipeline."""
    pipeline_id = values.get("pipeline_id", getattr(opportunity, "pipeline_id", None))
    pipeline = None
    if pipeline_id is None:
        pipeline = default_pipeline()
    else:
        pipeline = Pipeline.alive().where(Pipeline.id == pipeline_id).first()
        if pipeline is None or (not pipeline.active and (opportunity is None
                                                         or opportunity.pipeline_id != pipeline.id)):
            problems.add("pipeline_id", _l("No such pipeline."))
            return None, None
    if pipeline is None:
        problems.add("pipeline_id", _l("No pipeline is set up yet: ask an administrator."))
        return None, None
    stage_id = values.get("stage_id")
    if stage_id is None and opportunity is not None and "pipeline_id" not in values:
        stage_id = opportunity.stage_id
    if stage_id is None or (opportunity is not None and "pipeline_id" in values and "stage_id" not in values
                            and pipeline.id != opportunity.pipeline_id):
        stage = first_open_stage(pipeline)
        if stage is None:
            problems.add("stage_id", _l("This pipeline has no open stage."))
        return pipeline, stage
    stage = Stage.alive().where((Stage.id == stage_id)).first()
    if stage is None or stage.pipeline_id != pipeline.id:
        problems.add("stage_id", _l("Choose a stage of the opportunity's pipeline."))
        return pipeline, None
    return pipeline, stage


def opportunity_values(opportunity):
    """The opportunity's values under their API names (what gate checks read)."""
    data = {}
    for name, field in opportunity._meta.fields.items():
        key = field.column_name if hasattr(field, "rel_model") else name
        data[key] = opportunity.__data__.get(name)
    return data


def create_opportunity(values, actor_id=None, announce=True):
    """A new opportunity; its owner is the actor unless ``owner_id`` names another user.
    Without a pipeline it goes on the default one, without a stage into its first open
    stage; the probability comes from the stage unless given; the currency is the
    company's unless given. Entering the first stage passes its gates like any move.
    A caller creating it inside a larger transaction (a lead's conversion) passes
    ``announce=False`` and calls ``transitions.announce`` once that transaction is committed."""
    values = dict(values)
    values.setdefault("owner_id", actor_id)
    values.setdefault("currency", current_app.config.get("CRM_CURRENCY", "USD"))
    problems = Problems()
    _check_opportunity(values, problems, actor_id)
    custom_check("opportunity", values, problems)
    pipeline, stage = _resolve_stage(values, problems)
    problems.check()
    values["pipeline_id"], values["stage_id"] = pipeline.id, stage.id
    if values.get("probability") is None:
        values["probability"] = stage.probability
    values.update(transitions.closing_values(stage, values))
    transitions.check(actor_id, None, None, stage, values)
    now = utcnow()
    with database.atomic():
        opportunity = create_record(Opportunity, actor_id=actor_id, stage_changed_at=now,
                                    **columns(Opportunity, values))
        transitions.record_move(actor_id, opportunity, None, stage, now)
    if announce:
        transitions.announce(actor_id, opportunity, None, stage)
    return opportunity


def update_opportunity(opportunity, changes, actor_id=None, expected_version=None, hold_changes=True):
    """Apply ``changes`` on the version the caller saw. A stage change passes every gate
    (the built-in ones, the company's, the plugins') or nothing is written; it sets the
    status and the closed date, takes the new stage's probability unless one is given, and
    writes the stage history. Changes beyond the company's approval thresholds are held
    for the owner's manager (crm_core/approvals/opportunity.py; ``hold_changes=False``
    when an approval applies them). Returns what changed now."""
    changes = dict(changes)
    asked = dict(changes)  # change approval: what the caller asked, before a move's consequences
    problems = Problems()
    _check_opportunity(changes, problems, actor_id, opportunity)
    custom_check("opportunity", changes, problems, opportunity)
    moving = "stage_id" in changes or "pipeline_id" in changes
    from_stage = Stage.get_by_id(opportunity.stage_id)
    to_stage = from_stage
    if moving:
        _pipeline, to_stage = _resolve_stage(changes, problems, opportunity)
    problems.check()
    if moving and to_stage.id != from_stage.id:
        changes["pipeline_id"], changes["stage_id"] = to_stage.pipeline_id, to_stage.id
        if "probability" not in changes:
            changes["probability"] = to_stage.probability
        closing = transitions.closing_values(to_stage, changes, opportunity.closed_date)
        changes.setdefault("closed_date", closing.pop("closed_date"))  # a date given wins
        changes.update(closing)
        after = {**opportunity_values(opportunity), **changes}
        transitions.check(actor_id, opportunity, from_stage, to_stage, after)
    else:
        changes.pop("stage_id", None)
        changes.pop("pipeline_id", None)
        if to_stage.kind == "lost" and "lost_reason_id" in changes and changes["lost_reason_id"] is None:
            raise UserError(_l("Choose why the deal was lost."), field="lost_reason_id")
    # -- change approval (crm_core/approvals/opportunity.py): held changes wait for the manager
    proposal = None
    if hold_changes:
        from crm_core.approvals import opportunity as change_approval

        changes, proposal, base, reasons, approvers = change_approval.split(
            opportunity, asked, changes, from_stage, to_stage, actor_id)
        if proposal and "stage_id" in proposal:
            to_stage = from_stage
    # -- end of change approval
    stage_moved = to_stage.id != from_stage.id
    with database.atomic():
        now = utcnow()
        if stage_moved:
            changes["stage_changed_at"] = now
        changed = save_changes(opportunity, "opportunity", changes, actor_id, expected_version)
        if stage_moved:
            transitions.record_move(actor_id, opportunity, from_stage, to_stage, now)
        if hold_changes:  # change approval: supersede what this change restates, hold the rest
            change_approval.hold(opportunity, proposal, base, reasons, approvers, actor_id, changed)
    if proposal:
        change_approval.requested()
    if stage_moved:
        transitions.announce(actor_id, opportunity, from_stage, to_stage)
    return changed


def move(opportunity, stage_id, actor_id=None, expected_version=None, **values):
    """A stage move (the board's drop, the form's stage button): ``values`` may fill what
    the stage requires in the same step (a lost reason, a closed date...)."""
    return update_opportunity(opportunity, {**values, "stage_id": stage_id}, actor_id=actor_id,
                              expected_version=expected_version)


def delete_opportunity(opportunity, actor_id=None, expected_version=None):
    return delete_to_bin(opportunity, actor_id, expected_version)


# -- team selling --------------------------------------------------------------------------------

def members(opportunity):
    return list(OpportunityMember.select().where(OpportunityMember.opportunity == opportunity.id)
                .order_by(OpportunityMember.id))


def add_member(opportunity, values, actor_id=None):
    """Put a user on the opportunity's team; they see it (and edit it with ``access`` =
    ``edit``) through the access engine, whatever its owner's rules say."""
    values = {"role": "other", "access": "read", **values}
    problems = Problems()
    choice(values, "role", MEMBER_ROLES, problems)
    choice(values, "access", MEMBER_ACCESS, problems)
    user_id = values.get("user_id")
    if user_id is None or not User.alive().where((User.id == user_id) & (User.active == True)).exists():  # noqa: E712
        problems.add("user_id", _l("No such user."))
    elif user_id == opportunity.owner_id:
        problems.add("user_id", _l("The owner is on the team already."))
    problems.check()
    with database.atomic():
        if OpportunityMember.select().where((OpportunityMember.opportunity == opportunity.id)
                                            & (OpportunityMember.user_id == user_id)).exists():
            raise UserError(_l("This user is on the team already."), field="user_id", code="duplicate")
        member = OpportunityMember.create(opportunity=opportunity.id, user_id=user_id, role=values["role"],
                                          access=values["access"], created_by_id=actor_id)
        _log_team(opportunity, actor_id, "team_member_added", user_id, values["role"])
    return member


def update_member(member, changes, actor_id=None):
    changes = dict(changes)
    problems = Problems()
    choice(changes, "role", MEMBER_ROLES, problems)
    choice(changes, "access", MEMBER_ACCESS, problems)
    problems.check()
    with database.atomic():
        for name in ("role", "access"):
            if name in changes and changes[name] is not None:
                setattr(member, name, changes[name])
        member.save()
        _log_team(member.opportunity, actor_id, "team_member_changed", member.user_id, member.role)
    return member


def remove_member(member, actor_id=None):
    with database.atomic():
        opportunity = member.opportunity
        member.delete_instance()
        _log_team(opportunity, actor_id, "team_member_removed", member.user_id, member.role)


def _log_team(opportunity, actor_id, event, user_id, role):
    """The team's changes in the opportunity's history: ``team_member`` from/to "user:role"."""
    from crm_core.audit.services import record_changes

    entry = f"{user_id}:{role}"
    old, new = {"team_member_added": (None, entry), "team_member_removed": (entry, None)}.get(
        event, (None, entry))
    record_changes(Opportunity, getattr(opportunity, "id", opportunity), {"team_member": (old, new)}, actor_id)
