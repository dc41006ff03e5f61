"""Placement (crm_territory.placement): the deepest matching territory, placing records as
they are written and merged, placing by hand (API), and the "territory" assignment target."""

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.customfields import services as custom_fields
from crm_core.leads import services as leads
from crm_core.org import services as org
from crm_core.testing import api_client, make_user
from crm_core.users.services import set_active
from crm_territory import placement, services
from crm_territory.models import TerritoryRecord

API = "/api/v1/plugins/territory"


@pytest.fixture
def plan(app):
    """A planning model: World > Asia > Vietnam > (North Vietnam, South Vietnam), World > Europe > Poland
    (by postal code and head count below), and a second root "Industry" that nothing reaches
    (World, before it, matches everything)."""
    model = services.create_model("2027")
    t = {"model": model}
    t["world"] = services.create_territory(model.id, "World")
    t["industry"] = services.create_territory(model.id, "Industry", position=5, criteria={"industry": ["Retail"]})
    t["asia"] = services.create_territory(model.id, "Asia", parent_id=t["world"].id,
                                          criteria={"country": ["VN", "CN"]})
    t["vietnam"] = services.create_territory(model.id, "Vietnam", parent_id=t["asia"].id, criteria={"country": ["vn"]})
    # South comes first by position although created after North.
    t["north"] = services.create_territory(model.id, "North Vietnam", parent_id=t["vietnam"].id, position=2,
                                           criteria={"region": ["Hà Nội", "Hải Phòng"]})
    t["south"] = services.create_territory(model.id, "South Vietnam", parent_id=t["vietnam"].id, position=1,
                                           criteria={"region": ["hồ chí minh"]})
    t["europe"] = services.create_territory(model.id, "Europe", parent_id=t["world"].id, position=1,
                                            criteria={"country": ["PL", "DE"]})
    t["poland"] = services.create_territory(model.id, "Poland", parent_id=t["europe"].id, criteria={"country": ["PL"]})
    t["warsaw"] = services.create_territory(model.id, "Warsaw, large", parent_id=t["poland"].id,
                                            criteria={"postal_code": [["00-001", "04-999"]],
                                                      "employees": {"min": 100}})
    return t


def written(app, object_name, ids, fields=None, actor_id=None):
    """What the core does after a write (H1 wires the call sites): announce the records."""
    app.extensions["crm"].pm.hook.crm_records_written(app=app, actor_id=actor_id, object=object_name,
                                                      ids=list(ids), fields=fields)


def account(app, owner=None, announce=True, **values):
    owner = owner or make_user()
    record = accounts.create_account({"name": values.pop("name", "Công ty"), **values}, actor_id=owner.id)
    if announce:
        written(app, "account", [record.id])
    return record


def behind_the_back(record, **values):
    """Change a record's stored values without announcing it (as a script writing SQL would):
    only the crm_records_written call the test makes moves it."""
    type(record).update(**values).where(type(record).id == record.id).execute()


def where(model_id, object_name, record_id):
    row = placement.placement_of(model_id, object_name, record_id)
    return (row.territory_id, row.source) if row is not None else None


# -- the placer ----------------------------------------------------------------------------------------------

def test_the_deepest_matching_territory_of_the_first_matching_branch_wins(plan):
    placer = placement.Placer(plan["model"].id, "account")
    assert placer.place({"country": "VN", "region": "Hồ Chí Minh"}) == plan["south"].id
    assert placer.place({"country": "vn", "region": " hà nội "}) == plan["north"].id
    assert placer.place({"country": "VN", "region": "Đà Nẵng"}) == plan["vietnam"].id  # no child matches
    assert placer.place({"country": "CN"}) == plan["asia"].id
    assert placer.place({"country": "PL", "postal_code": "02-495", "employees": 250}) == plan["warsaw"].id
    assert placer.place({"country": "PL", "postal_code": "02-495", "employees": 20}) == plan["poland"].id
    assert placer.place({"country": "US", "industry": "Retail"}) == plan["world"].id  # World first, Industry never
    assert placer.path(plan["south"].id) == ["World", "Asia", "Vietnam", "South Vietnam"]


