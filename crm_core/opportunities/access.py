"""Team selling through the access engine: a member of an opportunity's team reads it
(or edits it, with ``access`` = ``edit``) whoever owns it. The query form and the
per-record form select exactly the same records, as the access hooks require."""

from __future__ import annotations

from crm_core.permissions import Level, QueryGrant, Reason, in_subquery

LEVELS = {"read": Level.READ, "edit": Level.EDIT}


def team_grants(actor, object):
    if object != "opportunity":
        return []
    from crm_core.opportunities.models import Opportunity, OpportunityMember

    grants = []
    for access, level in LEVELS.items():
        members = (OpportunityMember.select(OpportunityMember.opportunity)
                   .where((OpportunityMember.user_id == actor.user_id)
                          & OpportunityMember.access.in_([a for a, lv in LEVELS.items() if lv >= level])))
        grants.append(QueryGrant(level, in_subquery(Opportunity.id, members), "team"))
    return grants


def team_record_grants(actor, object, record):
    if object != "opportunity" or getattr(record, "id", None) is None:
        return []
    from crm_core.opportunities.models import OpportunityMember

    member = (OpportunityMember.select().where((OpportunityMember.opportunity == record.id)
                                               & (OpportunityMember.user_id == actor.user_id)).first())
    if member is None:
        return []
    return [Reason(LEVELS.get(member.access, Level.READ), "team", member.role)]
