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
    from crm_core.approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStep

    from crm_core.stagegates.models import StageGate

    from crm_core.funnel.models import CurrencyRate, FunnelClosedMonth, FunnelTotal

    return [FunnelTotal, FunnelClosedMonth, CurrencyRate, Pipeline, Stage, LostReason, Opportunity, OpportunityMember, StageChange, StageGate, CustomField, Segment, User, UserSession, ApiToken, LoginThrottle, Department, Team, TeamMember, Role,
            RolePermission, UserRole, AccessDefault, SharingRule, RecordShare, FieldRule,
            FieldHistory, SecurityEvent, RecycleGroup, RecycleItem, RoleGrant, Account, Contact,
            Campaign, Lead, DuplicateSetting, MatchKey, DuplicatePair,
            WebForm, WebFormSubmission, AssignmentRuleSet, AssignmentGroup, AssignmentGroupMember,
            AssignmentRule, AssignmentProposal, Notification,
            ImportRun, ImportMapping, ImportedRow,
            ApprovalPolicy, ApprovalRequest, ApprovalStep] + _opportunity_list_models() + _analysis_models()


def _opportunity_list_models():
    from crm_core.opportunities.saved_views import SavedView

    return [SavedView]


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

    from crm_core.stagegates.views import blueprint as stage_gates
    from crm_core.approvals.views import blueprint as approvals
    # The sales funnel and the currency rates (issue 6).
    from crm_core.funnel.views import blueprint as funnel, rates_blueprint as currency_rates

    return [core, users, org, accounts, contacts, leads, campaigns, duplicates, transfers,
            custom_fields, segments, webforms,
            assignment, notifications, imports, stage_gates, approvals, funnel, currency_rates] + _opportunity_pages() + _analysis_blueprints()


def _opportunity_pages():
    from crm_core.opportunities.admin_views import blueprint as pipelines
    from crm_core.opportunities.views import blueprint as opportunities

    return [opportunities, pipelines]


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

    from crm_core.stagegates.api import blueprint as stage_gates
    from crm_core.approvals.api import blueprint as approvals
    # The sales funnel and the currency rates (issue 6).
    from crm_core.funnel.api import rates_blueprint as currency_rates, reports_blueprint as reports

    return [meta, auth_blueprint, users_blueprint, org, audit, accounts_blueprint, contacts_blueprint,
            leads_blueprint, campaigns_blueprint, duplicates, transfers, custom_fields, segments,
            web_forms, web_to_lead, assignment, notifications, imports, stage_gates, approvals, reports,
            currency_rates] + _opportunity_api() + _analysis_api_blueprints()


def _opportunity_api():
    from crm_core.opportunities.api import lost_reasons_blueprint, opportunities_blueprint, pipelines_blueprint

    return [opportunities_blueprint, pipelines_blueprint, lost_reasons_blueprint]


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
    """The dashboard shows the user's unread notifications and their own sales funnel; a
    record's page its panels: a change waiting for approval; for an opportunity, what its
    next stages require and its stage history."""
    if slot == "record_panels" and actor is not None:
        from markupsafe import Markup

        from crm_core.approvals.views import record_panel as approval_panel
        from crm_core.stagegates.views import record_panel as stage_gates_panel

        parts = [approval_panel(actor, context.get("object"), context.get("record"))]
        if context.get("object") == "opportunity":
            parts.append(stage_gates_panel(context["record"]))
        parts.append(_analysis_record_panel(actor, context))
        return Markup("").join(part for part in parts if part) or None
    if slot != "dashboard" or actor is None:
        return None
    from flask import render_template
    from markupsafe import Markup

    from crm_core.notifications.views import entries

    notifications = Markup(render_template("crm_core/notifications/_widget.html",
                                           entries=entries(actor.id, limit=5, unread_only=True)))
    # The sales funnel (issue 6).
    from crm_core.funnel.views import dashboard_widget

    return notifications + (dashboard_widget(actor) or Markup(""))


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
        items.append(MenuItem("assignment.proposals", _l("Assignments"), order=95, group="tools"))
    if user_id is not None:
        permissions = [engine().object_permissions(user_id, name) for name in ("account", "contact", "lead")]
        if any(p.read for p in permissions):
            items.append(MenuItem("duplicates.groups", _l("Duplicates"), order=130, group="tools"))
        if any(p.read and p.edit for p in permissions):
            items.append(MenuItem("transfers.transfer", _l("Transfer records"), order=140, group="tools"))
    if user_id is not None and engine().has_permission(user_id, "webforms.manage"):
        items.append(MenuItem("webforms.list", _l("Web forms"), order=150, group="admin"))
    if user_id is not None and any(engine().object_permissions(user_id, name).create
                                   for name in ("account", "contact", "lead")):
        items.append(MenuItem("imports.list", _l("Import"), order=160, group="tools"))
    # The sales funnel and the currency rates (issue 6).
    if user_id is not None and engine().object_permissions(user_id, "opportunity").read:
        items.append(MenuItem("funnel.funnel", _l("Funnel"), order=10, group="reports"))
    if user_id is not None and engine().has_permission(user_id, "currency_rates.manage"):
        items.append(MenuItem("currency_rates.list", _l("Currency rates"), order=935, group="admin"))
    if getattr(actor, "is_admin", False):
        items.append(MenuItem("users.list", _l("Users"), order=900, group="admin"))
        items.append(MenuItem("org.overview", _l("Organisation"), order=910, group="admin"))
        items.append(MenuItem("custom_fields.list", _l("Custom fields"), order=920, group="admin"))
    # -- stage gates (issue 6) --
    if user_id is not None and engine().has_permission(user_id, "opportunities.configure"):
        items.append(MenuItem("stage_gates.overview", _l("Stage gates"), order=930, group="admin"))
    if user_id is not None:
        items.append(MenuItem("segments.list", _l("Segments"), order=125, group="tools"))
    # -- approvals: the inbox, with the count waiting for the user
    if user_id is not None:
        from crm_core.approvals.views import menu_label

        items.append(MenuItem("approvals.inbox", menu_label(), order=96, group="tools"))
    items.extend(_opportunity_menu_items(user_id))
    return items + _analysis_menu_items(user_id)


