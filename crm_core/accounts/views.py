"""Pages of accounts and contacts (the shared record pages, with an account's org chart
of contacts and subsidiaries)."""

from __future__ import annotations

from flask import Blueprint
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.accounts import services
from crm_core.accounts.models import Account, Contact
from crm_core.permissions import engine
from crm_core.users.models import User
from crm_core.web import record_pages as pages
from crm_core.web.record_pages import Input, RecordKind

blueprint = Blueprint("accounts", __name__, url_prefix="/accounts")
contacts_blueprint = Blueprint("contacts", __name__, url_prefix="/contacts")

KINDS = (("prospect", _l("Prospect")), ("customer", _l("Customer")), ("reseller", _l("Reseller")),
         ("vendor", _l("Vendor")))
FINANCIAL = (("good", _l("Good")), ("watch", _l("Watch")), ("blocked", _l("Blocked")))
CHANNELS = (("email", _l("Email")), ("phone", _l("Phone")), ("mobile", _l("Mobile phone")),
            ("visit", _l("Visit")), ("letter", _l("Letter")))


def people():
    return [(u.id, u.name) for u in User.alive().where(User.active == True).order_by(User.name)]  # noqa: E712


def account_choices():
    """The accounts the reader may see, by name (for parent and account selects)."""
    return [(a.id, a.name) for a in engine().query(current_user.id, "account", Account.id, Account.name)
            .order_by(Account.name).limit(1000)]


def _contact_choices():
    return [(c.id, services.contact_name(c)) for c in engine().query(current_user.id, "contact")
            .order_by(Contact.last_name, Contact.first_name).limit(1000)]


ACCOUNT = RecordKind(
    name="account", endpoint="accounts", title=_l("Accounts"), singular=_l("Account"),
    inputs=(
        Input("name", _l("Name"), required=True, max_length=200),
        Input("kind", _l("Kind"), "choice", KINDS, required=True),
        Input("owner_id", _l("Owner"), "user"),
        Input("parent_id", _l("Parent account"), "reference",
              hint=_l("The group this company belongs to.")),
        Input("industry", _l("Industry"), max_length=100),
        Input("street", _l("Street"), max_length=300),
        Input("city", _l("City"), max_length=100),
        Input("postal_code", _l("Postal code"), max_length=20),
        Input("region", _l("Region"), max_length=100),
        Input("country", _l("Country"), "country"),
        Input("phone", _l("Phone"), max_length=50),
        Input("email", _l("Email"), "email", max_length=254),
        Input("website", _l("Website"), max_length=300),
        Input("registration_number", _l("Registration number"), max_length=50),
        Input("tax_id", _l("Tax id"), max_length=50),
        Input("employees", _l("Employees"), "integer"),
        Input("currency", _l("Currency"), "currency", max_length=3),
        Input("credit_limit", _l("Credit limit"), "money"),
        Input("balance", _l("Balance"), "money"),
        Input("credit_rating", _l("Credit rating"), "choice",
              tuple((r, r) for r in services.CREDIT_RATINGS)),
        Input("legal_status", _l("Legal status"), max_length=100),
        Input("financial_status", _l("Financial status"), "choice", FINANCIAL),
        Input("description", _l("Description"), "textarea", max_length=20000),
    ),
    columns=("kind", "industry", "city", "country", "owner_id"),
    create=services.create_account, update=services.update_account, delete=services.delete_account,
    label_of=lambda account: account.name,
    search=lambda query, text: query.where(Account.name.contains(text) | (Account.tax_id == text)),
    sorts={"name": (_l("Name"), Account.name), "updated_at": (_l("Last changed"), Account.updated_at),
           "country": (_l("Country"), Account.country)},
    choice_sources={"owner_id": people, "parent_id": account_choices},
    extra_template="crm_core/accounts/_account_extra.html",
)

CONTACT = RecordKind(
    name="contact", endpoint="contacts", title=_l("Contacts"), singular=_l("Contact"),
    inputs=(
        Input("salutation", _l("Salutation"), max_length=50),
        Input("first_name", _l("First name"), max_length=100),
        Input("last_name", _l("Last name"), required=True, max_length=100),
        Input("account_id", _l("Account"), "reference"),
        Input("title", _l("Job title"), max_length=100),
        Input("department", _l("Department"), max_length=100),
        Input("reports_to_id", _l("Reports to"), "reference",
              hint=_l("A contact of the same account.")),
        Input("owner_id", _l("Owner"), "user"),
        Input("email", _l("Email"), "email", max_length=254),
        Input("phone", _l("Phone"), max_length=50),
        Input("mobile", _l("Mobile phone"), max_length=50),
        Input("preferred_channel", _l("Preferred channel"), "choice", CHANNELS),
        Input("do_not_call", _l("Do not call"), "bool"),
        Input("do_not_email", _l("Do not email"), "bool"),
        Input("birthday", _l("Birthday"), "date"),
        Input("language", _l("Language"), max_length=10),
        Input("interests", _l("Interests"), max_length=500, hint=_l("Separated by commas: tennis, golf.")),
        Input("family", _l("Family"), max_length=500),
        Input("education", _l("Education"), max_length=300),
        Input("notes", _l("Notes"), "textarea", max_length=20000),
    ),
    columns=("account_id", "title", "email", "phone", "owner_id"),
    create=services.create_contact, update=services.update_contact, delete=services.delete_contact,
    label_of=lambda contact: services.contact_name(contact),
    search=lambda query, text: query.where(Contact.last_name.contains(text)
                                           | Contact.first_name.contains(text)
                                           | (Contact.email == text.lower())),
    sorts={"name": (_l("Name"), Contact.last_name), "updated_at": (_l("Last changed"), Contact.updated_at)},
    choice_sources={"owner_id": people, "account_id": account_choices, "reports_to_id": _contact_choices},
)


def _account_extra(account):
    """The account's contacts as its org chart, its group and subsidiaries (as far as the
    reader may see them)."""
    access = engine()
    can_contacts = access.object_permissions(current_user.id, "contact").read
    parent = access.query(current_user.id, "account").where(
        Account.id == account.parent_id).first() if account.parent_id else None
    return {"chart": services.org_chart(account, current_user.id) if can_contacts else None,
            "subsidiaries": list(access.query(current_user.id, "account")
                                 .where(Account.parent == account.id).order_by(Account.name)),
            "links": {"parent_id": ("accounts", parent.id, parent.name)} if parent else {},
            "can_add_contact": access.object_permissions(current_user.id, "contact").create}


def _contact_extra(contact):
    access = engine()
    links = {}
    account = access.query(current_user.id, "account").where(
        Account.id == contact.account_id).first() if contact.account_id else None
    if account is not None:
        links["account_id"] = ("accounts", account.id, account.name)
    boss = access.query(current_user.id, "contact").where(
        Contact.id == contact.reports_to_id).first() if contact.reports_to_id else None
    if boss is not None:
        links["reports_to_id"] = ("contacts", boss.id, services.contact_name(boss))
    return {"links": links}


pages.register(blueprint, ACCOUNT, _account_extra, filters={"kind": Account.kind})
pages.register(contacts_blueprint, CONTACT, _contact_extra, filters={"account_id": Contact.account})
