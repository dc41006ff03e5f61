"""The rules of accounts and contacts: what a record may hold, what its references must
name (and that the person changing it may see them), the customer transition, the org
chart of a customer, and deletion into the recycle bin with the contacts."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from crm_core.accounts.models import ACCOUNT_KINDS, Account, Contact
from crm_core.customfields.values import check as custom_check
from crm_core.db import database, utcnow
from crm_core.duplicates.check import check_create, check_update
from crm_core.duplicates.keys import store_record_keys
from crm_core.org.services import Problems
from crm_core.permissions import Level, engine
from crm_core.records import chain_reaches, create_record, update_record
from crm_core.record_checks import choice as _choice
from crm_core.record_checks import columns, delete_to_bin, save_changes
from crm_core.record_checks import common as _common
from crm_core.record_checks import country as _country
from crm_core.record_checks import owner as _owner
from crm_core.record_checks import readable as _readable
from crm_core.record_checks import text as _text

CREDIT_RATINGS = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C", "D")
FINANCIAL_STATUSES = ("good", "watch", "blocked")
CHANNELS = ("email", "phone", "mobile", "visit", "letter")


# -- accounts ------------------------------------------------------------------------------------

ACCOUNT_TEXT = ("name", "industry", "street", "city", "postal_code", "region", "phone", "email",
                "website", "registration_number", "tax_id", "credit_rating", "legal_status",
                "financial_status", "description", "country")


def _check_account(values, problems, actor_id, account=None):
    for name in ACCOUNT_TEXT:
        _text(values, name, problems, required=name == "name")
    if "kind" in values and values["kind"] is None:
        problems.add("kind", _l("This field is required."))
    _choice(values, "kind", ACCOUNT_KINDS, problems)
    _choice(values, "credit_rating", CREDIT_RATINGS, problems)
    _choice(values, "financial_status", FINANCIAL_STATUSES, problems)
    _country(values, problems)
    if values.get("employees") is not None and values["employees"] < 0:
        problems.add("employees", _l("Enter a number that is not negative."))
    _common(values, problems)
    _owner(values, problems)
    if values.get("parent_id") is not None:
        parent = _readable("account", values["parent_id"], actor_id, problems, "parent_id",
                           _l("No such account."))
        if parent is not None and account is not None and chain_reaches(Account, parent, account.id, "parent"):
            problems.add("parent_id", _l("An account cannot belong to itself or to one of its own."))


def create_account(values, actor_id=None, confirm_duplicates=False):
    """A new account; its owner is the actor unless ``owner_id`` names another user."""
    from crm_core.assignment.services import records_created

    values = dict(values)
    owner_given = values.get("owner_id") is not None
    values.setdefault("owner_id", actor_id)
    problems = Problems()
    _check_account(values, problems, actor_id)
    custom_check("account", values, problems)
    problems.check()
    check_create("account", values, actor_id, confirm_duplicates)
    if values.get("kind") == "customer":
        values["became_customer_at"] = utcnow()
    with database.atomic():
        account = create_record(Account, actor_id=actor_id, **columns(Account, values))
        store_record_keys("account", account)
    if not owner_given:  # nobody chose an owner: the assignment rules may
        records_created("account", [account], actor_id=actor_id)
    return account


def update_account(account, changes, actor_id=None, expected_version=None, confirm_duplicates=False):
    """Change an account; a new owner ends the manual shares the old one made."""
    changes = dict(changes)
    problems = Problems()
    _check_account(changes, problems, actor_id, account)
    custom_check("account", changes, problems, account)
    problems.check()
    check_update("account", account, changes, actor_id, confirm_duplicates)
    if changes.get("kind") == "customer" and account.kind != "customer" and not account.became_customer_at:
        changes["became_customer_at"] = utcnow()
    with database.atomic():
        changed = save_changes(account, "account", changes, actor_id, expected_version)
        if changed:
            store_record_keys("account", account)
    return changed


def record_first_order(account, actor_id=None):
    """A prospect becomes a customer at its first order (orders call this)."""
    if account.kind != "prospect":
        return {}
    return update_record(account, {"kind": "customer", "became_customer_at": utcnow()},
                         actor_id=actor_id)


def delete_account(account, actor_id=None, expected_version=None):
    """Into the recycle bin with its contacts, as one deletion (restored together)."""
    contacts = list(Contact.alive().where(Contact.account == account.id))
    return delete_to_bin(account, actor_id, expected_version, children=contacts)


# -- contacts -----------------------------------------------------------------------------------

CONTACT_TEXT = ("first_name", "last_name", "salutation", "title", "department", "email", "phone",
                "mobile", "language", "interests", "family", "education", "preferred_channel", "notes")


def _check_contact(values, problems, actor_id, contact=None):
    for name in CONTACT_TEXT:
        _text(values, name, problems, required=name == "last_name")
    _choice(values, "preferred_channel", CHANNELS, problems)
    _common(values, problems)
    _owner(values, problems)
    account_id = values.get("account_id", contact.account_id if contact else None)
    if "account_id" in values and values["account_id"] is not None:
        _readable("account", values["account_id"], actor_id, problems, "account_id",
                  _l("No such account."))
    if values.get("reports_to_id") is not None:
        boss = _readable("contact", values["reports_to_id"], actor_id, problems, "reports_to_id",
                         _l("No such contact."))
        if boss is not None:
            if boss.account_id != account_id:
                problems.add("reports_to_id", _l("Choose a contact of the same account."))
            elif contact is not None and chain_reaches(Contact, boss, contact.id, "reports_to"):
                problems.add("reports_to_id", _l("A contact cannot report to themselves or to someone who reports to them."))


def create_contact(values, actor_id=None, confirm_duplicates=False):
    values = dict(values)
    values.setdefault("owner_id", actor_id)
    problems = Problems()
    _check_contact(values, problems, actor_id)
    custom_check("contact", values, problems)
    problems.check()
    check_create("contact", values, actor_id, confirm_duplicates)
    with database.atomic():
        contact = create_record(Contact, actor_id=actor_id, **columns(Contact, values))
        store_record_keys("contact", contact)
    return contact


def update_contact(contact, changes, actor_id=None, expected_version=None, confirm_duplicates=False):
    changes = dict(changes)
    problems = Problems()
    _check_contact(changes, problems, actor_id, contact)
    custom_check("contact", changes, problems, contact)
    if "account_id" in changes and changes["account_id"] != contact.account_id and \
            "reports_to_id" not in changes and contact.reports_to_id:
        changes["reports_to_id"] = None  # the old account's org chart stays behind
    problems.check()
    check_update("contact", contact, changes, actor_id, confirm_duplicates)
    with database.atomic():
        if "account_id" in changes and changes["account_id"] != contact.account_id:
            # Those who reported to this contact stay with the old account.
            for report in Contact.select().where(Contact.reports_to == contact.id):
                update_record(report, {"reports_to": None}, actor_id=actor_id)
        changed = save_changes(contact, "contact", changes, actor_id, expected_version)
        if changed:
            store_record_keys("contact", contact)
        return changed


def delete_contact(contact, actor_id=None, expected_version=None):
    return delete_to_bin(contact, actor_id, expected_version, label=contact_name(contact))


def contact_name(contact):
    """"Nguyễn Thị Thảo": first and last name as entered (family-first names stay so)."""
    return " ".join(part for part in (contact.first_name, contact.last_name) if part)


def org_chart(account, actor_id):
    """The account's contacts the actor may see, as a tree by reports-to: [{"contact",
    "reports"}]. A contact whose manager the actor cannot see starts a branch of its own."""
    contacts = list(engine().query(actor_id, "contact", level=Level.READ)
                    .where(Contact.account == account.id)
                    .order_by(Contact.last_name, Contact.first_name, Contact.id))
    ids = {c.id for c in contacts}
    below = {}
    for contact in contacts:
        top = contact.reports_to_id if contact.reports_to_id in ids else None
        below.setdefault(top, []).append(contact)

    def branch(parent_id, seen):
        return [{"contact": c, "reports": branch(c.id, seen | {c.id})}
                for c in below.get(parent_id, ()) if c.id not in seen]

    return branch(None, frozenset())
