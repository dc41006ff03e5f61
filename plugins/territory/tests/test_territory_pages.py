"""The territory pages (/plugins/territory/...): who may see and change what, the criteria
editor's errors in the reader's language with nothing written, the members, the accounts
and the pipeline of a territory as far as the access engine lets the reader see them,
the panel on a record's page, and the report dimension "territory"."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.opportunities import services as opps
from crm_core.testing import make_sales_team, make_user, page_and_token, signed_in
from crm_core.users.models import User
from crm_territory import demo, services
from crm_territory.models import Territory, TerritoryMember, TerritoryModel, TerritoryRecord

BASE = "/plugins/territory"


@pytest.fixture
def world(app):
    """Rita (rep, Sales) owns an account in Ho Chi Minh City, Bob (rep, Other) one in Poland
    and one in the USA; the active model: World (VN, CN, PL: the USA is in no territory) >
    Asia > Vietnam > South Vietnam, World > Europe > Poland."""
    people = make_sales_team()
    rita, bob = people["rita"], people["bob"]
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    model = services.create_model("Alignment 2026")
    ids = {}
    ids["world"] = services.create_territory(model.id, "World", criteria={"country": ["VN", "CN", "PL"]}).id
    ids["asia"] = services.create_territory(model.id, "Asia", parent_id=ids["world"],
                                            criteria={"country": ["VN", "CN"]}).id
    ids["vietnam"] = services.create_territory(model.id, "Vietnam", parent_id=ids["asia"],
                                               criteria={"country": ["VN"]}).id
    ids["south"] = services.create_territory(model.id, "South Vietnam", parent_id=ids["vietnam"],
                                             criteria={"region": ["Hồ Chí Minh"]}, access_level="read").id
    ids["europe"] = services.create_territory(model.id, "Europe", parent_id=ids["world"]).id
    ids["poland"] = services.create_territory(model.id, "Poland", parent_id=ids["europe"],
                                              criteria={"country": ["PL"], "employees": {"min": 10}},
                                              manager_id=people["maria"].id).id
    services.activate_model(model)
    minh_an = accounts.create_account({"name": "Minh An", "country": "VN", "region": "Hồ Chí Minh",
                                       "industry": "Retail"}, actor_id=rita.id)
    kowalczyk = accounts.create_account({"name": "Kowalczyk", "country": "PL", "employees": 40,
                                         "industry": "Mining"}, actor_id=bob.id)
    nowhere = accounts.create_account({"name": "Nowhere Ltd", "country": "US"}, actor_id=bob.id)
    demo.place(services.get_model(model.id))
    ritas = opps.create_opportunity({"name": "Rita's deal", "account_id": minh_an.id, "amount": Decimal("1000"),
                                     "expected_close_date": dt.date(2026, 3, 15)}, actor_id=rita.id)
    bobs = opps.create_opportunity({"name": "Bob's deal", "account_id": kowalczyk.id, "amount": Decimal("9999"),
                                    "expected_close_date": dt.date(2026, 3, 15)}, actor_id=bob.id)
    opps.create_opportunity({"name": "Unplaced deal", "account_id": nowhere.id, "amount": Decimal("5"),
                             "expected_close_date": dt.date(2026, 3, 15)}, actor_id=bob.id)
    g.pop("_crm_access", None)
    return {**people, "admin": admin, "model": services.get_model(model.id), "ids": ids,
            "minh_an": minh_an, "kowalczyk": kowalczyk, "nowhere": nowhere, "ritas": ritas, "bobs": bobs}


def territory_count():
    return Territory.select().count()


def form_of(html, action):
    """The form posting to ``action``: its hidden and filled inputs as a dict."""
    start = html.index(f'method="post" action="{action}"')
    form = html[start:html.index("</form>", start)]
    values = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', form):
        values[name] = text
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        values[name] = chosen.group(1) if chosen else ""
    return values


# -- reading -------------------------------------------------------------------------------------------

def test_every_signed_in_user_reads_the_tree_and_the_models(app, world):
    html, _ = page_and_token(signed_in(app, world["rita"]), BASE + "/")
    for name in ("World", "Asia", "Vietnam", "South Vietnam", "Europe", "Poland", "Alignment 2026"):
        assert name in html
    assert "Countries: Vietnam (VN)" in html and "Employees: at least 10" in html
    assert re.search(r"Poland</a></td>\s*<td>[^<]*</td>\s*<td>Maria</td>", html)
    assert "New territory model" not in html and "/edit" not in html and ">Activate<" not in html
    admin, _ = page_and_token(signed_in(app, world["admin"]), BASE + "/")
    assert "New territory model" in admin and f'{BASE}/models/{world["model"].id}/edit' in admin
    assert app.test_client().get(BASE + "/").status_code in (302, 401)


def test_the_model_chooser_shows_a_planning_model_and_a_missing_one_is_404(app, world):
    plan = services.create_model("Plan 2027")
    services.create_territory(plan.id, "Everything")
    browser = signed_in(app, world["rita"])
    html, _ = page_and_token(browser, f"{BASE}/?model_id={plan.id}")
    assert "Everything" in html and "South Vietnam" not in html and "grants no access until" in html
    assert browser.get(f"{BASE}/?model_id=999999").status_code == 404


def test_a_territory_page_shows_only_what_the_reader_may_see(app, world):
    world_page = f"{BASE}/territories/{world['ids']['world']}"
    rita, _ = page_and_token(signed_in(app, world["rita"]), world_page)
    assert "Minh An" in rita and "Kowalczyk" not in rita and "Nowhere" not in rita
    assert "$1,000.00" in rita and "9,999" not in rita
    admin, _ = page_and_token(signed_in(app, world["admin"]), world_page)
    assert "Minh An" in admin and "Kowalczyk" in admin and "Nowhere" not in admin  # not placed
    assert "$10,999.00" in admin
    assert f'href="/reports/funnel?dimension=territory&amp;value={world["ids"]["world"]}"' in admin
    # Where each account sits below the territory, and the path from the root.
    assert f'href="{BASE}/territories/{world["ids"]["south"]}">South Vietnam</a>' in admin
    south, _ = page_and_token(signed_in(app, world["admin"]), f"{BASE}/territories/{world['ids']['south']}")
    assert "Kowalczyk" not in south and "Minh An" in south
    assert re.search(r"Alignment 2026</a> › <a[^>]*>World</a> › <a[^>]*>Asia</a> › <a[^>]*>Vietnam</a> › "
                     r'<span aria-current="page">South Vietnam</span>', south)
    assert "Members read its records" in south and "Regions: Hồ Chí Minh" in south


def test_a_missing_or_deleted_territory_is_404(app, world):
    browser = signed_in(app, world["admin"])
    assert browser.get(f"{BASE}/territories/999999").status_code == 404
    plan = services.create_model("Plan")
    gone = services.create_territory(plan.id, "Gone")
    services.delete_territory(gone)
    assert browser.get(f"{BASE}/territories/{gone.id}").status_code == 404


def test_the_accounts_of_a_territory_are_paged(app, world):
    for number in range(55):
        accounts.create_account({"name": f"Polska {number:02d}", "country": "PL", "employees": 20},
                                actor_id=world["bob"].id)
    demo.place(world["model"])
    browser = signed_in(app, world["admin"])
    path = f"{BASE}/territories/{world['ids']['poland']}"
    first, _ = page_and_token(browser, path)
    assert "56 accounts of this territory" in first and "Page 1 of 2" in first
    assert "Polska 48" in first and "Polska 49" not in first
    second, _ = page_and_token(browser, path + "?page=2")
    assert "Polska 49" in second and "Polska 54" in second and "Polska 00" not in second


# -- who may change what ---------------------------------------------------------------------------------

def manage_posts(world):
    model, ids = world["model"], world["ids"]
    return [f"{BASE}/models/new", f"{BASE}/models/{model.id}/edit", f"{BASE}/models/{model.id}/activate",
            f"{BASE}/models/{model.id}/delete", f"{BASE}/models/{model.id}/territories/new",
            f"{BASE}/territories/{ids['asia']}/edit", f"{BASE}/territories/{ids['asia']}/delete"]


def test_a_rep_cannot_reach_the_manage_pages(app, world):
    browser = signed_in(app, world["rita"])
    html, token = page_and_token(browser, BASE + "/")
    before = (territory_count(), TerritoryModel.select().count())
    for path in manage_posts(world):
        if not path.endswith("/delete"):
            assert browser.get(path).status_code == 403, path
        assert browser.post(path, data={"csrf_token": token, "name": "Mine", "version": "1"}).status_code == 403, path
    members = f"{BASE}/territories/{world['ids']['south']}/members"
    assert browser.post(members, data={"csrf_token": token, "user_id": str(world["rita"].id)}).status_code == 403
    assert browser.post(f"{members}/{world['rita'].id}/delete", data={"csrf_token": token}).status_code == 403
    assert (territory_count(), TerritoryModel.select().count()) == before
    assert TerritoryMember.select().count() == 0
    assert TerritoryModel.get_by_id(world["model"].id).state == "active"


def test_changes_need_the_csrf_token(app, world):
    browser = signed_in(app, world["admin"])
    response = browser.post(f"{BASE}/models/new", data={"name": "No token"})
    assert response.status_code in (400, 403)
    assert not TerritoryModel.select().where(TerritoryModel.name == "No token").exists()


# -- models ----------------------------------------------------------------------------------------------

def test_an_administrator_creates_edits_and_activates_a_model_after_confirming(app, world):
    browser = signed_in(app, world["admin"])
    _, token = page_and_token(browser, f"{BASE}/models/new")
    response = browser.post(f"{BASE}/models/new", data={"csrf_token": token, "name": "Regions 2027",
                                                         "description": "Next year"})
    assert response.status_code == 302
    plan = TerritoryModel.get(TerritoryModel.name == "Regions 2027")
    assert plan.state == "planning"
    html, token = page_and_token(browser, f"{BASE}/models/{plan.id}/edit")
    values = form_of(html, f"{BASE}/models/{plan.id}/edit")
    assert values["version"] == str(plan.version) and values["name"] == "Regions 2027"
    assert browser.post(f"{BASE}/models/{plan.id}/edit", data={**values, "name": "Regions 2027 v2"}).status_code == 302
    confirm, token = page_and_token(browser, f"{BASE}/models/{plan.id}/activate")
    assert "“Alignment 2026”, the active model until now, will be archived" in confirm
    version = form_of(confirm, f"{BASE}/models/{plan.id}/activate")["version"]
    assert browser.post(f"{BASE}/models/{plan.id}/activate",
                        data={"csrf_token": token, "version": version}).status_code == 302
    assert services.active_model().name == "Regions 2027 v2"
    assert TerritoryModel.get_by_id(world["model"].id).state == "archived"


def test_bad_model_input_and_a_stale_version_write_nothing(app, world):
    browser = signed_in(app, world["admin"])
    _, token = page_and_token(browser, f"{BASE}/models/new")
    response = browser.post(f"{BASE}/models/new", data={"csrf_token": token, "name": "  "})
    assert response.status_code == 422
    assert 'id="e-name"' in response.get_data(as_text=True)
    assert TerritoryModel.select().count() == 1
    model = world["model"]
    stale = browser.post(f"{BASE}/models/{model.id}/edit", data={"csrf_token": token, "name": "Renamed",
                                                                  "version": str(model.version - 1 or 99)})
    assert stale.status_code == 409 and "Someone else changed this" in stale.get_data(as_text=True)
    assert TerritoryModel.get_by_id(model.id).name == "Alignment 2026"


def test_the_active_model_cannot_be_deleted_nor_activated_again(app, world):
    browser = signed_in(app, world["admin"])
    _, token = page_and_token(browser, BASE + "/")
    model = world["model"]
    response = browser.post(f"{BASE}/models/{model.id}/delete", data={"csrf_token": token,
                                                                      "version": str(model.version)},
                            follow_redirects=True)
    assert "The active model cannot be deleted" in response.get_data(as_text=True)
    assert TerritoryModel.get_by_id(model.id).deleted_at is None
    again = browser.post(f"{BASE}/models/{model.id}/activate", data={"csrf_token": token,
                                                                     "version": str(model.version)})
    assert again.status_code == 409 and "Only a model in planning can be activated" in again.get_data(as_text=True)


# -- territories and the criteria editor -----------------------------------------------------------------

def test_an_administrator_creates_a_territory_with_the_criteria_editor(app, world):
    browser = signed_in(app, world["admin"])
    path = f"{BASE}/models/{world['model'].id}/territories/new"
    html, token = page_and_token(browser, path + f"?parent_id={world['ids']['europe']}")
    assert f'<option value="{world["ids"]["europe"]}" selected>World › Europe</option>' in html
    response = browser.post(path, data={
        "csrf_token": token, "name": "Russia", "parent_id": str(world["ids"]["europe"]), "access_level": "read",
        "manager_id": str(world["maria"].id), "position": "2", "description": "",
        "country": "ru, by", "region": "Москва\nСанкт-Петербург\n", "industry": "",
        "postal_code": "101000..129999\n190000", "employees.min": "5", "employees.max": "500"})
    assert response.status_code == 302
    russia = Territory.get(Territory.name == "Russia")
    assert json.loads(russia.criteria) == {"country": ["BY", "RU"], "region": ["Москва", "Санкт-Петербург"],
                                           "postal_code": [["101000", "129999"], ["190000", "190000"]],
                                           "employees": {"min": 5, "max": 500}}
    assert (russia.parent_id, russia.access_level, russia.manager_id, russia.position) == (
        world["ids"]["europe"], "read", world["maria"].id, 2)
    page, _ = page_and_token(browser, response.headers["Location"])
    assert "Postal codes: 101000–129999, 190000" in page and "Employees: from 5 to 500" in page
    # The edit form shows the stored criteria as they were typed.
    edit, _ = page_and_token(browser, f"{BASE}/territories/{russia.id}/edit")
    values = form_of(edit, f"{BASE}/territories/{russia.id}/edit")
    assert values["country"] == "BY, RU" and values["postal_code"] == "101000..129999\n190000"
    assert values["employees.min"] == "5" and values["manager_id"] == str(world["maria"].id)


@pytest.mark.parametrize("language, message", [
    ("en", "The lower end of the range is above the upper end."),
    ("pl", None), ("vi", None), ("ru", None), ("zh", None), ("zh_TW", None)])
def test_bad_criteria_are_shown_in_the_readers_language_and_nothing_is_written(app, world, language, message):
    browser = signed_in(app, world["admin"])
    path = f"{BASE}/models/{world['model'].id}/territories/new"
    _, token = page_and_token(browser, path)
    before = territory_count()
    response = browser.post(f"{path}?lang={language}", data={
        "csrf_token": token, "name": "Bad", "access_level": "edit", "employees.min": "500",
        "employees.max": "5", "postal_code": "99999..10000", "custom.nope": "x"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    expected = message or translated(language, "The lower end of the range is above the upper end.")
    assert 'id="e-criteria.employees"' in html and 'id="e-criteria.postal_code"' in html
    assert expected in html
    assert territory_count() == before
    assert 'value="Bad"' in html  # what was typed stays in the form


def translated(language, msgid):
    from babel.messages.pofile import read_po

    from crm_core.i18n import CatalogSource
    import crm_territory

    source = CatalogSource.for_module(crm_territory)
    with open(source.po_path(language), "rb") as handle:
        catalog = read_po(handle)
    return catalog[msgid].string


def test_a_bad_territory_edit_keeps_the_territory_as_it_was(app, world):
    browser = signed_in(app, world["admin"])
    poland = Territory.get_by_id(world["ids"]["poland"])
    edit, token = page_and_token(browser, f"{BASE}/territories/{poland.id}/edit")
    values = form_of(edit, f"{BASE}/territories/{poland.id}/edit")
    cycle = browser.post(f"{BASE}/territories/{world['ids']['world']}/edit",
                         data={**form_of(page_and_token(browser, f"{BASE}/territories/{world['ids']['world']}/edit")[0],
                                         f"{BASE}/territories/{world['ids']['world']}/edit"),
                               "parent_id": str(poland.id)})
    assert cycle.status_code == 422 and 'id="e-parent_id"' in cycle.get_data(as_text=True)
    bad = browser.post(f"{BASE}/territories/{poland.id}/edit", data={**values, "country": "", "region": "",
                                                                     "employees.min": "many"})
    assert bad.status_code == 422 and "The ends of a range must be numbers." in bad.get_data(as_text=True)
    stale = browser.post(f"{BASE}/territories/{poland.id}/edit", data={**values, "name": "Polska",
                                                                       "version": str(poland.version + 5)})
    assert stale.status_code == 409
    fresh = Territory.get_by_id(poland.id)
    assert (fresh.name, fresh.criteria, fresh.parent_id, fresh.version) == (
        poland.name, poland.criteria, poland.parent_id, poland.version)
    assert Territory.get_by_id(world["ids"]["world"]).parent_id is None


def test_a_territory_with_territories_below_it_is_not_deleted(app, world):
    browser = signed_in(app, world["admin"])
    asia = Territory.get_by_id(world["ids"]["asia"])
    _, token = page_and_token(browser, f"{BASE}/territories/{asia.id}")
    response = browser.post(f"{BASE}/territories/{asia.id}/delete", data={"csrf_token": token,
                                                                          "version": str(asia.version)})
    assert response.status_code == 409
    assert "Move or delete the territories below it first." in response.get_data(as_text=True)
    assert Territory.get_by_id(asia.id).deleted_at is None
    south = Territory.get_by_id(world["ids"]["south"])
    assert browser.post(f"{BASE}/territories/{south.id}/delete", data={
        "csrf_token": token, "version": str(south.version)}).status_code == 302
    assert Territory.get_by_id(south.id).deleted_at is not None


def test_an_archived_model_has_no_forms(app, world):
    newer = services.create_model("Newer")
    services.activate_model(newer)
    browser = signed_in(app, world["admin"])
    assert browser.get(f"{BASE}/models/{world['model'].id}/territories/new").status_code == 404
    assert browser.get(f"{BASE}/territories/{world['ids']['asia']}/edit").status_code == 404
    html, _ = page_and_token(browser, f"{BASE}/territories/{world['ids']['asia']}")
    assert "Add a member" not in html and "/edit" not in html


# -- members ----------------------------------------------------------------------------------------------

def test_members_are_added_and_removed_and_a_second_territory_is_refused(app, world):
    browser = signed_in(app, world["admin"])
    south = f"{BASE}/territories/{world['ids']['south']}"
    _, token = page_and_token(browser, south)
    rita = world["rita"]
    assert browser.post(south + "/members", data={"csrf_token": token, "user_id": str(rita.id)}).status_code == 302
    html, _ = page_and_token(browser, south)
    assert f"Remove {rita.name}" in html
    second = browser.post(f"{BASE}/territories/{world['ids']['poland']}/members?lang=pl",
                          data={"csrf_token": token, "user_id": str(rita.id)})
    assert second.status_code == 409
    assert translated("pl", "This user is already a member of the territory %(name)s: a rep belongs to one "
                            "territory per model.") % {"name": "South Vietnam"} in second.get_data(as_text=True)
    assert [m.territory_id for m in TerritoryMember.select()] == [world["ids"]["south"]]
    assert browser.post(f"{south}/members/{rita.id}/delete", data={"csrf_token": token}).status_code == 302
    assert TerritoryMember.select().count() == 0
    assert browser.post(f"{south}/members/{rita.id}/delete", data={"csrf_token": token}).status_code == 404


def test_a_territory_manager_changes_the_members_of_the_subtree_only(app, world):
    maria = world["maria"]  # manages Poland, holds no territory.manage
    browser = signed_in(app, maria)
    poland = f"{BASE}/territories/{world['ids']['poland']}"
    html, token = page_and_token(browser, poland)
    assert "Add a member" in html and "/edit" not in html
    assert browser.post(poland + "/members", data={"csrf_token": token,
                                                   "user_id": str(world["bob"].id)}).status_code == 302
    assert browser.post(f"{BASE}/territories/{world['ids']['south']}/members",
                        data={"csrf_token": token, "user_id": str(world["rita"].id)}).status_code == 403
    assert [(m.territory_id, m.user_id) for m in TerritoryMember.select()] == [(world["ids"]["poland"], world["bob"].id)]
    assert browser.get(f"{BASE}/territories/{world['ids']['poland']}/edit").status_code == 403


# -- the record panel and the menu ------------------------------------------------------------------------

def test_a_records_page_shows_its_territory(app, world):
    browser = signed_in(app, world["rita"])
    html, _ = page_and_token(browser, f"/accounts/{world['minh_an'].id}")
    panel = html.split('id="territory-heading"', 1)[1].split("</section>", 1)[0]
    assert "World › Asia › Vietnam › " in panel and ">South Vietnam</a>" in panel
    assert "Placed by the rules of the model “Alignment 2026”." in panel
    deal, _ = page_and_token(browser, f"/opportunities/{world['ritas'].id}")
    assert "It follows its account" in deal
    from crm_core.leads.services import create_lead

    lead = create_lead({"company": "Ba Son", "last_name": "Lê", "country": "VN", "region": "Hồ Chí Minh"},
                       actor_id=world["rita"].id)
    demo.place(world["model"])
    lead_page, _ = page_and_token(browser, f"/leads/{lead.id}")
    assert ">South Vietnam</a>" in lead_page and "Placed by the rules" in lead_page
    admin = signed_in(app, world["admin"])
    nowhere, _ = page_and_token(admin, f"/accounts/{world['nowhere'].id}")
    assert "Not placed in any territory of the model “Alignment 2026”." in nowhere


def test_the_menu_offers_the_territories_to_every_signed_in_user(app, world):
    html, _ = page_and_token(signed_in(app, world["rita"]), "/")
    nav = html.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert f'<a href="{BASE}/">Territories</a>' in nav


# -- the report dimension ---------------------------------------------------------------------------------

def test_the_pipeline_by_territory_follows_the_access_rules(app, world):
    from crm_core.testing import api_client

    admin = api_client(app, world["admin"]).get("/api/v1/reports/pipeline?by=territory").get_json()
    rows = {row["label"]: row["count"] for row in admin["rows"]}
    assert rows == {"South Vietnam": 1, "Poland": 1, "Not set": 1}
    assert admin["label"] == "Territory"
    keys = {row["label"]: row["key"] for row in admin["rows"]}
    assert keys["Poland"] == world["ids"]["poland"] and keys["Not set"] is None
    rita = api_client(app, world["rita"]).get("/api/v1/reports/pipeline?by=territory").get_json()
    assert [(row["label"], row["count"]) for row in rita["rows"]] == [("South Vietnam", 1)]
    assert rita["totals"][0]["amount"] == "1000.00" or Decimal(rita["totals"][0]["amount"]) == Decimal("1000")


def test_the_dimension_reads_the_active_model_only(app, world):
    from crm_core.testing import api_client

    newer = services.create_model("Newer")
    services.create_territory(newer.id, "Everywhere")
    demo.place(newer)
    client = api_client(app, world["admin"])
    labels = {row["label"] for row in client.get("/api/v1/reports/pipeline?by=territory").get_json()["rows"]}
    assert labels == {"South Vietnam", "Poland", "Not set"}  # the plan is placed but not active
    services.activate_model(newer)
    rows = client.get("/api/v1/reports/pipeline?by=territory").get_json()["rows"]
    assert [(row["label"], row["count"]) for row in rows] == [("Everywhere", 3)]


# -- realignment -------------------------------------------------------------------------------------------

def test_the_realignment_panel_previews_then_applies_what_moves(app, world):
    poland = Territory.get_by_id(world["ids"]["poland"])
    services.update_territory(poland, {"criteria": {"country": ["PL"], "employees": {"min": 100}}})
    browser = signed_in(app, world["admin"])
    panel = f"{BASE}/models/{world['model'].id}/realign"
    html, token = page_and_token(browser, panel)
    assert "This model has not been realigned yet." in html
    preview = browser.post(panel + "/preview", data={"csrf_token": token})
    assert preview.status_code == 200
    shown = preview.get_data(as_text=True)
    assert re.search(r"<td>Accounts</td><td>Poland</td><td>Europe</td><td>1</td>", shown)
    assert "<td>Kowalczyk</td>" in shown
    placed = TerritoryRecord.get((TerritoryRecord.object == "account")
                                 & (TerritoryRecord.record_id == world["kowalczyk"].id))
    assert placed.territory_id == world["ids"]["poland"]  # a preview moves nothing
    started = browser.post(panel, data={"csrf_token": token})
    assert started.status_code == 302 and "/realignments/" in started.headers["Location"]
    run, _ = page_and_token(browser, started.headers["Location"])
    assert "Applied" in run and "100%" in run
    placed = TerritoryRecord.get((TerritoryRecord.object == "account")
                                 & (TerritoryRecord.record_id == world["kowalczyk"].id))
    assert placed.territory_id == world["ids"]["europe"]
    listed, _ = page_and_token(browser, panel)
    assert "Applied" in listed and "Preview" in listed


def test_a_rep_cannot_realign_and_an_archived_model_is_frozen(app, world):
    browser = signed_in(app, world["rita"])
    _, token = page_and_token(browser, BASE + "/")
    panel = f"{BASE}/models/{world['model'].id}/realign"
    assert browser.get(panel).status_code == 403
    assert browser.post(panel + "/preview", data={"csrf_token": token}).status_code == 403
    assert browser.post(panel, data={"csrf_token": token}).status_code == 403
    from crm_territory.models import TerritoryRealignment

    assert TerritoryRealignment.select().count() == 0
    admin = signed_in(app, world["admin"])
    assert admin.get(f"{BASE}/models/999999/realign").status_code == 404
    assert admin.get(f"{BASE}/realignments/999999").status_code == 404
    newer = services.create_model("Newer")
    services.activate_model(newer)
    html, token = page_and_token(admin, panel)
    assert "frozen" in html and "Start the realignment" not in html
    refused = admin.post(panel, data={"csrf_token": token})
    assert refused.status_code == 409 and "cannot be realigned" in refused.get_data(as_text=True)
    assert TerritoryRealignment.select().count() == 0


# -- every page in every language ---------------------------------------------------------------------------

def plugin_messages(language):
    """(English, translation) of the plugin's catalogue for ``language`` (plural forms too)."""
    from babel.messages.pofile import read_po

    import crm_territory
    from crm_core.i18n import CatalogSource

    with open(CatalogSource.for_module(crm_territory).po_path(language), "rb") as handle:
        catalog = read_po(handle)
    pairs = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, (list, tuple)) else (message.id,)
        strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
        pairs.extend((msgid, strings) for msgid in ids)
    return pairs


