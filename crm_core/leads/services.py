"""The rules of campaigns and leads: what they hold, qualification, and conversion into
an account and a contact (linking to ones that already exist), once, even when two people
convert at the same time."""

from __future__ import annotations

from typing import Any, NamedTuple

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.accounts import services as accounts
from crm_core.accounts.models import Account, Contact
from crm_core.db import database, utcnow
from crm_core.duplicates.check import check_create, check_update
from crm_core.duplicates.keys import store_record_keys
from crm_core.customfields.values import check as custom_check
from crm_core.errors import UserError
from crm_core.leads.models import CAMPAIGN_STATUSES, LEAD_RATINGS, LEAD_SOURCES, LEAD_STATUSES, Campaign, Lead
from crm_core.org.services import Problems
from crm_core.permissions import engine
from crm_core.record_checks import (choice, columns, common, country, delete_to_bin, owner, readable,
                                    save_changes, text)
from crm_core.records import create_record, update_record

# Statuses a person sets; "converted" only comes from a conversion.
OPEN_STATUSES = tuple(s for s in LEAD_STATUSES if s != "converted")


# -- campaigns -------------------------------------------------------------------------------------

def _check_campaign(values, problems):
    for name in ("name", "channel", "description"):
        text(values, name, problems, required=name == "name")
    if "status" in values and values["status"] is None:
        problems.add("status", _l("This field is required."))
    choice(values, "status", CAMPAIGN_STATUSES, problems)
    owner(values, problems)
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end < start:
        problems.add("end_date", _l("The end cannot be before the start."))


def create_campaign(values, actor_id=None):
    values = dict(values)
    values.setdefault("owner_id", actor_id)
    problems = Problems()
    _check_campaign(values, problems)
    problems.check()
    return create_record(Campaign, actor_id=actor_id, **values)


def update_campaign(campaign, changes, actor_id=None, expected_version=None):
    changes = dict(changes)
    problems = Problems()
    _check_campaign({"start_date": campaign.start_date, "end_date": campaign.end_date, **changes}, problems)
    _check_campaign(changes, problems)
    problems.check()
    return save_changes(campaign, "campaign", changes, actor_id, expected_version)


def delete_campaign(campaign, actor_id=None, expected_version=None):
    return delete_to_bin(campaign, actor_id, expected_version)


# -- leads ---------------------------------------------------------------------------------------------

LEAD_TEXT = ("company", "first_name", "last_name", "title", "email", "phone", "mobile", "region",
             "city", "industry", "description", "country")


def _check_lead(values, problems, actor_id):
    for name in LEAD_TEXT:
        text(values, name, problems, required=name == "last_name")
    if "status" in values and values["status"] is None:
        problems.add("status", _l("This field is required."))
    choice(values, "status", OPEN_STATUSES, problems)
    choice(values, "source", LEAD_SOURCES, problems)
    choice(values, "rating", LEAD_RATINGS, problems)
    country(values, problems)
    common(values, problems)
    owner(values, problems)
    if values.get("campaign_id") is not None:
        readable("campaign", values["campaign_id"], actor_id, problems, "campaign_id",
                 _l("No such campaign."))


def lead_name(lead):
    return " ".join(part for part in (lead.first_name, lead.last_name) if part)


def create_lead(values, actor_id=None, confirm_duplicates=False):
    from crm_core.assignment.services import records_created

    values = dict(values)
    owner_given = values.get("owner_id") is not None
    values.setdefault("owner_id", actor_id)
    problems = Problems()
    _check_lead(values, problems, actor_id)
    custom_check("lead", values, problems)
    problems.check()
    check_create("lead", values, actor_id, confirm_duplicates)
    with database.atomic():
        lead = create_record(Lead, actor_id=actor_id, **columns(Lead, values))
        store_record_keys("lead", lead)
    if not owner_given:  # nobody chose an owner: the assignment rules may
        records_created("lead", [lead], actor_id=actor_id)
    return lead


