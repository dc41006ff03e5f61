"""Territory visibility (issue 7, the first "done when"): a rep in "South Vietnam" cannot
see, count, search, export or report on an account in "Poland" (nor its contacts and
opportunities), the territory's manager can, and moving the rep changes that on the very
next request. Also: the access level of the record's territory, managers on the subtree,
only the active model, ``ext.territory``, explain(), and the share target "territory".

Records are placed by writing ``TerritoryRecord`` rows (placement by the rules is tested
with the placement code)."""

import csv
import io
from decimal import Decimal

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.leads import services as leads
from crm_core.opportunities import services as opportunities
from crm_core.org import services as org
from crm_core.permissions import Level, engine
from crm_core.testing import api_client, make_user, signed_in
from crm_territory import access, services
from crm_territory.models import TerritoryRecord

BASE = "/api/v1/plugins/territory"


def place(model, object_name, record_id, territory, source="rule"):
    """Put a record where the test wants it, whatever the rules did when it was written (the
    territories here have no criteria, so the rules put everything in the first root)."""
    TerritoryRecord.delete().where((TerritoryRecord.model_id == model.id) & (TerritoryRecord.object == object_name)
                                   & (TerritoryRecord.record_id == record_id)).execute()
    TerritoryRecord.create(model_id=model.id, object=object_name, record_id=record_id,
                           territory_id=territory.id, source=source)


@pytest.fixture
def company(app):
    """World > Asia > Vietnam > South Vietnam (read) and World > Europe > Poland, active; the
    accounts are owned by someone outside the sales team's chain."""
    owner = make_user("owner@example.com", "Owner")
    rep = make_user("rep@example.com", "Rep")
    polish_boss = make_user("boss.pl@example.com", "Boss PL")
    asia_boss = make_user("boss.asia@example.com", "Boss Asia")
    other_rep = make_user("other@example.com", "Other")
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    for user in (owner, rep, polish_boss, asia_boss, other_rep):
        org.set_roles(user, ["sales_rep"])
    model = services.create_model("2027")
    # The rules place what they are written with: Vietnam and Poland; France stays unplaced.
    vn, pl = {"country": ["VN"]}, {"country": ["PL"]}
    world = services.create_territory(model.id, "World", criteria={"country": ["VN", "PL"]})
    asia = services.create_territory(model.id, "Asia", parent_id=world.id, manager_id=asia_boss.id, criteria=vn)
    vietnam = services.create_territory(model.id, "Vietnam", parent_id=asia.id, criteria=vn)
    south = services.create_territory(model.id, "South Vietnam", parent_id=vietnam.id, access_level="read",
                                      criteria=vn)
    europe = services.create_territory(model.id, "Europe", parent_id=world.id, criteria=pl)
    poland = services.create_territory(model.id, "Poland", parent_id=europe.id, manager_id=polish_boss.id,
                                       criteria=pl)
    services.activate_model(model)
    services.add_member(south, rep.id)
    krakow = accounts.create_account({"name": "Kraków Steel", "country": "PL"}, actor_id=owner.id)
    saigon = accounts.create_account({"name": "Sài Gòn Foods", "country": "VN"}, actor_id=owner.id)
    unplaced = accounts.create_account({"name": "Nowhere Ltd", "country": "FR"}, actor_id=owner.id)
    place(model, "account", krakow.id, poland)
    place(model, "account", saigon.id, south)
    deals = {name: opportunities.create_opportunity({"name": f"Deal {name}", "account_id": account.id,
                                                     "amount": Decimal("1000")}, actor_id=owner.id)
             for name, account in (("krakow", krakow), ("saigon", saigon), ("nowhere", unplaced))}
    contact = accounts.create_contact({"account_id": krakow.id, "last_name": "Kowalski"}, actor_id=owner.id)
    lead = leads.create_lead({"last_name": "Nowak", "company": "Gdańsk Port", "country": "PL"},
                             actor_id=owner.id)
    place(model, "lead", lead.id, poland)
    g.pop("_crm_access", None)
    return {"owner": owner, "rep": rep, "polish_boss": polish_boss, "asia_boss": asia_boss,
            "other_rep": other_rep, "admin": admin, "model": model, "world": world, "asia": asia,
            "vietnam": vietnam, "south": south, "europe": europe, "poland": poland, "krakow": krakow,
            "saigon": saigon, "unplaced": unplaced, "deals": deals, "contact": contact, "lead": lead}