def untranslated_in(html, language):
    """The plugin's English texts the page shows in ``language`` (where the translation differs)."""
    from markupsafe import escape

    texts = {text.strip() for text in re.findall(r">([^<>]+)<", html)} | set(
        re.findall(r'aria-label="([^"]+)"', html))
    found = []
    for msgid, strings in plugin_messages(language):
        if msgid in strings:
            continue  # the same word in both languages (a name, a code)
        fragments = [f.strip() for f in re.split(r"%\(\w+\)s|%s", msgid) if f.strip()]
        longest = max(fragments, key=len) if fragments else ""
        if len(longest) >= 12 and (longest in html or str(escape(longest)) in html):
            found.append(msgid)
        elif len(longest) < 12 and (msgid in texts or str(escape(msgid)) in texts):
            found.append(msgid)
    return found


def test_every_page_is_translated_into_every_language(app, world):
    from crm_core.i18n import TRANSLATED_LOCALES

    from crm_territory import realign

    from crm_territory import placement

    realign.preview(world["model"], world["admin"].id)
    run = realign.start(world["model"], world["admin"].id)
    placement.place_by_hand("account", world["minh_an"].id, Territory.get_by_id(world["ids"]["poland"]))
    plan = services.create_model("Plan 2027")
    services.create_territory(plan.id, "Everything", criteria={"industry": ["Retail"], "postal_code": [["1", "2"]]})
    ids = world["ids"]
    pages = [BASE + "/", f"{BASE}/?model_id={plan.id}", f"{BASE}/territories/{ids['south']}",
             f"{BASE}/territories/{ids['poland']}", f"{BASE}/models/new", f"{BASE}/models/{plan.id}/edit",
             f"{BASE}/models/{plan.id}/activate", f"{BASE}/models/{world['model'].id}/territories/new",
             f"{BASE}/territories/{ids['poland']}/edit", f"{BASE}/models/{world['model'].id}/realign",
             f"{BASE}/realignments/{run.id}", f"/accounts/{world['minh_an'].id}",
             f"/accounts/{world['nowhere'].id}", f"/opportunities/{world['ritas'].id}"]
    browser = signed_in(app, world["admin"])
    english = browser.get(f"{BASE}/territories/{ids['poland']}?lang=en").get_data(as_text=True)
    assert "Territories below" not in english and len(untranslated_in(english, "pl")) > 10  # the check sees
    for language in TRANSLATED_LOCALES:
        for path in pages:
            glue = "&" if "?" in path else "?"
            response = browser.get(f"{path}{glue}lang={language}")
            assert response.status_code == 200, (language, path)
            html = response.get_data(as_text=True)
            assert untranslated_in(html, language) == [], (language, path)
        # A refused form too: the errors of the criteria editor.
        _, token = page_and_token(browser, f"{BASE}/models/{world['model'].id}/territories/new?lang={language}")
        refused = browser.post(f"{BASE}/models/{world['model'].id}/territories/new?lang={language}", data={
            "csrf_token": token, "name": "", "access_level": "edit", "employees.min": "x",
            "postal_code": "9..1", "country": "VN"})
        assert refused.status_code == 422
        assert untranslated_in(refused.get_data(as_text=True), language) == [], language
    browser.get(f"{BASE}/?lang=en")


