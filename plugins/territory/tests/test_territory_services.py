"""The rules of territory models, territories and members (crm_territory.services):
what a change may be, and that a refused change writes nothing."""

import json

import pytest

from crm_core.errors import UserError, VersionConflict
from crm_core.org import services as org
from crm_core.testing import make_user
from crm_territory import services
from crm_territory.models import Territory, TerritoryMember, TerritoryModel, TerritoryRecord


@pytest.fixture
def plan(app):
    """A planning model with World > Asia > Vietnam > South Vietnam and World > Europe > Poland."""
    model = services.create_model("2027")
    world = services.create_territory(model.id, "World")
    asia = services.create_territory(model.id, "Asia", parent_id=world.id)
    vietnam = services.create_territory(model.id, "Vietnam", parent_id=asia.id, criteria={"country": ["vn"]})
    south = services.create_territory(model.id, "South Vietnam", parent_id=vietnam.id, access_level="read")
    europe = services.create_territory(model.id, "Europe", parent_id=world.id)
    poland = services.create_territory(model.id, "Poland", parent_id=europe.id, criteria={"country": ["PL"]})
    return {"model": model, "world": world, "asia": asia, "vietnam": vietnam, "south": south,
            "europe": europe, "poland": poland}


def refused(call, *args, **kwargs):
    with pytest.raises(UserError) as caught:
        call(*args, **kwargs)
    return caught.value


# -- models ------------------------------------------------------------------------------------------

def test_a_new_model_is_planned_and_activation_switches_over(plan):
    first = plan["model"]
    assert first.state == "planning" and services.active_model() is None
    services.activate_model(first)
    assert services.active_model().id == first.id and first.activated_at is not None
    second = services.create_model("2028")
    services.activate_model(second, expected_version=second.version)
    states = {m.id: m.state for m in TerritoryModel.select()}
    assert states == {first.id: "archived", second.id: "active"}
    assert services.active_model().id == second.id


def test_only_a_planning_model_is_activated(plan):
    services.activate_model(plan["model"])
    assert refused(services.activate_model, plan["model"]).code == "stale"  # already active: 409
    newer = services.create_model("2028")
    services.activate_model(newer)
    archived = TerritoryModel.get_by_id(plan["model"].id)
    assert refused(services.activate_model, archived).field == "state"
    assert TerritoryModel.get_by_id(newer.id).state == "active"


def test_activation_with_a_stale_version_changes_nothing(plan):
    services.activate_model(plan["model"])
    newer = services.create_model("2028")
    with pytest.raises(VersionConflict):
        services.activate_model(newer, expected_version=newer.version + 1)
    assert services.active_model().id == plan["model"].id
    assert TerritoryModel.get_by_id(newer.id).state == "planning"


def test_model_names_and_unknown_fields_are_checked(app):
    assert set(refused(services.create_model, "  ").fields) == {"name"}
    assert "name" in refused(services.create_model, "x" * 201).fields
    model = services.create_model("Plan")
    assert set(refused(services.update_model, model, {"state": "active"}).fields) == {"state"}
    services.update_model(model, {"name": " Plan B ", "description": "next year"})
    assert (model.name, model.description, model.version) == ("Plan B", "next year", 2)
    with pytest.raises(VersionConflict):
        services.update_model(model, {"name": "C"}, expected_version=1)


def test_the_active_model_cannot_be_deleted_an_archived_one_can_with_everything_in_it(plan):
    rep = make_user()
    services.activate_model(plan["model"])
    assert refused(services.delete_model, plan["model"]).field == "state"
    services.add_member(plan["south"], rep.id)
    TerritoryRecord.create(model_id=plan["model"].id, object="account", record_id=1,
                           territory_id=plan["south"].id)
    services.activate_model(services.create_model("2028"))
    archived = services.get_model(plan["model"].id)
    services.delete_model(archived, expected_version=archived.version)
    assert services.get_model(plan["model"].id) is None
    assert not Territory.alive().where(Territory.model_id == plan["model"].id).exists()
    assert not TerritoryMember.select().exists() and not TerritoryRecord.select().exists()


# -- territories -------------------------------------------------------------------------------------