def _not_converted(lead):
    if lead.status == "converted":
        raise UserError(_l("This lead has been converted: change its account and contact instead."),
                        field="status", code="converted")


def update_lead(lead, changes, actor_id=None, expected_version=None, confirm_duplicates=False):
    changes = dict(changes)
    _not_converted(lead)
    problems = Problems()
    _check_lead(changes, problems, actor_id)
    custom_check("lead", changes, problems, lead)
    problems.check()
    check_update("lead", lead, changes, actor_id, confirm_duplicates)
    with database.atomic():
        changed = save_changes(lead, "lead", changes, actor_id, expected_version)
        if changed:
            store_record_keys("lead", lead)
    return changed


def delete_lead(lead, actor_id=None, expected_version=None):
    return delete_to_bin(lead, actor_id, expected_version, label=lead_name(lead))


# -- conversion -------------------------------------------------------------------------------------

def matches(lead, actor_id):
    """The existing account and contact a conversion would link to, among those the actor
    may see: the account by company name (any case) and the contact by email."""
    account = contact = None
    if lead.company:
        account = (engine().query(actor_id, "account")
                   .where(peewee.fn.LOWER(Account.name) == lead.company.strip().lower())
                   .order_by(Account.id).first())
    if lead.email:
        contact = (engine().query(actor_id, "contact").where(Contact.email == lead.email)
                   .order_by(Contact.id).first())
    return account, contact


class Conversion(NamedTuple):
    account: Account
    contact: Contact
    opportunity: Any = None


OPPORTUNITY_VALUES = ("name", "amount", "currency", "expected_close_date", "pipeline_id", "stage_id",
                      "probability", "next_step")


def convert(lead, actor_id=None, expected_version=None, account_id=None, contact_id=None, opportunity=None):
    """Turn a lead into an account, a contact and an opportunity, in one transaction.

    ``account_id``/``contact_id`` link to existing records (the actor must see them);
    without them the lead's matches are used, or new ones are made from the lead.
    ``opportunity`` is False for none, else the values of the new opportunity (any of
    ``OPPORTUNITY_VALUES``; its name defaults to the company's, its pipeline and stage to
    the default ones); it takes the lead's owner, campaign and source and points at the
    lead, and passes the gates of its first stage like any new opportunity. The lead
    becomes "converted" by a conditional update on its version, so of two people
    converting at once one wins and the other gets a conflict; nothing of theirs is kept.
    Returns a Conversion (account, contact, opportunity or None).
    """
    from crm_core.opportunities import services as opportunities
    from crm_core.opportunities import transitions

    _not_converted(lead)
    if lead.status == "unqualified":
        raise UserError(_l("An unqualified lead cannot be converted."), field="status")
    problems = Problems()
    account = readable("account", account_id, actor_id, problems, "account_id", _l("No such account."))
    contact = readable("contact", contact_id, actor_id, problems, "contact_id", _l("No such contact."))
    deal_values = None
    if opportunity is not False:
        given = dict(opportunity or {})
        unknown = sorted(set(given) - set(OPPORTUNITY_VALUES))
        if unknown:
            problems.add("opportunity", _l("These values cannot be given: %(fields)s.", fields=", ".join(unknown)))
        deal_values = {name: value for name, value in given.items() if name in OPPORTUNITY_VALUES}
    problems.check()
    found_account, found_contact = matches(lead, actor_id)
    account = account or found_account
    contact = contact or found_contact
    expected = lead.version if expected_version is None else int(expected_version)
    deal = None
    with database.atomic():
        now = utcnow()
        if account is None:
            account = accounts.create_account({
                "name": lead.company or lead_name(lead), "industry": lead.industry,
                "country": lead.country, "region": lead.region, "city": lead.city,
                "phone": lead.phone, "owner_id": lead.owner_id}, actor_id=actor_id,
                confirm_duplicates=True)
        if contact is None:
            contact = accounts.create_contact({
                "account_id": account.id, "first_name": lead.first_name, "last_name": lead.last_name,
                "title": lead.title, "email": lead.email, "phone": lead.phone, "mobile": lead.mobile,
                "owner_id": lead.owner_id}, actor_id=actor_id, confirm_duplicates=True)
        if deal_values is not None:
            if not deal_values.get("name"):
                deal_values["name"] = account.name
            # The lead's campaign goes with it even when the converting person may not read
            # the campaign (the service refuses to point at what its caller cannot see).
            campaign_id = lead.campaign_id
            visible = campaign_id is None or engine().query(actor_id, "campaign").where(
                Campaign.id == campaign_id).exists()
            deal = opportunities.create_opportunity({
                **deal_values, "account_id": account.id,
                # A contact of another account (the lead's email matched one) is not the deal's.
                "contact_id": contact.id if contact.account_id in (None, account.id) else None,
                "owner_id": lead.owner_id, "campaign_id": campaign_id if visible else None,
                "source": lead.source, "lead_id": lead.id}, actor_id=actor_id, announce=False)
            if not visible:
                type(deal).update(campaign=campaign_id).where(type(deal).id == deal.id).execute()
                deal.campaign_id = campaign_id
        # The conditional update: a second conversion of the same version finds nothing.
        update_record(lead, {"status": "converted", "converted_at": now,
                             "converted_account": account.id, "converted_contact": contact.id},
                      actor_id=actor_id, expected_version=expected)
    if deal is not None:
        transitions.announce(actor_id, deal, None, deal.stage)
    return Conversion(account, contact, deal)


