"""Mass transfer of ownership: records chosen by ids or by their current owner go to
another user; only those the actor may transfer, after a preview of how many; manual
shares end (save_changes does it), history is written, the transfer is logged.

Accounts may take their open opportunities along: those the account's previous owner
owns (a colleague's deal on the same account stays theirs), that the actor may transfer."""

from __future__ import annotations

from typing import NamedTuple

from flask_babel import lazy_gettext as _l

from crm_core.db import database
from crm_core.errors import UserError
from crm_core.org.services import Problems
from crm_core.permissions import Level, engine
from crm_core.record_checks import owner, save_changes
from crm_core.records import records_written

TRANSFERABLE = ("account", "contact", "lead", "opportunity")
SAMPLE = 50


class Transferred(NamedTuple):
    count: int
    opportunities: int = 0

MAX_IDS = 10_000


def transfer_query(actor_id, object_name, to_owner_id, ids=None, from_owner_id=None):
    """The records a transfer would move: those chosen (``ids`` and/or ``from_owner_id``)
    that ``actor_id`` may transfer and that ``to_owner_id`` does not own yet (a converted
    lead stays as it was converted)."""
    model = engine().objects[object_name].model
    query = engine().query(actor_id, object_name, level=Level.TRANSFER).where(model.owner_id != to_owner_id)
    if ids is not None:
        query = query.where(model.id.in_(list(ids)))
    if from_owner_id is not None:
        query = query.where(model.owner_id == from_owner_id)
    if object_name == "lead":
        query = query.where(model.status != "converted")
    return query


def opportunities_query(actor_id, accounts, to_owner_id):
    """The open opportunities that go with ``accounts`` (records as they are before the
    transfer): each account's owner's, that ``actor_id`` may transfer."""
    from crm_core.opportunities.models import Opportunity

    if not accounts:
        return None
    by_owner = {}
    for account in accounts:
        by_owner.setdefault(account.owner_id, []).append(account.id)
    condition = None
    for owner_id, account_ids in by_owner.items():
        part = (Opportunity.owner_id == owner_id) & Opportunity.account.in_(account_ids)
        condition = part if condition is None else condition | part
    return (engine().query(actor_id, "opportunity", level=Level.TRANSFER)
            .where((Opportunity.status == "open") & (Opportunity.owner_id != to_owner_id) & condition))


def check_transfer(object_name, to_owner_id, ids, from_owner_id, with_opportunities=False):
    problems = Problems()
    if with_opportunities and object_name != "account":
        problems.add("with_opportunities", _l("Only accounts take their opportunities along."))
    if object_name not in TRANSFERABLE:
        problems.add("object", _l("Choose one of: %(choices)s.", choices=", ".join(TRANSFERABLE)))
    if ids is None and from_owner_id is None:
        problems.add("ids", _l("Choose the records: by their ids or by their owner."))
    if ids is not None and len(ids) > MAX_IDS:
        problems.add("ids", _l("At most %(count)s records at once.", count=MAX_IDS))
    owner({"owner_id": to_owner_id}, problems)
    if problems.fields.get("owner_id"):
        problems.fields["to_owner_id"] = problems.fields.pop("owner_id")
    problems.check()


def preview(actor_id, object_name, to_owner_id, ids=None, from_owner_id=None, with_opportunities=False):
    """(how many, the first few) a transfer would move; nothing written. With
    ``with_opportunities`` (accounts), the count is the accounts' and ``opportunities_count``
    says how many open opportunities would go with them."""
    check_transfer(object_name, to_owner_id, ids, from_owner_id, with_opportunities)
    query = transfer_query(actor_id, object_name, to_owner_id, ids, from_owner_id)
    model = engine().objects[object_name].model
    return query.count(), list(query.order_by(model.id).limit(SAMPLE))


def opportunities_count(actor_id, to_owner_id, ids=None, from_owner_id=None):
    """How many open opportunities an account transfer would take along."""
    accounts = list(transfer_query(actor_id, "account", to_owner_id, ids, from_owner_id))
    query = opportunities_query(actor_id, accounts, to_owner_id)
    return query.count() if query is not None else 0


def transfer(actor_id, object_name, to_owner_id, expected_count, ids=None, from_owner_id=None,
             with_opportunities=False):
    """Give the previewed records to ``to_owner_id``, one change each (history, a new
    version, the old owner's manual shares ended), in one transaction. ``expected_count``
    is what the preview showed: when the set changed since, nothing moves (409). Returns
    how many records moved, and how many opportunities went with them."""
    from crm_core.audit.services import log_security

    check_transfer(object_name, to_owner_id, ids, from_owner_id, with_opportunities)
    model = engine().objects[object_name].model
    with database.atomic():
        records = list(transfer_query(actor_id, object_name, to_owner_id, ids, from_owner_id)
                       .order_by(model.id))
        if len(records) != expected_count:
            raise UserError(_l("The records to transfer changed since the preview: preview again."),
                            field="expected_count", code="changed")
        deals = []
        if with_opportunities:
            query = opportunities_query(actor_id, records, to_owner_id)
            deals = list(query.order_by(query.model.id)) if query is not None else []
        # One crm_records_written per object for the whole transfer, not one per record.
        moved = [r.id for r in records
                 if save_changes(r, object_name, {"owner_id": to_owner_id}, actor_id, announce=False)]
        moved_deals = [d.id for d in deals
                       if save_changes(d, "opportunity", {"owner_id": to_owner_id}, actor_id, announce=False)]
        records_written(object_name, moved, {"owner_id"}, actor_id)
        records_written("opportunity", moved_deals, {"owner_id"}, actor_id)
        if records:
            log_security("records_transferred", actor_id=actor_id, subject=object_name,
                         count=len(records), to_owner_id=to_owner_id, from_owner_id=from_owner_id,
                         ids=[r.id for r in records[:1000]])
        if deals:
            log_security("records_transferred", actor_id=actor_id, subject="opportunity",
                         count=len(deals), to_owner_id=to_owner_id, from_owner_id=from_owner_id,
                         ids=[r.id for r in deals[:1000]], with_accounts=True)
    return Transferred(len(records), len(deals))