def test_a_territory_is_checked_field_by_field_and_nothing_is_written(plan):
    before = Territory.select().count()
    error = refused(services.create_territory, plan["model"].id, "", parent_id=999999,
                    criteria={"country": "VN", "colour": ["red"]}, access_level="write",
                    manager_id=999999, position=-1)
    assert set(error.fields) == {"name", "parent_id", "criteria.country", "criteria.colour",
                                 "access_level", "manager_id", "position"}
    assert error.code == "invalid"
    assert Territory.select().count() == before
    assert "model_id" in refused(services.create_territory, 999999, "Nowhere").fields


def test_criteria_are_stored_clean(plan):
    assert json.loads(Territory.get_by_id(plan["vietnam"].id).criteria) == {"country": ["VN"]}
    assert services.criteria_of(plan["world"]) == {}


def test_the_parent_must_be_in_the_same_model(plan):
    other = services.create_model("Other")
    error = refused(services.create_territory, other.id, "Asia", parent_id=plan["world"].id)
    assert error.fields["parent_id"] == services._l("The parent must be a territory of the same model.")


def test_names_are_unique_among_siblings_only(plan):
    error = refused(services.create_territory, plan["model"].id, "asia ", parent_id=plan["world"].id)
    assert error.code == "duplicate" and set(error.fields) == {"name"}
    # The same name elsewhere in the tree is fine.
    services.create_territory(plan["model"].id, "Asia", parent_id=plan["europe"].id)
    error = refused(services.update_territory, plan["poland"], {"parent_id": plan["world"].id, "name": "Asia"})
    assert error.code == "duplicate"


def test_a_territory_cannot_move_under_itself(plan):
    for target in ("asia", "vietnam", "south"):
        error = refused(services.update_territory, plan["asia"], {"parent_id": plan[target].id})
        assert set(error.fields) == {"parent_id"}
    assert Territory.get_by_id(plan["asia"].id).parent_id == plan["world"].id
    services.update_territory(plan["vietnam"], {"parent_id": plan["europe"].id})
    assert services.path_of(plan["south"]) == ["World", "Europe", "Vietnam", "South Vietnam"]


def test_the_manager_must_be_an_active_user(plan):
    gone = make_user()
    gone.active = False
    gone.save()
    boss = make_user()
    error = refused(services.update_territory, plan["asia"], {"manager_id": gone.id})
    assert set(error.fields) == {"manager_id"}
    services.update_territory(plan["asia"], {"manager_id": boss.id, "access_level": "read"},
                              expected_version=plan["asia"].version)
    assert (plan["asia"].manager_id, plan["asia"].access_level) == (boss.id, "read")
    assert set(refused(services.update_territory, plan["asia"], {"model_id": 3}).fields) == {"model_id"}


def test_a_stale_version_changes_no_territory(plan):
    with pytest.raises(VersionConflict):
        services.update_territory(plan["asia"], {"name": "Asia-Pacific"}, expected_version=7)
    assert Territory.get_by_id(plan["asia"].id).name == "Asia"


def test_deleting_a_territory_with_children_or_hand_placed_records_is_refused(plan):
    assert refused(services.delete_territory, plan["vietnam"]).code == "has_children"
    TerritoryRecord.create(model_id=plan["model"].id, object="account", record_id=5,
                           territory_id=plan["south"].id, source="manual")
    assert refused(services.delete_territory, plan["south"]).code == "has_children"
    assert services.get_territory(plan["south"].id) is not None


def test_deleting_a_leaf_is_soft_and_takes_its_members_and_rule_placements(plan):
    rep = make_user()
    services.add_member(plan["poland"], rep.id)
    TerritoryRecord.create(model_id=plan["model"].id, object="account", record_id=5,
                           territory_id=plan["poland"].id, source="rule")
    services.delete_territory(plan["poland"], expected_version=plan["poland"].version)
    assert services.get_territory(plan["poland"].id) is None
    assert Territory.get_by_id(plan["poland"].id).deleted_at is not None
    assert not TerritoryMember.select().exists() and not TerritoryRecord.select().exists()
    # A deleted sibling's name is free again.
    services.create_territory(plan["model"].id, "Poland", parent_id=plan["europe"].id)