# -- demo data ----------------------------------------------------------------------------------------------

def test_the_demo_territories_are_made_once_and_place_the_demo_records(app):
    from crm_core.accounts.models import Account
    from crm_core.demo import load_demo
    from crm_core.leads.models import Lead

    load_demo("correct horse battery staple 42")
    demo.load(2026)
    model = services.active_model()
    assert model.name == demo.MODEL_NAME
    tree = services.tree(model.id)
    paths = {" > ".join(tree.path(t)) for t in tree.by_id}
    assert {"World > Asia > Vietnam > North Vietnam", "World > Asia > Vietnam > South Vietnam",
            "World > Asia > Greater China", "World > Europe > Poland", "World > Europe > Russia"} <= paths
    counts = (Territory.select().count(), TerritoryMember.select().count(), TerritoryRecord.select().count())
    demo.load(2026)
    assert (Territory.select().count(), TerritoryMember.select().count(),
            TerritoryRecord.select().count()) == counts
    assert TerritoryModel.select().count() == 1

    def placed(model_class, object_name, **where):
        record = model_class.get(**where)
        row = TerritoryRecord.get((TerritoryRecord.model_id == model.id) & (TerritoryRecord.object == object_name)
                                  & (TerritoryRecord.record_id == record.id))
        return tree.path(row.territory_id)[-1]

    assert placed(Account, "account", name="Công ty TNHH Thương mại Minh An") == "North Vietnam"
    assert placed(Account, "account", name="Tập đoàn Phương Nam") == "South Vietnam"
    assert placed(Account, "account", name="Mleczarnia Mazowsze S.A.") == "Poland"
    assert placed(Account, "account", name="台灣精密工業股份有限公司") == "Greater China"
    assert placed(Account, "account", name="АО «Волжский завод»") == "Russia"
    assert placed(Account, "account", name="Northwind Trading Ltd") == "World"
    assert placed(Lead, "lead", company="Piekarnia Złoty Kłos") == "Poland"
    south = next(t for t in tree.by_id.values() if t.name == "South Vietnam")
    members = {User.get_by_id(m.user_id).email for m in services.members_of(south)}
    assert members == {"nguyen.van.an@example.com"}