# -- purging inactive leads ---------------------------------------------------------------------------

PURGEABLE = ("new", "contacted", "unqualified")
PURGE_SAMPLE = 50


def purge_query(actor_id, statuses, inactive_since):
    """The leads ``actor_id`` may delete, in ``statuses``, unchanged since ``inactive_since``
    (a UTC datetime): what a purge would move to the recycle bin."""
    from crm_core.permissions import Level

    return (engine().query(actor_id, "lead", level=Level.DELETE)
            .where(Lead.status.in_(list(statuses)) & (Lead.updated_at < inactive_since)))


def _check_purge(statuses, inactive_since):
    problems = Problems()
    if not statuses or set(statuses) - set(PURGEABLE):
        problems.add("statuses", _l("Choose among: %(choices)s.", choices=", ".join(PURGEABLE)))
    if inactive_since is None or inactive_since > utcnow():
        problems.add("inactive_since", _l("Choose a day in the past."))
    problems.check()


def purge_preview(actor_id, statuses, inactive_since):
    """(how many, the first few) a purge would take, and nothing written."""
    _check_purge(statuses, inactive_since)
    query = purge_query(actor_id, statuses, inactive_since)
    return query.count(), list(query.order_by(Lead.updated_at, Lead.id).limit(PURGE_SAMPLE))


def purge(actor_id, statuses, inactive_since, expected_count):
    """Move the previewed leads to the recycle bin as one deletion (restored together).

    ``expected_count`` is what the preview showed: if the set changed since (someone
    touched a lead, a new one went stale), nothing is purged and the caller previews again.
    """
    from crm_core.audit.services import log_security
    from crm_core.recycle.services import move_to_bin

    _check_purge(statuses, inactive_since)
    with database.atomic():
        leads = list(purge_query(actor_id, statuses, inactive_since).order_by(Lead.id))
        if len(leads) != expected_count:
            raise UserError(_l("The leads to purge changed since the preview: preview again."),
                            field="expected_count", code="changed")
        if not leads:
            return None
        group = move_to_bin(leads[0], children=leads[1:], actor_id=actor_id,
                            label=str(_l("Purge of inactive leads (%(count)s)", count=len(leads))))
        log_security("leads_purged", actor_id=actor_id, subject="lead", count=len(leads),
                     statuses=sorted(statuses), inactive_since=inactive_since.isoformat())
    return group