def test_an_archived_model_is_frozen(plan):
    services.activate_model(plan["model"])
    services.activate_model(services.create_model("2028"))
    assert "model_id" in refused(services.create_territory, plan["model"].id, "Mars").fields
    assert "_schema" in refused(services.update_territory, plan["asia"], {"name": "Asie"}).fields
    assert refused(services.delete_territory, plan["south"]).field == "_schema"
    assert "_schema" in refused(services.add_member, plan["south"], make_user().id).fields


# -- members -----------------------------------------------------------------------------------------

def test_one_territory_per_rep_per_model(plan):
    rep = make_user()
    services.add_member(plan["south"], rep.id)
    error = refused(services.add_member, plan["poland"], rep.id)
    assert error.code == "duplicate" and "South Vietnam" in str(error.message)
    assert refused(services.add_member, plan["south"], rep.id).code == "duplicate"
    # Another model is another alignment.
    other = services.create_model("2028")
    services.add_member(services.create_territory(other.id, "World"), rep.id)
    assert TerritoryMember.select().where(TerritoryMember.user_id == rep.id).count() == 2


def test_several_territories_per_rep_when_the_setting_says_so(app_factory):
    app = app_factory(CRM_PLUGIN_CONFIG={"territory": {"several_territories_per_rep": True}})
    with app.app_context():
        model = services.create_model("2027")
        a = services.create_territory(model.id, "A")
        b = services.create_territory(model.id, "B")
        rep = make_user()
        services.add_member(a, rep.id)
        services.add_member(b, rep.id)
        assert services.territories_of_user(rep.id, model.id)["member"] == [a.id, b.id]


def test_a_member_must_be_an_active_user(plan):
    assert set(refused(services.add_member, plan["south"], 999999).fields) == {"user_id"}
    assert set(refused(services.add_member, plan["south"], "7").fields) == {"user_id"}
    assert not TerritoryMember.select().exists()


def test_remove_member(plan):
    rep = make_user()
    services.add_member(plan["south"], rep.id)
    assert services.remove_member(plan["south"], rep.id) is True
    assert services.remove_member(plan["south"], rep.id) is False
    services.add_member(plan["poland"], rep.id)  # free for another territory again


def test_who_may_manage_members(plan):
    admin = make_user(is_admin=True)
    boss, rep, stranger = make_user(), make_user(), make_user()
    org.set_roles(rep, ["sales_rep"])
    org.set_roles(stranger, ["sales_manager"])
    services.update_territory(plan["asia"], {"manager_id": boss.id})
    assert services.may_manage_members(admin.id, plan["poland"])
    assert services.may_manage_members(boss.id, plan["asia"])
    assert services.may_manage_members(boss.id, plan["south"])
    assert not services.may_manage_members(boss.id, plan["poland"])
    assert not services.may_manage_members(boss.id, plan["world"])
    assert not services.may_manage_members(rep.id, plan["south"])
    assert not services.may_manage_members(stranger.id, plan["south"])


# -- lookups -----------------------------------------------------------------------------------------

def test_tree_subtree_path_and_the_territories_of_a_user(plan):
    tree = services.tree(plan["model"].id)
    assert tree.roots == [plan["world"].id]
    assert set(tree.subtree(plan["asia"].id)) == {plan["asia"].id, plan["vietnam"].id, plan["south"].id}
    assert tree.subtree(123456) == []
    assert tree.path(plan["south"].id) == ["World", "Asia", "Vietnam", "South Vietnam"]
    assert services.subtree_ids(plan["south"]) == [plan["south"].id]
    rep, boss = make_user(), make_user()
    services.add_member(plan["south"], rep.id)
    services.update_territory(plan["europe"], {"manager_id": boss.id})
    # No active model yet: nobody is anywhere.
    assert services.territories_of_user(rep.id) == {"member": [], "manager": []}
    services.activate_model(plan["model"])
    assert services.territories_of_user(rep.id) == {"member": [plan["south"].id], "manager": []}
    assert services.territories_of_user(boss.id) == {"member": [], "manager": [plan["europe"].id]}
