"""The hooks the territory plugin offers (crm_territory/hookspecs.py), as a plugin that keeps
quotas per territory would use them: each is called with what the README says, inside
the change's transaction, and an exception rolls the change back."""

import types

import pytest
from flask import g

from crm_core import PluginManifest, hookimpl
from crm_core.accounts import services as accounts
from crm_core.testing import make_user
from crm_territory import realign, services
from crm_territory.models import TerritoryMember, TerritoryModel, TerritoryRealignment

pytestmark = pytest.mark.crm_plugins("territory")


class Listener:
    """A plugin that requires territory and records every call (or fails on demand)."""

    def __init__(self):
        self.calls = []
        self.fail = None
        module = types.ModuleType("crm_quota_listener")
        module.manifest = PluginManifest(name="quota_listener", label="Quota listener", version="1.0",
                                         requires=("territory",))
        listener = self

        def record(name, **kwargs):
            if listener.fail == name:
                raise RuntimeError(f"{name} refused")
            listener.calls.append((name, kwargs))

        @hookimpl
        def crm_territory_model_activated(app, model, previous, actor_id):
            record("activated", model=model.id, previous=previous.id if previous else None,
                   state=TerritoryModel.get_by_id(model.id).state, actor_id=actor_id)

        @hookimpl
        def crm_territory_members_changed(app, territory, added, removed, actor_id):
            record("members", territory=territory.id, added=added, removed=removed, actor_id=actor_id)

        @hookimpl
        def crm_territory_realigned(app, model, moved, actor_id):
            record("realigned", model=model.id, moved=sorted(moved), actor_id=actor_id)

        module.crm_territory_model_activated = crm_territory_model_activated
        module.crm_territory_members_changed = crm_territory_members_changed
        module.crm_territory_realigned = crm_territory_realigned
        self.module = module


@pytest.fixture
def listener(register_plugin):
    found = Listener()
    register_plugin(found.module)
    return found


def test_hook_crm_territory_model_activated(listener, app):
    admin = make_user(is_admin=True)
    first = services.create_model("2026")
    services.activate_model(first, actor_id=admin.id)
    second = services.create_model("2027")
    services.activate_model(second, actor_id=admin.id)
    assert listener.calls == [
        ("activated", {"model": first.id, "previous": None, "state": "active", "actor_id": admin.id}),
        ("activated", {"model": second.id, "previous": first.id, "state": "active", "actor_id": admin.id})]
    # A listener that refuses rolls the switch-over back: the old model stays active.
    listener.fail = "activated"
    third = services.create_model("2028")
    with pytest.raises(RuntimeError, match="activated refused"):
        services.activate_model(third, actor_id=admin.id)
    assert TerritoryModel.get_by_id(second.id).state == "active"
    assert TerritoryModel.get_by_id(third.id).state == "planning"


def test_hook_crm_territory_members_changed(listener, app):
    admin, rep = make_user(is_admin=True), make_user("rep@example.com", "Rep")
    model = services.create_model("2026")
    south = services.create_territory(model.id, "South Vietnam")
    services.add_member(south, rep.id, actor_id=admin.id)
    services.remove_member(south, rep.id, actor_id=admin.id)
    services.remove_member(south, rep.id, actor_id=admin.id)  # not a member: nothing to announce
    assert listener.calls == [
        ("members", {"territory": south.id, "added": [rep.id], "removed": [], "actor_id": admin.id}),
        ("members", {"territory": south.id, "added": [], "removed": [rep.id], "actor_id": admin.id})]
    listener.fail = "members"
    with pytest.raises(RuntimeError):
        services.add_member(south, rep.id, actor_id=admin.id)
    assert not TerritoryMember.select().where(TerritoryMember.user_id == rep.id).exists()
    # The refusal left nothing behind; a removal is rolled back the same way.
    listener.fail = None
    services.add_member(south, rep.id, actor_id=admin.id)
    listener.fail = "members"
    with pytest.raises(RuntimeError):
        services.remove_member(south, rep.id, actor_id=admin.id)
    assert TerritoryMember.select().where(TerritoryMember.user_id == rep.id).exists()


def test_hook_crm_territory_realigned(listener, app):
    admin = make_user(is_admin=True)
    model = services.create_model("2027")
    world = services.create_territory(model.id, "World")
    vietnam = services.create_territory(model.id, "Vietnam", parent_id=world.id, criteria={"country": ["VN"]})
    g.pop("_crm_access", None)
    hanoi = accounts.create_account({"name": "Hà Nội Steel", "country": "VN"}, actor_id=admin.id)
    warsaw = accounts.create_account({"name": "Warszawa Stal", "country": "PL"}, actor_id=admin.id)
    listener.calls.clear()
    # Both were placed as they were written; the plan changes: Poland gets a territory.
    poland = services.create_territory(model.id, "Poland", parent_id=world.id, criteria={"country": ["PL"]})
    run = realign.start(model, admin.id)
    assert TerritoryRealignment.get_by_id(run.id).state == "applied"
    assert listener.calls == [("realigned", {"model": model.id, "moved": [("account", warsaw.id, world.id, poland.id)],
                                             "actor_id": admin.id})]
    # A listener that refuses marks the run failed (the job runs inline in the tests; the
    # worker logs the error).
    listener.calls.clear()
    listener.fail = "realigned"
    realign.start(model, admin.id)
    assert TerritoryRealignment.select().order_by(TerritoryRealignment.id.desc()).first().state == "failed"
