"""The kinds of record that can be imported, registered by their own modules through
``crm_register_import_objects`` (the core registers accounts, contacts and leads; the
opportunity issue adds opportunities the same way)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from crm_core.errors import RegistryError


@dataclass(frozen=True)
class Relation:
    """A column that names another record: ``account`` takes the account's external id, its
    name or its email (``keys``, tried in that order) among the records the importing user may
    read; ``account_id`` takes the id itself. ``object`` "user" means an active user (by email
    or name): owners.

    ``model`` marks a company list every user reads (pipelines, stages, lost reasons): the
    value is looked up among the model's live records, not through the access engine.
    ``scope`` names the row's column that narrows the lookup (a stage by name within the
    row's pipeline: ``scope="pipeline_id"``); without that column in the file, an update
    takes its record's value and a new record ``scope_default()``."""

    name: str                 # the column without _id: "account"
    column: str               # the record's column: "account_id"
    object: str               # the access object looked in: "account" (or "user")
    keys: tuple = ("external_id", "name", "email")
    model: Any = None
    scope: str | None = None
    scope_default: Callable | None = None


@dataclass(frozen=True)
class ImportObject:
    """How files become records of one access object.

    Fields are the model's own (named like the API); ``choices`` limits some of them,
    ``required`` must be given on a new record, ``skip`` are never imported (computed
    ones). ``update`` is the object's service that changes one record (history, checks):
    rows with a known external id go through it. ``prepare(values)`` completes a new
    record's values (e.g. the day a prospect became a customer, an opportunity's status
    from its stage) before ``row_checks``, the extra per-row rules:
    ``check(values, context) -> [(column, code, params)]``, so they check the values stored.
    ``wire(importer)`` adds the object's own steps and callbacks to each run (see
    pipeline.py): what it writes besides its own rows (an opportunity's first stage
    history row, in bulk) and whom it tells afterwards.
    """

    name: str
    model: Any
    update: Callable
    choices: dict = field(default_factory=dict)
    required: tuple = ()
    relations: tuple = ()
    skip: tuple = ()
    row_checks: tuple = ()
    prepare: Callable | None = None
    wire: Callable | None = None

    def validate(self, owner):
        if not self.name or not self.name.replace("_", "").isalnum():
            raise RegistryError(f"{owner}: import object name {self.name!r} must be letters, digits and _")
        if "external_id" not in self.model._meta.fields:
            raise RegistryError(f"{owner}: {self.model.__name__} needs an external_id column to be imported")


def import_objects(app=None):
    """{name: ImportObject} of the running application."""
    from flask import current_app

    return dict((app or current_app).extensions["crm"].registries["import_objects"].items())


def collect(app, host):
    """Called from create_app: every plugin's import objects, each name once."""
    from crm_core.plugins import Registry

    registry = Registry("import object")
    for owner, result in host.call_per_owner("crm_register_import_objects", app=app):
        for spec in result or ():
            if not isinstance(spec, ImportObject):
                raise RegistryError(f"{owner}: {spec!r} is not a crm_core.imports.registry.ImportObject")
            spec.validate(owner)
            registry.add(spec.name, spec, owner)
    host.registries["import_objects"] = registry
    return registry


# -- the core's objects -------------------------------------------------------------------------

def _contact_reports_to(values, context):
    boss = values.get("reports_to_id")
    if boss is not None:
        from crm_core.accounts.models import Contact

        account = context.value_of(Contact, boss, "account_id")
        if account != values.get("account_id"):
            return [("reports_to", "reports_to_account", {})]
    return []


def _account_prepare(values):
    if values.get("kind") == "customer":
        from crm_core.db import utcnow

        values["became_customer_at"] = utcnow()


def core_import_objects():
    from crm_core.accounts import services as accounts
    from crm_core.accounts.models import ACCOUNT_KINDS, Account, Contact
    from crm_core.leads import services as leads
    from crm_core.leads.models import LEAD_RATINGS, LEAD_SOURCES, Lead

    owner = Relation("owner", "owner_id", "user", ("email", "name"))
    return [
        ImportObject("account", Account, accounts.update_account,
                     choices={"kind": ACCOUNT_KINDS, "credit_rating": accounts.CREDIT_RATINGS,
                              "financial_status": accounts.FINANCIAL_STATUSES},
                     required=("name",), relations=(owner, Relation("parent", "parent_id", "account")),
                     skip=("became_customer_at",), prepare=_account_prepare),
        ImportObject("contact", Contact, accounts.update_contact,
                     choices={"preferred_channel": accounts.CHANNELS}, required=("last_name",),
                     relations=(owner, Relation("account", "account_id", "account"),
                                Relation("reports_to", "reports_to_id", "contact")),
                     row_checks=(_contact_reports_to,)),
        ImportObject("lead", Lead, leads.update_lead,
                     choices={"status": leads.OPEN_STATUSES, "source": LEAD_SOURCES, "rating": LEAD_RATINGS},
                     required=("last_name",),
                     relations=(owner, Relation("campaign", "campaign_id", "campaign", ("name",))),
                     skip=("converted_at", "converted_account", "converted_contact")),
    ]