def test_a_remembered_combination_gives_the_same_territory(plan):
    placer = placement.Placer(plan["model"].id, "account")
    assert placer.key_fields == ("country", "employees", "industry", "postal_code", "region")
    for _ in range(2):  # the second time from memory
        assert placer.place({"country": "VN", "region": "Hà Nội", "name": "A"}) == plan["north"].id
        assert placer.place({"country": "VN", "region": "Hà Nội", "name": "B", "phone": "1"}) == plan["north"].id
        assert placer.place({"country": "VN", "region": "Huế"}) == plan["vietnam"].id
        assert placer.place({"country": ["VN"]}) == plan["world"].id  # not a key: walked, matches no country
    custom_fields.create_field({"object": "account", "key": "interests", "type": "multi_choice",
                                "labels": {"en": "Interests"}, "choices": ["tennis", "golf"]})
    tennis = services.create_territory(plan["model"].id, "Tennis", parent_id=plan["poland"].id,
                                       criteria={"custom.interests": ["tennis"]})
    with_custom = placement.Placer(plan["model"].id, "account")
    assert with_custom.key_fields is None  # custom values may be lists: never remembered
    for _ in range(2):
        assert with_custom.place({"country": "PL", "custom": {"interests": ["golf", "tennis"]}}) == tennis.id
        assert with_custom.place({"country": "PL", "custom": {"interests": ["golf"]}}) == plan["poland"].id


def test_no_matching_root_places_nowhere(plan):
    services.update_territory(plan["world"], {"criteria": {"country": ["VN", "PL", "CN", "DE"]}})
    placer = placement.Placer(plan["model"].id, "account")
    assert placer.place({"country": "US"}) is None
    assert placer.place({"country": "US", "industry": "retail"}) == plan["industry"].id
    assert placer.place({}) is None


def test_a_lead_is_not_tested_on_a_field_it_does_not_have(plan):
    placer = placement.Placer(plan["model"].id, "lead")
    # Leads have no postal code or head count: the Warsaw criteria only test what they have.
    assert placer.place({"country": "PL"}) == plan["warsaw"].id
    with pytest.raises(ValueError):
        placement.Placer(plan["model"].id, "contact")


def test_deleted_territories_place_nothing(plan):
    services.delete_territory(plan["north"])
    placer = placement.Placer(plan["model"].id, "account")
    assert placer.place({"country": "VN", "region": "Hà Nội"}) == plan["vietnam"].id


# -- placing written records -----------------------------------------------------------------------------------

def test_a_created_record_is_placed_in_every_planning_and_active_model(app, plan):
    active = services.create_model("2026")
    services.create_territory(active.id, "Everyone")
    services.activate_model(active)
    archived = services.create_model("2025")
    services.create_territory(archived.id, "Old world")
    TerritoryModelRow = type(archived)
    TerritoryModelRow.update(state="archived").where(TerritoryModelRow.id == archived.id).execute()
    record = account(app, country="VN", region="Hồ Chí Minh")
    assert where(plan["model"].id, "account", record.id) == (plan["south"].id, "rule")
    everyone = services.territories_of_model(active.id).first()
    assert where(active.id, "account", record.id) == (everyone.id, "rule")
    assert where(archived.id, "account", record.id) is None  # archived models are frozen


def test_a_change_of_a_field_the_criteria_read_moves_the_record(app, plan):
    record = account(app, country="VN", region="Hồ Chí Minh", phone="1")
    behind_the_back(record, region="Hà Nội", phone="2")
    written(app, "account", [record.id], {"phone"})  # not read by any criteria: nothing happens
    assert where(plan["model"].id, "account", record.id) == (plan["south"].id, "rule")
    written(app, "account", [record.id], {"region", "phone"})
    assert where(plan["model"].id, "account", record.id) == (plan["north"].id, "rule")
    behind_the_back(record, country="US")
    services.update_territory(plan["world"], {"criteria": {"country": ["VN", "PL"]}})
    written(app, "account", [record.id], {"country"})
    assert where(plan["model"].id, "account", record.id) is None  # no territory takes it any more


