"""Moving an opportunity between stages: what every move requires (the built-in rules and
every ``crm_stage_transition_check``), what it writes (the stage history row, the closed
date, the status), and the hooks around it.

Every path that changes a stage (form, board, API, import, bulk edit, conversion) comes
through ``requirements`` before writing and ``record_move`` inside its transaction, so a
stage gate cannot be side-stepped.
"""

from __future__ import annotations

import datetime
import logging
import zoneinfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from crm_core.errors import UserError

log = logging.getLogger(__name__)


def company_today(app=None):
    """Today in the company's time zone: a deal closed at 23:30 in Hanoi closed that day."""
    app = app or current_app
    zone = zoneinfo.ZoneInfo(app.config.get("CRM_TIMEZONE") or "UTC")
    return datetime.datetime.now(zone).date()


class StageRequirements(UserError):
    """A stage move refused: every unmet requirement, by field (several for one field are
    kept, in order); the API answers 422 with them under ``fields``."""

    def __init__(self, to_stage, unmet):
        by_field = {}
        for field, message in unmet:
            by_field.setdefault(field, []).append(message)
        self.to_stage = to_stage
        self.unmet = list(unmet)
        fields = {field: messages[0] if len(messages) == 1 else _Joined(messages)
                  for field, messages in by_field.items()}
        first = lazy_ngettext("“%(stage)s” cannot be reached yet: %(num)s requirement is not met.",
                              "“%(stage)s” cannot be reached yet: %(num)s requirements are not met.",
                              len(unmet), stage=to_stage.name)
        super().__init__(first, field="stage_id", code="stage_requirements", fields=fields)

    show_message = True  # the API answers with "cannot be reached yet", not a generic line


class _Joined:
    """Several translatable messages shown as one (rendered in the reader's language)."""

    def __init__(self, messages):
        self.messages = messages

    def __str__(self):
        return " ".join(str(message) for message in self.messages)

    def __html__(self):
        from markupsafe import escape

        return str(escape(str(self)))


def builtin_requirements(opportunity, from_stage, to_stage, values):
    """What the core itself asks of any move: a stage of the opportunity's pipeline that is
    in use, and a reason from the company's list when the deal is lost."""
    unmet = []
    if values.get("pipeline_id") is not None and to_stage.pipeline_id != values["pipeline_id"]:
        unmet.append(("stage_id", _l("Choose a stage of the opportunity's pipeline.")))
    if not to_stage.active and (from_stage is None or from_stage.id != to_stage.id):
        unmet.append(("stage_id", _l("This stage is no longer in use.")))
    if to_stage.kind == "lost" and values.get("lost_reason_id") is None:
        unmet.append(("lost_reason_id", _l("Choose why the deal was lost.")))
    return unmet


def requirements(actor_id, opportunity, from_stage, to_stage, values):
    """Every unmet requirement of the move, as (field, message) pairs: the core's and every
    plugin's (the company's configured stage gates included)."""
    unmet = builtin_requirements(opportunity, from_stage, to_stage, values)
    hook = current_app.extensions["crm"].hook
    for result in hook.crm_stage_transition_check(
            app=current_app._get_current_object(), actor_id=actor_id, opportunity=opportunity,
            from_stage=from_stage, to_stage=to_stage, values=dict(values)):
        for item in result or ():
            field, message = item
            unmet.append((str(field), message))
    return unmet


def check(actor_id, opportunity, from_stage, to_stage, values):
    unmet = requirements(actor_id, opportunity, from_stage, to_stage, values)
    if unmet:
        raise StageRequirements(to_stage, unmet)


def record_move(actor_id, opportunity, from_stage, to_stage, now):
    """Inside the move's transaction: the history row, then ``crm_stage_transition``."""
    from crm_core.opportunities.models import StageChange

    StageChange.create(opportunity=opportunity.id, from_stage=from_stage.id if from_stage else None,
                       to_stage=to_stage.id, changed_at=now, changed_by_id=actor_id,
                       currency=opportunity.currency, amount=opportunity.amount,
                       probability=opportunity.probability)
    current_app.extensions["crm"].hook.crm_stage_transition(
        app=current_app._get_current_object(), actor_id=actor_id, opportunity=opportunity,
        from_stage=from_stage, to_stage=to_stage)


def announce(actor_id, opportunity, from_stage, to_stage):
    """After the commit: ``crm_stage_changed``. A listener's failure is logged, not raised:
    the move is already final."""
    try:
        current_app.extensions["crm"].hook.crm_stage_changed(
            app=current_app._get_current_object(), actor_id=actor_id, opportunity=opportunity,
            from_stage=from_stage, to_stage=to_stage)
    except Exception:  # noqa: BLE001 - a notification must not undo a committed move
        log.exception("crm_stage_changed failed for opportunity %s", opportunity.id)


def closing_values(to_stage, values, current_closed_date=None):
    """What reaching ``to_stage`` sets: its kind as the status; a closed date when the deal
    closes (the one given, else today), none when it reopens; no lost reason unless lost."""
    out = {"status": to_stage.kind}
    if to_stage.kind == "open":
        out["closed_date"] = None
    else:
        out["closed_date"] = values.get("closed_date") or current_closed_date or company_today()
    if to_stage.kind != "lost":
        out["lost_reason_id"] = None
    return out
