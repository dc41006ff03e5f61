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
    from crm_core.duplicates.models import DuplicatePair, DuplicateSetting, MatchKey
    from crm_core.customfields.models import CustomField
    from crm_core.segments.models import Segment
    from crm_core.webforms.models import WebForm, WebFormSubmission
    from crm_core.imports.models import ImportedRow, ImportMapping, ImportRun

    from crm_core.assignment.models import (AssignmentGroup, AssignmentGroupMember, AssignmentProposal,
                                            AssignmentRule, AssignmentRuleSet)
    from crm_core.notifications.models import Notification
    from crm_core.opportunities.models import (LostReason, Opportunity, OpportunityMember, Pipeline,
                                               Stage, StageChange)

    return [Pipeline, Stage, LostReason, Opportunity, OpportunityMember, StageChange, CustomField, Segment, User, UserSession, ApiToken, LoginThrottle, Department, Team, TeamMember, Role,
            RolePermission, UserRole, AccessDefault, SharingRule, RecordShare, FieldRule,
            FieldHistory, SecurityEvent, RecycleGroup, RecycleItem, RoleGrant, Account, Contact,
            Campaign, Lead, DuplicateSetting, MatchKey, DuplicatePair,
            WebForm, WebFormSubmission, AssignmentRuleSet, AssignmentGroup, AssignmentGroupMember,
            AssignmentRule, AssignmentProposal, Notification,
            ImportRun, ImportMapping, ImportedRow]