def test_a_custom_field_the_criteria_read_counts_as_a_change(app, plan):
    custom_fields.create_field({"object": "account", "key": "segment", "type": "choice",
                                "labels": {"en": "Segment"}, "choices": ["smb", "enterprise"]})
    key_accounts = services.create_territory(plan["model"].id, "Key accounts", parent_id=plan["vietnam"].id,
                                             criteria={"custom.segment": ["enterprise"]})
    record = account(app, country="VN", region="Đà Nẵng")
    assert where(plan["model"].id, "account", record.id) == (plan["vietnam"].id, "rule")
    behind_the_back(record, custom={"segment": "enterprise"})
    written(app, "account", [record.id], {"custom.other"})  # not read by any criteria
    assert where(plan["model"].id, "account", record.id) == (plan["vietnam"].id, "rule")
    written(app, "account", [record.id], {"custom.segment"})
    assert where(plan["model"].id, "account", record.id) == (key_accounts.id, "rule")
    behind_the_back(record, custom={"segment": "smb"})
    written(app, "account", [record.id], {"custom"})  # a writer that did not say which value changed
    assert where(plan["model"].id, "account", record.id) == (plan["vietnam"].id, "rule")


def test_an_import_batch_is_placed_in_bulk(app, plan):
    owner = make_user()
    ids = [account(app, owner=owner, announce=False, name=f"Firma {i}", country="PL",
                   postal_code=f"0{i % 9}-100", employees=50 + 10 * i).id for i in range(30)]
    ids += [leads.create_lead({"last_name": f"Lê {i}", "country": "VN", "region": "Hải Phòng"},
                              actor_id=owner.id).id for i in range(3)]
    written(app, "account", ids[:30])
    written(app, "lead", ids[30:])
    rows = {r.record_id: r.territory_id for r in TerritoryRecord.select().where(TerritoryRecord.object == "account")}
    assert len(rows) == 30
    for i, record_id in enumerate(ids[:30]):
        large_warsaw = i % 9 <= 4 and 50 + 10 * i >= 100
        assert rows[record_id] == (plan["warsaw"].id if large_warsaw else plan["poland"].id)
    assert {where(plan["model"].id, "lead", i) for i in ids[30:]} == {(plan["north"].id, "rule")}


def test_contacts_and_opportunities_need_nothing(app, plan):
    record = account(app, owner=make_user(is_admin=True), country="VN")
    contact = accounts.create_contact({"account_id": record.id, "last_name": "Nguyễn"}, actor_id=record.owner_id)
    before = TerritoryRecord.select().count()
    written(app, "contact", [contact.id])
    written(app, "opportunity", [1], {"amount"})
    assert TerritoryRecord.select().count() == before


def test_a_manual_placement_survives_later_writes(app, plan):
    record = account(app, country="VN", region="Hà Nội")
    placement.place_by_hand("account", record.id, plan["poland"])
    written(app, "account", [record.id], {"region"})
    written(app, "account", [record.id])
    assert where(plan["model"].id, "account", record.id) == (plan["poland"].id, "manual")


def test_a_failing_placement_rolls_the_write_back(app, plan, monkeypatch):
    from crm_core.db import database

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(placement, "write", broken)
    from crm_core.accounts.models import Account

    owner = make_user()
    with pytest.raises(RuntimeError):
        with database.atomic():
            # Once the core announces its writes, the placement fails inside create_account.
            record = account(app, owner=owner, announce=False, country="VN")
            written(app, "account", [record.id])
    assert not Account.select().exists() and not TerritoryRecord.select().exists()


# -- merges ---------------------------------------------------------------------------------------------------

def test_a_merged_account_leaves_every_model_and_the_survivor_keeps_its_own(app, plan):
    from crm_core.duplicates.merge import merge

    admin = make_user(is_admin=True)
    survivor = account(app, owner=admin, name="Minh An", country="VN", region="Hồ Chí Minh")
    other = account(app, owner=admin, name="Minh An Co", country="PL")
    placement.place_by_hand("account", survivor.id, plan["asia"])
    merge("account", survivor, other, actor_id=admin.id)
    assert where(plan["model"].id, "account", other.id) is None
    assert where(plan["model"].id, "account", survivor.id) == (plan["asia"].id, "manual")