def _opportunity_menu_items(user_id):
    """Opportunities and their board for readers of opportunities; the pipelines' settings
    for holders of opportunities.configure."""
    from flask_babel import lazy_gettext as _l

    from crm_core.permissions import engine
    from crm_core.web.slots import MenuItem

    if user_id is None:
        return []
    items = []
    if engine().object_permissions(user_id, "opportunity").read:
        items += [MenuItem("opportunities.list", _l("Opportunities"), order=80),
                  MenuItem("opportunities.board", _l("Board"), order=85)]
    if engine().has_permission(user_id, "opportunities.configure"):
        items.append(MenuItem("pipelines.list", _l("Pipelines"), order=925, group="admin"))
    return items


@hookimpl
def crm_register_tasks(app):
    from huey import crontab

    from crm_core.jobs import TaskSpec
    from crm_core.users.maintenance import purge_sign_in_records

    from crm_core.imports.services import run_import
    from crm_core.recycle.services import purge_expired
    from crm_core.duplicates.scan import scan as scan_duplicates
    from crm_core.duplicates.keys import store_name_keys

    from crm_core.notifications.services import send_pending_emails
    from crm_core.db import refresh_statistics

    return [TaskSpec("purge_sign_in_records", purge_sign_in_records,
                     schedule=crontab(minute="17", hour="3")),
            TaskSpec("purge_recycle_bin", purge_expired, schedule=crontab(minute="37", hour="3")),
            TaskSpec("run_import", run_import),
            TaskSpec("scan_duplicates", scan_duplicates),
            # After a bulk import: the name keys of its new records.
            TaskSpec("store_name_keys", store_name_keys),
            # Queued after each change that notifies; the sweep sends what a change made
            # inside a longer transaction (or what failed and waits for another try).
            TaskSpec("send_notification_emails", send_pending_emails),
            TaskSpec("send_notification_emails_sweep", send_pending_emails, schedule=crontab()),
            TaskSpec("refresh_planner_statistics", refresh_statistics, schedule=crontab(minute="7"))
            ] + _analysis_tasks()


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
                       roles=("sales_manager",)),
            Permission("opportunities.configure",
                       _l("Configure pipelines, stages, lost reasons and stage gates"),
                       roles=("sales_manager",)),
            Permission("approvals.manage", _l("Manage approval policies"), roles=("administrator",)),
            # The currency rates the funnel converts with (issue 6).
            Permission("currency_rates.manage", _l("Manage currency rates"), roles=("administrator",))]


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


# -- stage gates (issue 6) -------------------------------------------------------------------------

@hookimpl
def crm_register_stage_requirements(app):
    from crm_core.stagegates.kinds import core_kinds

    return core_kinds()


@hookimpl
def crm_stage_transition_check(app, actor_id, opportunity, from_stage, to_stage, values):
    """The company's configured stage gates."""
    from crm_core.stagegates.services import unmet

    return unmet(opportunity, from_stage, to_stage, values)


# -- approvals --------------------------------------------------------------------------------

@hookimpl
def crm_register_approval_kinds(app):
    from crm_core.approvals.opportunity import kind

    return [kind()]


@hookimpl
def crm_record_ext(app, actor, object, records):
    """The ``approval`` part: a record's pending change."""
    from crm_core.approvals.ext import approval_part

    return approval_part(actor, object, records)


# -- analysis (issue 6, item 7): reports, stage history, daily pipeline snapshots -------------------

def _analysis_models():
    from crm_core.analysis.models import PipelineSnapshot

    return [PipelineSnapshot]


def _analysis_blueprints():
    from crm_core.analysis.views import blueprint as analysis

    return [analysis]


def _analysis_api_blueprints():
    from crm_core.analysis.api import blueprint as analysis, history_blueprint as stage_history

    return [analysis, stage_history]


def _analysis_record_panel(actor, context):
    if context.get("object") != "opportunity":
        return None
    from crm_core.analysis.views import stage_history_panel

    return stage_history_panel(actor, context.get("record"))


def _analysis_menu_items(user_id):
    from flask_babel import lazy_gettext as _l

    from crm_core.permissions import engine
    from crm_core.web.slots import MenuItem

    if user_id is None or not engine().object_permissions(user_id, "opportunity").read:
        return []
    return [MenuItem("analysis.pipeline", _l("Pipeline analysis"), order=20, group="reports"),
            MenuItem("analysis.lost_deals", _l("Lost deals"), order=30, group="reports"),
            MenuItem("analysis.velocity", _l("Velocity"), order=40, group="reports"),
            MenuItem("analysis.trend", _l("Trend"), order=50, group="reports")]


def _analysis_tasks():
    from huey import crontab

    from crm_core.analysis.snapshots import daily_snapshot
    from crm_core.jobs import TaskSpec

    # Early in the UTC morning: the snapshot is how the pipeline stood when the day began.
    return [TaskSpec("snapshot_pipeline", daily_snapshot, schedule=crontab(minute="5", hour="0"))]


@hookimpl
def crm_register_report_dimensions(app):
    from crm_core.analysis.dimensions import core_dimensions

    return core_dimensions()
