"""Opportunities in the importer: the lookup columns (account, contact, owner, campaign,
pipeline, stage within the row's pipeline, lost reason), the opportunity's rules and
stage gates on every row, and the first stage history row of each new opportunity.

New rows go in through the importer's bulk path, so each row's check does here what
``services.create_opportunity`` does (the same checks, the stage's defaults, the gates
of entering the first stage) and the history rows are written per batch with the same
executemany/COPY. Rows that update an opportunity (a known ``external_id``) go through
``services.update_opportunity``: gates, history and hooks as for any change.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from crm_core.db import utcnow

# The relations the importer itself resolves and checks (see ``import_objects``).
LOOKED_UP = ("owner_id", "account_id", "contact_id", "campaign_id", "lost_reason_id")


def _default_pipeline_id():
    from crm_core.opportunities.services import default_pipeline

    pipeline = default_pipeline()
    return pipeline.id if pipeline else None


def prepare(values):
    """A new row's plain defaults (the stage's come with the check, once it is known)."""
    if values.get("currency") is None:
        values["currency"] = current_app.config.get("CRM_CURRENCY", "USD")
    values["stage_changed_at"] = utcnow()


def _stage_of(context, values):
    """(pipeline, stage, problems) of the row, looked up once per run for each pair."""
    from crm_core.opportunities.services import _resolve_stage
    from crm_core.org.services import Problems

    def resolve():
        problems = Problems()
        pipeline, stage = _resolve_stage({"pipeline_id": values.get("pipeline_id"),
                                          "stage_id": values.get("stage_id")}, problems)
        return pipeline, stage, dict(problems.fields)

    return context.memo(("opportunity_stage", values.get("pipeline_id"), values.get("stage_id")), resolve)


def rules(values, context):
    """The opportunity's rules on a new row, then the gates of its stage: every unmet
    requirement in one message. Completes the row with what its stage sets (probability
    unless given, status, closed date) since the gates read the values as stored."""
    from crm_core.opportunities import transitions
    from crm_core.opportunities.services import _check_opportunity
    from crm_core.org.services import Problems

    from crm_core.accounts.models import Contact

    if values.get("pipeline_id") is None:
        values["pipeline_id"] = context.memo("default_pipeline", _default_pipeline_id)
    problems = Problems()
    # The importer found the related records among those the user may read (or the active
    # users): the service's rules need not look them up again, row after row.
    _check_opportunity({k: v for k, v in values.items() if k not in LOOKED_UP}, problems, context.actor)
    contact_id, account_id = values.get("contact_id"), values.get("account_id")
    if contact_id is not None and account_id is not None:
        of_contact = context.value_of(Contact, contact_id, "account_id")
        if of_contact is not None and of_contact != account_id:
            problems.add("contact_id", _l("Choose a contact of the opportunity's account."))
    pipeline, stage, stage_problems = _stage_of(context, values)
    found = {**problems.fields, **stage_problems}
    if found:
        field, message = next(iter(found.items()))
        return [(field, "rejected", {"message": str(message)})]
    values["pipeline_id"], values["stage_id"] = pipeline.id, stage.id
    if values.get("probability") is None:
        values["probability"] = stage.probability
    values.update(transitions.closing_values(stage, values))
    unmet = transitions.requirements(context.actor, None, None, stage, values)
    if unmet:
        refused = transitions.StageRequirements(stage, unmet)
        message = " ".join([str(refused.message)] + [str(m) for _, m in unmet])
        return [(unmet[0][0], "rejected", {"message": message})]
    return []


def wire(importer):
    """The first stage history row of each inserted opportunity, written per batch; the
    transition hooks as ``create_opportunity`` calls them (inside the import's transaction,
    then once the rows are stored), only when a plugin listens."""
    from crm_core.opportunities.models import Opportunity, StageChange

    hook = current_app.extensions["crm"].hook
    fields = StageChange._meta.fields
    names = ("opportunity", "from_stage", "to_stage", "changed_at", "changed_by_id", "currency", "amount",
             "probability")
    columns = [fields[name].column_name for name in names]
    created = []

    def history(rows):
        # Column by column, like the insert of the opportunities themselves.
        count, changed_at, amount = len(rows), fields["changed_at"].db_value, fields["amount"].db_value
        tuples = list(zip(rows.ids, [None] * count, rows.column("stage_id"),
                          [changed_at(value) for value in rows.column("stage_changed_at")],
                          [importer.actor] * count, rows.column("currency"),
                          [amount(value) for value in rows.column("amount")], rows.column("probability")))
        importer._write(tuples, StageChange._meta.table_name, columns)
        if hook.crm_stage_transition.get_hookimpls() or hook.crm_stage_changed.get_hookimpls():
            ids = list(rows.ids)
            created.extend(ids)
            if hook.crm_stage_transition.get_hookimpls():
                for opportunity in _opportunities(Opportunity, ids):
                    hook.crm_stage_transition(app=current_app._get_current_object(), actor_id=importer.actor,
                                              opportunity=opportunity, from_stage=None,
                                              to_stage=opportunity.stage)

    def announce():
        from crm_core.opportunities import transitions

        for opportunity in _opportunities(Opportunity, created):
            transitions.announce(importer.actor, opportunity, None, opportunity.stage)

    importer.after_insert.append(history)
    if hook.crm_stage_changed.get_hookimpls():
        importer.after_run.append(announce)


def _opportunities(model, ids):
    from crm_core.opportunities.models import Stage

    for start in range(0, len(ids), 500):
        yield from (model.select(model, Stage).join(Stage).where(model.id.in_(ids[start:start + 500]))
                    .order_by(model.id))


def import_objects():
    from crm_core.imports.registry import ImportObject, Relation
    from crm_core.opportunities import services
    from crm_core.opportunities.models import OPPORTUNITY_SOURCES, LostReason, Opportunity, Pipeline, Stage

    return [ImportObject(
        "opportunity", Opportunity, services.update_opportunity,
        choices={"source": OPPORTUNITY_SOURCES}, required=("name", "account_id"),
        relations=(Relation("owner", "owner_id", "user", ("email", "name")),
                   Relation("account", "account_id", "account"),
                   Relation("contact", "contact_id", "contact", ("external_id", "email")),
                   Relation("campaign", "campaign_id", "campaign", ("name",)),
                   Relation("pipeline", "pipeline_id", "pipeline", ("key", "name"), model=Pipeline),
                   Relation("stage", "stage_id", "stage", ("key", "name"), model=Stage, scope="pipeline_id",
                            scope_default=_default_pipeline_id),
                   Relation("lost_reason", "lost_reason_id", "lost_reason", ("name",), model=LostReason)),
        skip=("status", "stage_changed_at"),
        row_checks=(rules,), prepare=prepare, wire=wire)]
