"""The core's own hook implementations: the core is built on the same hooks as plugins."""

from __future__ import annotations

from crm_core import hookimpl
from crm_core.migrator import MigrationSource


@hookimpl
def crm_register_models(app):
    from crm_core.audit.models import FieldHistory, SecurityEvent
    from crm_core.recycle.models import RecycleGroup, RecycleItem
    from crm_core.org.models import (AccessDefault, Department, FieldRule, RecordShare, Role,
                                     RoleGrant, RolePermission, SharingRule, Team, TeamMember,
                                     UserRole)
    from crm_core.users.models import ApiToken, LoginThrottle, User, UserSession

    from crm_core.accounts.models import Account, Contact
    from crm_core.leads.models import Campaign, Lead
    from crm_core.imports.models import ImportedRow, ImportMapping, ImportRun

    return [User, UserSession, ApiToken, LoginThrottle, Department, Team, TeamMember, Role,
            RolePermission, UserRole, AccessDefault, SharingRule, RecordShare, FieldRule,
            FieldHistory, SecurityEvent, RecycleGroup, RecycleItem, RoleGrant, Account, Contact,
            Campaign, Lead, ImportRun, ImportMapping, ImportedRow]


@hookimpl
def crm_register_access_objects(app):
    from flask_babel import lazy_gettext as _l

    from crm_core.accounts.models import Account, Contact
    from crm_core.permissions import AccessObject, ChildLink

    from crm_core.leads.models import Campaign, Lead

    # Who can read a contact can read its account (the implicit parent read).
    return [AccessObject("account", Account, _l("Account"), children=(ChildLink("contact", "account_id"),)),
            AccessObject("contact", Contact, _l("Contact")),
            AccessObject("lead", Lead, _l("Lead")),
            AccessObject("campaign", Campaign, _l("Campaign"))]


@hookimpl
def crm_register_migrations(app):
    return MigrationSource("core", "crm_core.migrations")


@hookimpl
def crm_register_blueprints(app):
    from crm_core.accounts.views import blueprint as accounts
    from crm_core.accounts.views import contacts_blueprint as contacts
    from crm_core.leads.views import blueprint as leads
    from crm_core.leads.views import campaigns_blueprint as campaigns
    from crm_core.org.views import blueprint as org
    from crm_core.users.views import blueprint as users
    from crm_core.web.views import blueprint as core
    from crm_core.imports.views import blueprint as imports

    return [core, users, org, accounts, contacts, leads, campaigns, imports]


@hookimpl
def crm_register_api_blueprints(app):
    from crm_core.accounts.api import accounts_blueprint, contacts_blueprint
    from crm_core.leads.api import campaigns_blueprint, leads_blueprint
    from crm_core.api.meta import blueprint as meta
    from crm_core.audit.api import blueprint as audit
    from crm_core.org.api import blueprint as org
    from crm_core.users.api import auth_blueprint, users_blueprint
    from crm_core.imports.api import blueprint as imports

    return [meta, auth_blueprint, users_blueprint, org, audit, accounts_blueprint, contacts_blueprint,
            leads_blueprint, campaigns_blueprint, imports]


@hookimpl
def crm_register_template_filters(app):
    from crm_core.formatting import FILTERS

    return FILTERS


@hookimpl
def crm_menu_items(app, actor):
    from flask_babel import lazy_gettext as _l

    from crm_core.web.slots import MenuItem

    from crm_core.permissions import engine

    items = [MenuItem("core.home", _l("Dashboard"), order=0)]
    user_id = getattr(actor, "id", None)
    for endpoint, label, name, order in (("leads.list", _l("Leads"), "lead", 90),
                                         ("accounts.list", _l("Accounts"), "account", 100),
                                         ("contacts.list", _l("Contacts"), "contact", 110),
                                         ("campaigns.list", _l("Campaigns"), "campaign", 120)):
        if user_id is not None and engine().object_permissions(user_id, name).read:
            items.append(MenuItem(endpoint, label, order=order))
    if user_id is not None and any(engine().object_permissions(user_id, name).create
                                   for name in ("account", "contact", "lead")):
        items.append(MenuItem("imports.list", _l("Import"), order=130))
    if getattr(actor, "is_admin", False):
        items.append(MenuItem("users.list", _l("Users"), order=900))
        items.append(MenuItem("org.overview", _l("Organisation"), order=910))
    return items


@hookimpl
def crm_register_tasks(app):
    from huey import crontab

    from crm_core.jobs import TaskSpec
    from crm_core.users.maintenance import purge_sign_in_records

    from crm_core.imports.services import run_import
    from crm_core.recycle.services import purge_expired

    return [TaskSpec("purge_sign_in_records", purge_sign_in_records,
                     schedule=crontab(minute="17", hour="3")),
            TaskSpec("purge_recycle_bin", purge_expired, schedule=crontab(minute="37", hour="3")),
            TaskSpec("run_import", run_import)]


@hookimpl
def crm_register_import_objects(app):
    from crm_core.imports.registry import core_import_objects

    return core_import_objects()


@hookimpl
def crm_register_permissions(app):
    from flask_babel import lazy_gettext as _l

    from crm_core.permissions import Permission

    return [Permission("leads.purge", _l("Purge inactive leads"), roles=("sales_manager",))]