def fresh():
    """The next request: nothing of the last one's access answers remains."""
    g.pop("_crm_access", None)


def names(response):
    assert response.status_code == 200, response.get_json()
    return sorted(item["name"] for item in response.get_json()["items"])


def seen_by(app, user):
    """What ``user`` sees through every channel, each read as a new request."""
    client = api_client(app, user)
    fresh()
    out = {"accounts": names(client.get("/api/v1/accounts"))}
    fresh()
    out["count"] = client.get("/api/v1/accounts?per_page=1").get_json()["total"]
    fresh()
    out["opportunities"] = names(client.get("/api/v1/opportunities"))
    fresh()
    out["contacts"] = sorted(c["last_name"] for c in client.get("/api/v1/contacts").get_json()["items"])
    fresh()
    out["leads"] = sorted(lead["last_name"] for lead in client.get("/api/v1/leads").get_json()["items"])
    fresh()
    exported = client.get("/api/v1/accounts/export?format=csv")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    name_column = rows[0].index(next(h for h in rows[0] if h.lower() in ("name", "account name")))
    out["export"] = sorted(row[name_column] for row in rows[1:])
    fresh()
    exported = client.get("/api/v1/opportunities/export?format=csv").get_data(as_text=True)
    out["export_opportunities"] = sorted(n for n in ("Deal krakow", "Deal saigon", "Deal nowhere") if n in exported)
    fresh()
    funnel = client.get("/api/v1/reports/funnel").get_json()
    out["funnel"] = funnel["total_count"]
    fresh()
    report = client.get("/api/v1/reports/pipeline?by=country").get_json()
    out["report"] = sorted(str(row["key"]) for row in report["rows"])
    return out


def test_a_rep_in_south_vietnam_does_not_see_poland_and_the_manager_of_poland_does(app, company):
    rep = seen_by(app, company["rep"])
    assert rep == {"accounts": ["Sài Gòn Foods"], "count": 1, "opportunities": ["Deal saigon"],
                   "contacts": [], "leads": [], "export": ["Sài Gòn Foods"],
                   "export_opportunities": ["Deal saigon"], "funnel": 1, "report": ["VN"]}
    boss = seen_by(app, company["polish_boss"])
    assert boss == {"accounts": ["Kraków Steel"], "count": 1, "opportunities": ["Deal krakow"],
                    "contacts": ["Kowalski"], "leads": ["Nowak"], "export": ["Kraków Steel"],
                    "export_opportunities": ["Deal krakow"], "funnel": 1, "report": ["PL"]}
    nobody = seen_by(app, company["other_rep"])
    assert nobody["accounts"] == [] and nobody["funnel"] == 0 and nobody["report"] == []