def test_a_merged_lead_leaves_every_model(app, plan):
    from crm_core.duplicates.merge import merge

    admin = make_user(is_admin=True)
    survivor = leads.create_lead({"last_name": "Trần", "country": "VN"}, actor_id=admin.id)
    other = leads.create_lead({"last_name": "Tran", "country": "PL"}, actor_id=admin.id)
    written(app, "lead", [survivor.id, other.id])
    merge("lead", survivor, other, actor_id=admin.id)
    assert where(plan["model"].id, "lead", other.id) is None
    assert where(plan["model"].id, "lead", survivor.id) == (plan["vietnam"].id, "rule")


# -- placing by hand (API) -----------------------------------------------------------------------------------

@pytest.fixture
def people(app):
    found = org_people()
    return found


def org_people():
    team = {"rep": make_user("rep@example.com", "Rep"), "boss": make_user("boss@example.com", "Boss"),
            "outsider": make_user("out@example.com", "Outsider"), "admin": make_user(is_admin=True)}
    for name in ("rep", "boss", "outsider"):
        org.set_roles(team[name], ["sales_rep"])
    sales = org.create_department("Sales", head=team["boss"].id)
    org.place_user(team["rep"], sales.id)
    org.place_user(team["boss"], sales.id)
    g.pop("_crm_access", None)
    return team


def test_an_administrator_places_a_record_by_hand_and_gives_it_back(app, plan, people):
    record = account(app, owner=people["rep"], country="VN", region="Hà Nội")
    admin = api_client(app, people["admin"])
    response = admin.put(f"{API}/records/account/{record.id}", json={"territory_id": plan["poland"].id})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["territory"] == {"id": plan["poland"].id, "name": "Poland"}
    assert body["path"] == ["World", "Europe", "Poland"] and body["source"] == "manual"
    assert body["model_id"] == plan["model"].id
    response = admin.delete(f"{API}/records/account/{record.id}", query_string={"model_id": plan["model"].id})
    assert response.status_code == 200
    assert response.get_json()["territory"]["id"] == plan["north"].id
    assert response.get_json()["source"] == "rule"
    # Not placed by hand any more: a second DELETE has nothing to remove.
    again = admin.delete(f"{API}/records/account/{record.id}", query_string={"model_id": plan["model"].id})
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "not_found"


def test_delete_defaults_to_the_active_model(app, plan, people):
    services.activate_model(plan["model"])
    record = account(app, owner=people["rep"], country="VN", region="Hà Nội")
    placement.place_by_hand("account", record.id, plan["poland"])
    response = api_client(app, people["admin"]).delete(f"{API}/records/account/{record.id}")
    assert response.status_code == 200 and response.get_json()["territory"]["id"] == plan["north"].id


def test_a_territory_manager_places_by_hand_in_their_subtree_only(app, plan, people):
    services.update_territory(plan["asia"], {"manager_id": people["boss"].id})
    record = account(app, owner=people["rep"], country="PL")
    boss = api_client(app, people["boss"])
    assert boss.put(f"{API}/records/account/{record.id}",
                    json={"territory_id": plan["south"].id}).status_code == 200
    refused = boss.put(f"{API}/records/account/{record.id}", json={"territory_id": plan["poland"].id})
    assert refused.status_code == 403
    assert where(plan["model"].id, "account", record.id) == (plan["south"].id, "manual")
    assert boss.delete(f"{API}/records/account/{record.id}",
                       query_string={"model_id": plan["model"].id}).status_code == 200


def test_placing_by_hand_needs_the_record_and_the_right(app, plan, people):
    record = account(app, owner=people["rep"], country="VN")
    body = {"territory_id": plan["south"].id}
    # The owner may read it, but manages no territory.
    rep = api_client(app, people["rep"])
    assert rep.put(f"{API}/records/account/{record.id}", json=body).status_code == 403
    # Someone who may not read it gets the answer of a missing record.
    outsider = api_client(app, people["outsider"])
    unseen = outsider.put(f"{API}/records/account/{record.id}", json=body)
    missing = outsider.put(f"{API}/records/account/999999", json=body)
    assert unseen.status_code == missing.status_code == 404
    assert unseen.get_json() == missing.get_json()
    assert where(plan["model"].id, "account", record.id) == (plan["vietnam"].id, "rule")