@hookimpl
def crm_register_access_objects(app):
    from flask_babel import lazy_gettext as _l

    from crm_core.accounts.models import Account, Contact
    from crm_core.permissions import AccessObject, ChildLink

    from crm_core.leads.models import Campaign, Lead
    from crm_core.opportunities.models import Opportunity

    # Who can read a contact or an opportunity can read its account (the implicit parent read).
    return [AccessObject("account", Account, _l("Account"), children=(
                ChildLink("contact", "account_id"), ChildLink("opportunity", "account_id"))),
            AccessObject("opportunity", Opportunity, _l("Opportunity")),
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
    from crm_core.duplicates.views import blueprint as duplicates, transfers_blueprint as transfers

    from crm_core.webforms.views import blueprint as webforms
    from crm_core.customfields.views import blueprint as custom_fields
    from crm_core.segments.views import blueprint as segments

    from crm_core.assignment.views import blueprint as assignment
    from crm_core.notifications.views import blueprint as notifications

    from crm_core.imports.views import blueprint as imports

    return [core, users, org, accounts, contacts, leads, campaigns, duplicates, transfers,
            custom_fields, segments, webforms,
            assignment, notifications, imports]


@hookimpl
def crm_register_api_blueprints(app):
    from crm_core.accounts.api import accounts_blueprint, contacts_blueprint
    from crm_core.leads.api import campaigns_blueprint, leads_blueprint
    from crm_core.api.meta import blueprint as meta
    from crm_core.audit.api import blueprint as audit
    from crm_core.org.api import blueprint as org
    from crm_core.users.api import auth_blueprint, users_blueprint
    # Imported before the record blueprints are mounted: it adds their /merge routes.
    from crm_core.duplicates.api import blueprint as duplicates, transfers_blueprint as transfers

    from crm_core.webforms.api import blueprint as web_forms, public_blueprint as web_to_lead
    from crm_core.customfields.api import blueprint as custom_fields
    from crm_core.segments.api import blueprint as segments

    from crm_core.assignment.api import blueprint as assignment
    from crm_core.notifications.api import blueprint as notifications

    from crm_core.imports.api import blueprint as imports

    return [meta, auth_blueprint, users_blueprint, org, audit, accounts_blueprint, contacts_blueprint,
            leads_blueprint, campaigns_blueprint, duplicates, transfers, custom_fields, segments,
            web_forms, web_to_lead, assignment, notifications, imports]


@hookimpl
def crm_register_template_filters(app):
    from crm_core.formatting import FILTERS

    return FILTERS


@hookimpl
def crm_register_template_globals(app):
    from crm_core.notifications.views import unread_notifications

    return {"unread_notifications": unread_notifications}


@hookimpl
def crm_page_slot(app, slot, actor, context):
    """The dashboard shows the user's unread notifications."""
    if slot != "dashboard" or actor is None:
        return None
    from flask import render_template
    from markupsafe import Markup

    from crm_core.notifications.views import entries

    return Markup(render_template("crm_core/notifications/_widget.html",
                                  entries=entries(actor.id, limit=5, unread_only=True)))


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
    if user_id is not None and engine().object_permissions(user_id, "lead").read:
        items.append(MenuItem("assignment.proposals", _l("Assignments"), order=95))
    if user_id is not None:
        permissions = [engine().object_permissions(user_id, name) for name in ("account", "contact", "lead")]
        if any(p.read for p in permissions):
            items.append(MenuItem("duplicates.groups", _l("Duplicates"), order=130))
        if any(p.read and p.edit for p in permissions):
            items.append(MenuItem("transfers.transfer", _l("Transfer records"), order=140))
    if user_id is not None and engine().has_permission(user_id, "webforms.manage"):
        items.append(MenuItem("webforms.list", _l("Web forms"), order=150))
    if user_id is not None and any(engine().object_permissions(user_id, name).create
                                   for name in ("account", "contact", "lead")):
        items.append(MenuItem("imports.list", _l("Import"), order=160))
    if getattr(actor, "is_admin", False):
        items.append(MenuItem("users.list", _l("Users"), order=900))
        items.append(MenuItem("org.overview", _l("Organisation"), order=910))
        items.append(MenuItem("custom_fields.list", _l("Custom fields"), order=920))
    if user_id is not None:
        items.append(MenuItem("segments.list", _l("Segments"), order=125))
    return items


@hookimpl
def crm_register_tasks(app):
    from huey import crontab

    from crm_core.jobs import TaskSpec
    from crm_core.users.maintenance import purge_sign_in_records

    from crm_core.imports.services import run_import
    from crm_core.recycle.services import purge_expired
    from crm_core.duplicates.scan import scan as scan_duplicates

    from crm_core.notifications.services import send_pending_emails

    return [TaskSpec("purge_sign_in_records", purge_sign_in_records,
                     schedule=crontab(minute="17", hour="3")),
            TaskSpec("purge_recycle_bin", purge_expired, schedule=crontab(minute="37", hour="3")),
            TaskSpec("run_import", run_import),
            TaskSpec("scan_duplicates", scan_duplicates),
            # Queued after each change that notifies; the sweep sends what a change made
            # inside a longer transaction (or what failed and waits for another try).
            TaskSpec("send_notification_emails", send_pending_emails),
            TaskSpec("send_notification_emails_sweep", send_pending_emails, schedule=crontab())]


@hookimpl
def crm_register_import_objects(app):
    from crm_core.imports.registry import core_import_objects

    # -- opportunities (issue 6, importer): lookups, rules and gates per row, stage history
    from crm_core.opportunities.importing import import_objects as opportunity_import_objects

    return core_import_objects() + opportunity_import_objects()


@hookimpl
def crm_register_permissions(app):
    from flask_babel import lazy_gettext as _l

    from crm_core.permissions import Permission

    return [Permission("leads.purge", _l("Purge inactive leads"), roles=("sales_manager",)),
            Permission("webforms.manage", _l("Manage web-to-lead forms"), roles=("administrator",)),
            Permission("assignment.manage", _l("Manage assignment rules and round-robin groups"),
                       roles=("sales_manager",))]


@hookimpl
def crm_register_pipelines(app):
    from crm_core.opportunities.pipelines import core_pipelines

    return core_pipelines()


@hookimpl
def crm_access_grants(app, actor, object):
    from crm_core.opportunities.access import team_grants

    return team_grants(actor, object)


@hookimpl
def crm_access_record_grants(app, actor, object, record):
    from crm_core.opportunities.access import team_record_grants

    return team_record_grants(actor, object, record)
