"""Change approval of opportunities: the company's thresholds, which part of a change they
hold for the owner's manager, and how an approval applies it.

``update_opportunity`` asks ``split`` which of its changes cross a threshold: the others
are written at once, the held ones become a pending request (``hold``) and the
opportunity keeps its approved values until the request is approved; lists, the funnel
and the forecast read the row, so they count the approved values. The last approval
applies the held values through ``update_opportunity`` itself, so the stage gates of the
moment apply.

Who needs no approval: an administrator; the owner's manager (or anyone above them)
acting themselves (with two levels, only the levels above the actor remain); an owner
nobody is above. A change of amount, stage, close date or probability that a pending
request also proposes supersedes that request.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from crm_core.approvals import services
from crm_core.approvals.registry import ApprovalKind

KIND = "opportunity_change"

DEFAULT_SETTINGS = {
    "amount_percent": 20,       # a change of the amount by more than this percentage
    "amount_absolute": None,    # ... or by more than this much (in the deal's currency)
    "stage_won": True,          # moving into a won stage
    "stage_lost": True,         # moving into a lost stage
    "stage_backward": False,    # moving back to an earlier stage
    "stage_skip": False,        # jumping over open stages
    "close_date_days": 30,      # moving the expected close date by more than this many days
    "probability_points": 20,   # changing the probability by more than this many points
}

SETTING_LABELS = {
    "amount_percent": _l("Hold an amount change of more than this percentage"),
    "amount_absolute": _l("Hold an amount change of more than this much (in the deal's currency)"),
    "stage_won": _l("Hold a move into a won stage"),
    "stage_lost": _l("Hold a move into a lost stage"),
    "stage_backward": _l("Hold a move back to an earlier stage"),
    "stage_skip": _l("Hold a move that skips open stages"),
    "close_date_days": _l("Hold a move of the expected close date by more than this many days"),
    "probability_points": _l("Hold a probability change of more than this many points"),
}

# What travels together: a held stage move takes what the move sets with it.
AMOUNT = ("amount", "currency")
STAGE = ("pipeline_id", "stage_id", "status", "closed_date", "lost_reason_id", "lost_note",
         "stage_changed_at", "probability")

FIELD_LABELS = {"amount": _l("Amount"), "currency": _l("Currency"), "pipeline_id": _l("Pipeline"),
                "stage_id": _l("Stage"), "probability": _l("Probability"),
                "expected_close_date": _l("Expected close date"), "closed_date": _l("Closed date"),
                "lost_reason_id": _l("Lost reason"), "lost_note": _l("Lost note")}


def field_label(name):
    return FIELD_LABELS.get(name, name)


def show(name, value, record=None):
    """A proposed or current value as people read it: names instead of ids, amounts in the
    deal's currency, dates and percentages in the reader's language."""
    import datetime

    from crm_core.formatting import day, money, number
    from crm_core.opportunities.models import LostReason, Pipeline, Stage

    if value is None:
        return None
    model = {"stage_id": Stage, "pipeline_id": Pipeline, "lost_reason_id": LostReason}.get(name)
    if model is not None:
        found = model.get_or_none(model.id == value)
        return found.name if found is not None else value
    if name == "amount":
        return money(value, getattr(record, "currency", None))
    if name in ("expected_close_date", "closed_date"):
        return day(datetime.date.fromisoformat(str(value)))
    if name == "probability":
        return f"{number(value)} %"
    return value


def check_settings(settings, problems):
    for name in ("stage_won", "stage_lost", "stage_backward", "stage_skip"):
        if not isinstance(settings.get(name), bool):
            problems.add(name, _l("Choose yes or no."))
    for name, top in (("amount_percent", 10000), ("close_date_days", 3650), ("probability_points", 100)):
        value = settings.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top):
            problems.add(name, _l("Enter a whole number from 0 to %(max)s, or nothing.", max=top))
    value = settings.get("amount_absolute")
    if value is not None:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            problems.add("amount_absolute", _l("Enter an amount that is not negative."))
        else:
            settings["amount_absolute"] = format(amount.normalize(), "f")


# -- what crosses a threshold -------------------------------------------------------------------

def _open_between(from_stage, to_stage):
    from crm_core.opportunities.models import Stage

    low, high = sorted((from_stage.position, to_stage.position))
    return Stage.alive().where((Stage.pipeline == to_stage.pipeline_id) & (Stage.active == True)  # noqa: E712
                               & (Stage.kind == "open") & (Stage.position > low)
                               & (Stage.position < high)).exists()


def stage_reasons(settings, from_stage, to_stage):
    if to_stage.id == from_stage.id:
        return []
    reasons = []
    if to_stage.kind == "won" and settings["stage_won"]:
        reasons.append({"code": "stage_won"})
    if to_stage.kind == "lost" and settings["stage_lost"]:
        reasons.append({"code": "stage_lost"})
    same_pipeline = to_stage.pipeline_id == from_stage.pipeline_id
    if same_pipeline and settings["stage_backward"] and to_stage.position < from_stage.position:
        reasons.append({"code": "stage_backward"})
    if (same_pipeline and settings["stage_skip"] and to_stage.position > from_stage.position
            and _open_between(from_stage, to_stage)):
        reasons.append({"code": "stage_skip"})
    return reasons


def amount_reasons(settings, old, new):
    if new == old:
        return []
    old, new = Decimal(old or 0), Decimal(new or 0)
    reasons = []
    percent = settings.get("amount_percent")
    if percent is not None and old > 0 and abs(new - old) * 100 > old * percent:
        reasons.append({"code": "amount_percent", "limit": percent})
    absolute = settings.get("amount_absolute")
    if absolute is not None and abs(new - old) > Decimal(str(absolute)):
        reasons.append({"code": "amount_absolute", "limit": str(absolute)})
    return reasons


def close_date_reasons(settings, old, new):
    days = settings.get("close_date_days")
    if days is None or old is None or new == old:
        return []
    if new is None:
        return [{"code": "close_date_cleared"}]
    if abs((new - old).days) > days:
        return [{"code": "close_date", "limit": days}]
    return []


def probability_reasons(settings, old, new):
    points = settings.get("probability_points")
    if points is None or new is None or old is None or abs(int(new) - int(old)) <= points:
        return []
    return [{"code": "probability", "limit": points}]


def split(opportunity, asked, changes, from_stage, to_stage, actor_id):
    """(changes to write now, the held proposal or None, its base values, reasons, approvers).

    ``asked`` is what the caller asked for, ``changes`` the same with what a stage move
    sets; the proposal keeps what was asked (the move's consequences are worked out again
    when it is approved)."""
    settings = services.settings_of(KIND)
    if not settings["active"]:
        return changes, None, {}, [], []
    held, reasons = set(), []
    found = amount_reasons(settings, opportunity.amount, changes["amount"]) if "amount" in changes else []
    if found:
        held.update(AMOUNT)
        reasons += found
    found = stage_reasons(settings, from_stage, to_stage)
    if found:
        held.update(STAGE)
        reasons += found
    if "expected_close_date" in changes:
        found = close_date_reasons(settings, opportunity.expected_close_date, changes["expected_close_date"])
        if found:
            held.add("expected_close_date")
            reasons += found
    if "probability" in asked and "probability" not in held:
        found = probability_reasons(settings, opportunity.probability, asked["probability"])
        if found:
            held.add("probability")
            reasons += found
    if not held:
        return changes, None, {}, [], []
    approvers = services.approver_chain(opportunity.owner_id, settings["levels"], actor_id)
    if not services.needs_approval(actor_id, approvers):
        return changes, None, {}, [], []
    proposal = {name: value for name, value in asked.items() if name in held}
    if "stage_id" in proposal or "pipeline_id" in proposal:
        proposal["stage_id"] = changes["stage_id"]
        proposal["pipeline_id"] = changes["pipeline_id"]
    now = {name: value for name, value in changes.items() if name not in held}
    return now, proposal, current(opportunity, proposal), reasons, approvers


def hold(opportunity, proposal, base, reasons, approvers, actor_id, applied):
    """Inside ``update_opportunity``'s transaction: what was written now supersedes the
    pending requests proposing the same fields; a held proposal becomes a new request."""
    from crm_core.opportunities.models import Opportunity

    names = {field.name: field.column_name for field in Opportunity._meta.fields.values()}
    services.supersede("opportunity", opportunity.id, [names.get(n, n) for n in applied], actor_id)
    if proposal:
        services.request_approval(KIND, opportunity, proposal, base, actor_id, approvers, reasons)


def current(record, fields):
    from crm_core.opportunities.services import opportunity_values

    values = opportunity_values(record)
    return {name: values.get(name) for name in fields}


def apply(record, proposal, actor_id):
    """The last approval: the held values through ``update_opportunity`` (stage gates run
    as for any move; a failing one refuses the approval with its requirements)."""
    from crm_core.opportunities.services import update_opportunity

    update_opportunity(record, typed(proposal), actor_id=actor_id, hold_changes=False)


def typed(proposal):
    """The stored proposal (JSON: amounts and dates as text) as the service takes it."""
    import datetime

    values = dict(proposal)
    if values.get("amount") is not None:
        values["amount"] = Decimal(values["amount"])
    for name in ("expected_close_date", "closed_date"):
        if values.get(name) is not None:
            values[name] = datetime.date.fromisoformat(values[name])
    return values


def reason_text(reason):
    code, limit = reason.get("code"), reason.get("limit")
    if code == "amount_percent":
        return _l("The amount changes by more than %(limit)s percent.", limit=limit)
    if code == "amount_absolute":
        return _l("The amount changes by more than %(limit)s.", limit=limit)
    if code == "stage_won":
        return _l("The deal would be won.")
    if code == "stage_lost":
        return _l("The deal would be lost.")
    if code == "stage_backward":
        return _l("The opportunity would move back to an earlier stage.")
    if code == "stage_skip":
        return _l("The opportunity would skip stages.")
    if code == "close_date":
        return lazy_ngettext("The expected close date moves by more than %(num)s day.",
                             "The expected close date moves by more than %(num)s days.", int(limit))
    if code == "close_date_cleared":
        return _l("The expected close date would be removed.")
    if code == "probability":
        return lazy_ngettext("The probability changes by more than %(num)s point.",
                             "The probability changes by more than %(num)s points.", int(limit))
    return code


def kind():
    return ApprovalKind(KIND, "opportunity", _l("Opportunity change"), apply=apply, current=current,
                        default_settings=dict(DEFAULT_SETTINGS), check_settings=check_settings,
                        show=show, field_label=field_label, describe_reason=reason_text)


def requested():
    """After the commit of a held change: its notification's email can go."""
    services.send_soon()
