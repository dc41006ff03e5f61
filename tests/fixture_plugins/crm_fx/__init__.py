"""Fixture plugin ``fx``: two record types under the access rules (an account-like parent
and a contact-like child), so the engine can be proven before the business objects exist."""

from crm_core import PluginManifest, hookimpl

manifest = PluginManifest(name="fx", label="Access fixtures", version="1.0")


@hookimpl
def crm_register_models(app):
    from crm_fx.models import FxAccount, FxContact

    return [FxAccount, FxContact]


@hookimpl
def crm_register_migrations(app):
    return "crm_fx.migrations"


@hookimpl
def crm_register_access_objects(app):
    from crm_core.permissions import AccessObject, ChildLink
    from crm_fx.models import FxAccount, FxContact

    return [AccessObject("fx_account", FxAccount, "Account",
                         children=(ChildLink("fx_contact", "account_id"),)),
            AccessObject("fx_contact", FxContact, "Contact")]


@hookimpl
def crm_register_api_blueprints(app):
    from crm_fx.api import blueprint

    return [blueprint]


@hookimpl
def crm_register_permissions(app):
    from crm_core.permissions import Permission

    return [Permission("fx.reassign", "Reassign accounts in bulk", roles=("sales_manager",))]