def test_placing_by_hand_refuses_bad_input(app, plan, people):
    record = account(app, owner=people["rep"], country="VN")
    admin = api_client(app, people["admin"])
    assert admin.put(f"{API}/records/contact/{record.id}", json={"territory_id": plan["south"].id}).status_code == 404
    response = admin.put(f"{API}/records/account/{record.id}", json={"territory_id": 987654},
                         headers={"Accept-Language": "pl"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["territory_id"] == ["Nie ma takiego regionu sprzedaży."]
    assert admin.put(f"{API}/records/account/{record.id}", json={}).status_code == 422
    assert admin.put(f"{API}/records/account/{record.id}",
                     json={"territory_id": plan["south"].id, "source": "manual"}).status_code == 422
    assert where(plan["model"].id, "account", record.id) == (plan["vietnam"].id, "rule")


def test_an_archived_model_is_frozen(app, plan, people):
    record = account(app, owner=people["rep"], country="VN")
    services.activate_model(plan["model"])
    services.activate_model(services.create_model("2028"))
    admin = api_client(app, people["admin"])
    response = admin.put(f"{API}/records/account/{record.id}", json={"territory_id": plan["poland"].id},
                         headers={"Accept-Language": "zh-TW"})
    assert response.status_code == 409
    assert response.get_json()["error"]["message"] == "已封存的模型已凍結：其紀錄歸屬無法變更。"
    assert where(plan["model"].id, "account", record.id) == (plan["vietnam"].id, "rule")


# -- the assignment target ---------------------------------------------------------------------------------------

@pytest.fixture
def active_plan(plan):
    services.activate_model(plan["model"])
    return plan


def test_the_target_is_registered_for_accounts_and_leads(app):
    targets = [t for result in app.extensions["crm"].pm.hook.crm_register_assignment_targets(app=app)
               for t in result]
    territory = next(t for t in targets if t.key == "territory")
    assert territory.objects == ("account", "lead") and str(territory.label) == "Territory"


def test_the_member_with_the_fewest_open_records_gets_it(app, active_plan):
    reps = [make_user(f"rep{i}@example.com") for i in range(3)]
    for rep in reps:
        services.add_member(active_plan["north"], rep.id) if rep is not reps[2] else None
    services.add_member(active_plan["south"], reps[2].id)
    first, second = reps[0], reps[1]
    # The first rep holds two open leads, the second one open lead and one converted.
    for owner, status in ((first, "new"), (first, "contacted"), (second, "qualified"), (second, "unqualified")):
        leads.create_lead({"last_name": "X", "status": status}, actor_id=owner.id)
    picker = placement.compile_picker("lead", 1)
    north = {"country": "VN", "region": "Hà Nội"}
    picks = [picker.pick(north) for _ in range(4)]
    # 2 vs 1 -> second; 2 vs 2 -> tie, lowest id (first); 3 vs 2 -> second; 3 vs 3 -> first.
    assert picks == [second.id, first.id, second.id, first.id]
    assert picker({"country": "VN", "region": "Hồ Chí Minh"}) == reps[2].id
    picker.finish()


def test_no_member_no_placement_or_no_active_model_gives_none(app, plan):
    rep = make_user()
    services.add_member(plan["north"], rep.id)
    assert placement.compile_picker("account").pick({"country": "VN", "region": "Hà Nội"}) is None  # planning
    services.activate_model(plan["model"])
    picker = placement.compile_picker("account")
    assert picker.pick({"country": "VN", "region": "Hà Nội"}) == rep.id
    assert picker.pick({"country": "VN", "region": "Đà Nẵng"}) is None  # Vietnam has no member
    services.update_territory(plan["world"], {"criteria": {"country": ["VN"]}})
    assert placement.compile_picker("account").pick({"country": "US"}) is None  # not placed


def test_inactive_members_are_skipped(app, active_plan):
    gone, here = make_user("gone@example.com"), make_user("here@example.com")
    services.add_member(active_plan["south"], gone.id)
    services.add_member(active_plan["south"], here.id)
    set_active(gone, False)
    picker = placement.compile_picker("account")
    assert {picker.pick({"country": "VN", "region": "Hồ Chí Minh"}) for _ in range(3)} == {here.id}