def test_the_funnel_by_territory_counts_what_is_placed_there_and_the_reader_may_see(app, world):
    from crm_core.testing import api_client

    def stages(user, value):
        answer = api_client(app, user).get(f"/api/v1/reports/funnel?dimension=territory&value={value}")
        assert answer.status_code == 200, answer.get_json()
        return sum(stage["count"] for stage in answer.get_json()["stages"])

    assert stages(world["admin"], world["ids"]["poland"]) == 1
    assert stages(world["admin"], world["ids"]["south"]) == 1
    assert stages(world["rita"], world["ids"]["poland"]) == 0  # Bob's deal stays hidden
    assert stages(world["rita"], world["ids"]["south"]) == 1
    # The dimension is where an account is placed: the deepest territory, not those above it.
    assert stages(world["admin"], world["ids"]["europe"]) == 0
    europe, _ = page_and_token(signed_in(app, world["admin"]), f"{BASE}/territories/{world['ids']['europe']}")
    assert "The funnel of the records placed in this territory itself" in europe
    html, _ = page_and_token(signed_in(app, world["admin"]),
                             f"/reports/funnel?dimension=territory&value={world['ids']['poland']}")
    assert "Poland" in html


def test_the_criteria_editor_offers_the_custom_fields_of_accounts_and_leads(app, world):
    from crm_core.customfields.services import create_field

    create_field({"object": "account", "key": "fleet", "type": "number", "labels": {"en": "Fleet size", "pl": "Flota"}})
    create_field({"object": "lead", "key": "segment", "type": "choice", "labels": {"en": "Segment"},
                  "choices": [{"value": "smb", "labels": {"en": "Small business"}},
                              {"value": "ent", "labels": {"en": "Enterprise"}}]})
    create_field({"object": "account", "key": "logo", "type": "date", "labels": {"en": "Founded"}})
    browser = signed_in(app, world["admin"])
    path = f"{BASE}/models/{world['model'].id}/territories/new"
    html, token = page_and_token(browser, path)
    assert "Fleet size" in html and 'name="custom.fleet.min"' in html and 'name="custom.segment"' in html
    assert "Founded" not in html  # a date cannot decide a territory
    bad = browser.post(path, data={"csrf_token": token, "name": "Fleets", "access_level": "edit",
                                   "custom.fleet.min": "lots"})
    assert bad.status_code == 422 and 'id="e-criteria.custom.fleet"' in bad.get_data(as_text=True)
    assert not Territory.select().where(Territory.name == "Fleets").exists()
    made = browser.post(path, data={"csrf_token": token, "name": "Fleets", "access_level": "edit",
                                    "custom.fleet.min": "10", "custom.segment": "ent\nsmb"})
    assert made.status_code == 302
    fleets = Territory.get(Territory.name == "Fleets")
    assert json.loads(fleets.criteria) == {"custom.fleet": {"min": 10}, "custom.segment": ["ent", "smb"]}
    page, _ = page_and_token(browser, made.headers["Location"])
    assert "Fleet size: at least 10" in page and "Segment: Enterprise, Small business" in page