def test_a_record_of_another_territory_is_a_404_like_a_missing_one(app, company):
    client = api_client(app, company["rep"])
    fresh()
    hidden = client.get(f"/api/v1/accounts/{company['krakow'].id}")
    fresh()
    missing = client.get("/api/v1/accounts/99999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_json() == missing.get_json()
    fresh()
    assert client.get(f"/api/v1/opportunities/{company['deals']['krakow'].id}").status_code == 404


def test_the_search_page_follows(app, company):
    browser = signed_in(app, company["rep"])
    html = browser.get("/accounts?q=Steel").get_data(as_text=True)
    assert "Kraków Steel" not in html
    assert "Sài Gòn Foods" in browser.get("/accounts?q=Foods").get_data(as_text=True)
    boss = signed_in(app, company["polish_boss"])
    assert "Kraków Steel" in boss.get("/accounts?q=Steel").get_data(as_text=True)


def test_moving_the_rep_changes_the_very_next_request(app, company):
    admin = api_client(app, company["admin"])
    rep = api_client(app, company["rep"])
    fresh()
    assert names(rep.get("/api/v1/accounts")) == ["Sài Gòn Foods"]
    fresh()
    assert admin.delete(f"{BASE}/territories/{company['south'].id}/members/{company['rep'].id}").status_code == 204
    fresh()
    assert admin.post(f"{BASE}/territories/{company['poland'].id}/members",
                      json={"user_id": company["rep"].id}).status_code == 201
    fresh()
    assert names(rep.get("/api/v1/accounts")) == ["Kraków Steel"]
    fresh()
    assert rep.get("/api/v1/reports/funnel").get_json()["total_count"] == 1
    fresh()
    assert rep.get(f"/api/v1/opportunities/{company['deals']['krakow'].id}").status_code == 200


def test_the_level_is_the_records_territorys(app, company):
    # South Vietnam is "read": its member reads but does not change.
    rep = api_client(app, company["rep"])
    saigon = company["saigon"]
    fresh()
    assert rep.get(f"/api/v1/accounts/{saigon.id}").status_code == 200
    fresh()
    refused = rep.patch(f"/api/v1/accounts/{saigon.id}", json={"name": "Mine"},
                        headers={"If-Match": f'"{saigon.version}"'})
    assert refused.status_code == 403
    fresh()
    level, reasons = engine().explain(company["rep"].id, saigon)
    assert level == Level.READ
    assert ("territory", "South Vietnam") in {(r.code, r.detail) for r in reasons}
    # A member of Vietnam sees South Vietnam's records at South Vietnam's level.
    member = make_user()
    org.set_roles(member, ["sales_rep"])
    services.add_member(company["vietnam"], member.id)
    fresh()
    assert engine().level(member.id, saigon) == Level.READ
    services.update_territory(company["south"], {"access_level": "edit"})
    fresh()
    assert engine().level(member.id, saigon) == Level.EDIT
    assert engine().level(company["rep"].id, saigon) == Level.EDIT


def test_a_manager_gets_the_manager_level_on_the_whole_subtree(app, company):
    fresh()
    boss = company["asia_boss"].id
    assert engine().level(boss, company["saigon"]) == Level.EDIT  # South Vietnam is "read"
    assert engine().level(boss, company["krakow"]) == Level.NONE
    assert {a.id for a in engine().query(boss, "account")} == {company["saigon"].id}


def test_the_manager_level_setting(app_factory):
    app = app_factory(CRM_PLUGIN_CONFIG={"territory": {"manager_level": "read"}})
    with app.app_context():
        boss, owner = make_user(), make_user()
        for user in (boss, owner):
            org.set_roles(user, ["sales_rep"])
        model = services.create_model("m")
        top = services.create_territory(model.id, "Top", manager_id=boss.id)
        services.activate_model(model)
        account = accounts.create_account({"name": "A"}, actor_id=owner.id)
        place(model, "account", account.id, top)
        fresh()
        assert engine().level(boss.id, account) == Level.READ
        assert not engine().query(boss.id, "account", level=Level.EDIT).exists()


def test_only_the_active_model_grants(app, company):
    rep = company["rep"].id
    draft = services.create_model("2028")
    everything = services.create_territory(draft.id, "Everything")
    services.add_member(everything, rep)
    place(draft, "account", company["krakow"].id, everything)
    fresh()
    assert engine().level(rep, company["krakow"]) == Level.NONE
    services.activate_model(draft)  # the switch-over: 2027 is archived and grants nothing
    fresh()
    assert engine().level(rep, company["krakow"]) == Level.EDIT
    assert engine().level(rep, company["saigon"]) == Level.NONE
    assert {a.id for a in engine().query(rep, "account")} == {company["krakow"].id}


def test_query_and_record_forms_agree_for_every_object_and_user(app, company):
    records = {"account": [company["krakow"], company["saigon"], company["unplaced"]],
               "opportunity": list(company["deals"].values()), "contact": [company["contact"]],
               "lead": [company["lead"]]}
    for key in ("rep", "polish_boss", "asia_boss", "other_rep"):
        uid = company[key].id
        for name, items in records.items():
            for at_least in (Level.READ, Level.EDIT):
                fresh()
                listed = {r.id for r in engine().query(uid, name, level=at_least)}
                for record in items:
                    fresh()
                    assert (record.id in listed) == (engine().level(uid, record) >= at_least), (key, name, record.id)


def test_grants_are_one_per_level_and_nothing_without_an_active_model(app, company):
    boss = engine().subject(company["asia_boss"].id)
    fresh()
    grants = access.query_grants(boss, "account")
    assert [grant.level for grant in grants] == [Level.EDIT]
    services.add_member(company["south"], company["asia_boss"].id)
    rep = engine().subject(company["rep"].id)
    fresh()
    assert [grant.level for grant in access.query_grants(rep, "lead")] == [Level.READ]
    assert access.query_grants(rep, "campaign") == []
    services.activate_model(services.create_model("empty"))
    fresh()
    assert access.query_grants(rep, "account") == [] and access.record_grants(rep, "account", company["saigon"]) == []


def test_ext_territory_on_every_object(app, company):
    admin = api_client(app, company["admin"])
    expected = {"id": company["poland"].id, "name": "Poland", "path": ["World", "Europe", "Poland"],
                "source": "rule"}
    fresh()
    assert admin.get(f"/api/v1/accounts/{company['krakow'].id}").get_json()["ext"]["territory"] == expected
    fresh()
    deal = admin.get(f"/api/v1/opportunities/{company['deals']['krakow'].id}").get_json()
    assert deal["ext"]["territory"] == expected
    fresh()
    assert admin.get(f"/api/v1/contacts/{company['contact'].id}").get_json()["ext"]["territory"] == expected
    fresh()
    assert admin.get(f"/api/v1/leads/{company['lead'].id}").get_json()["ext"]["territory"] == expected
    fresh()
    listed = {a["name"]: a["ext"] for a in admin.get("/api/v1/accounts").get_json()["items"]}
    assert listed["Sài Gòn Foods"]["territory"]["path"] == ["World", "Asia", "Vietnam", "South Vietnam"]
    assert "territory" not in listed["Nowhere Ltd"]


def test_ext_is_read_in_one_query_per_page(app, company, monkeypatch):
    from crm_core.accounts.models import Account

    fresh()
    access.active_tree()
    records = list(Account.select())
    queries = []
    database = getattr(Account._meta.database, "obj", Account._meta.database)
    original = database.execute_sql

    def counting(sql, *args, **kwargs):
        queries.append(sql)
        return original(sql, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", counting)
    part = access.record_ext(company["admin"], "account", records)
    monkeypatch.undo()
    assert len(part["territory"]) == 2 and len(queries) == 1


def test_the_share_target_territory(app, company):
    registered = [t for answer in app.extensions["crm"].hook.crm_register_share_targets(app=app)
                  for t in answer]
    assert [t.type for t in registered] == ["territory"]
    target = registered[0]
    polish_member = make_user()
    services.add_member(company["poland"], polish_member.id)
    fresh()
    assert target.members(company["europe"].id) == {polish_member.id, company["polish_boss"].id}
    assert target.members(company["world"].id) == {polish_member.id, company["polish_boss"].id,
                                                   company["rep"].id, company["asia_boss"].id}
    assert target.members(999999) == set()
    assert target.targets_of(company["rep"].id) == {company["world"].id, company["asia"].id,
                                                    company["vietnam"].id, company["south"].id}
    assert target.targets_of(company["owner"].id) == set()
    labels = dict(target.names(company["admin"].id))
    assert labels[company["south"].id] == "World / Asia / Vietnam / South Vietnam"
    assert [tid for tid, _ in target.names(None)][:2] == [company["world"].id, company["asia"].id]
    # Every user reached by a territory has it among their targets: the two forms agree.
    for territory_id in labels:
        for user_id in target.members(territory_id):
            assert territory_id in target.targets_of(user_id)


def test_deleted_and_inactive(app, company):
    services.remove_member(company["south"], company["rep"].id)
    services.add_member(company["poland"], company["rep"].id)
    services.update_territory(company["poland"], {"manager_id": None})
    fresh()
    assert engine().level(company["rep"].id, company["krakow"]) == Level.EDIT
    org.set_roles(company["rep"], [])  # no object permission: the territory opens nothing
    fresh()
    assert engine().level(company["rep"].id, company["krakow"]) == Level.NONE