def test_a_record_is_placed_by_hand_from_its_page_and_given_back_to_the_rules(app, world):
    account = world["minh_an"]

    def row():
        return TerritoryRecord.get((TerritoryRecord.model_id == world["model"].id)
                                   & (TerritoryRecord.object == "account") & (TerritoryRecord.record_id == account.id))

    # Rita reads her account but manages no territory: no form, and a post is refused.
    rita = signed_in(app, world["rita"])
    html, rita_token = page_and_token(rita, f"/accounts/{account.id}")
    assert "Place by hand in" not in html
    place = f"{BASE}/records/account/{account.id}/place"
    assert rita.post(place, data={"csrf_token": rita_token, "territory_id": str(world["ids"]["poland"])}).status_code == 403
    # Maria manages Poland: she may place there, not in Vietnam; Bob's record she cannot read is a 404.
    maria = signed_in(app, world["maria"])
    html, token = page_and_token(maria, f"/accounts/{account.id}")
    choices = html.split('id="f-territory-place"', 1)[1].split("</select>", 1)[0]
    assert "World › Europe › Poland" in choices and "Vietnam" not in choices
    assert maria.post(place, data={"csrf_token": token, "territory_id": str(world["ids"]["south"])}).status_code == 403
    assert maria.post(f"{BASE}/records/account/{world['nowhere'].id}/place",
                      data={"csrf_token": token, "territory_id": str(world["ids"]["poland"])}).status_code == 404
    assert maria.post(f"{BASE}/records/opportunity/{world['ritas'].id}/place",
                      data={"csrf_token": token, "territory_id": str(world["ids"]["poland"])}).status_code == 404
    assert (row().territory_id, row().source) == (world["ids"]["south"], "rule")
    moved = maria.post(place, data={"csrf_token": token, "territory_id": str(world["ids"]["poland"])})
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"/accounts/{account.id}#territory-heading")
    assert (row().territory_id, row().source) == (world["ids"]["poland"], "manual")
    html, token = page_and_token(maria, f"/accounts/{account.id}")
    assert "Placed by hand in the model" in html and "Give it back to the rules" in html
    assert rita.post(f"{BASE}/records/account/{account.id}/rules", data={"csrf_token": rita_token}).status_code == 403
    assert maria.post(f"{BASE}/records/account/{account.id}/rules", data={"csrf_token": token}).status_code == 302
    assert (row().territory_id, row().source) == (world["ids"]["south"], "rule")
    assert maria.post(f"{BASE}/records/account/{account.id}/rules", data={"csrf_token": token}).status_code == 404


def test_without_any_model_the_pages_say_so_and_the_dimension_is_not_set(app):
    from crm_core.testing import api_client

    people = make_sales_team()
    account = accounts.create_account({"name": "Minh An", "country": "VN"}, actor_id=people["rita"].id)
    opps.create_opportunity({"name": "Deal", "account_id": account.id, "amount": Decimal("10")},
                            actor_id=people["rita"].id)
    g.pop("_crm_access", None)
    browser = signed_in(app, people["rita"])
    html, _ = page_and_token(browser, BASE + "/")
    assert "There is no territory model yet." in html
    page, _ = page_and_token(browser, f"/accounts/{account.id}")
    assert 'id="territory-heading"' not in page  # no active model: no panel
    rows = api_client(app, people["rita"]).get("/api/v1/reports/pipeline?by=territory").get_json()["rows"]
    assert [(row["label"], row["count"]) for row in rows] == [("Not set", 1)]
