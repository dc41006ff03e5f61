"""The pages of opportunities: the list with its filters, saved views and export, the
detail page with the stage path and the team, the form, the board with its "move to"
forms, the pipeline settings; and what a rep of another department cannot see on each."""

import re
from decimal import Decimal
from html import unescape

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, OpportunityMember, Pipeline, Stage
from crm_core.opportunities.saved_views import SavedView
from crm_core.org import services as org
from crm_core.testing import make_sales_team, make_user, signed_in
from crm_core.testing import page_and_token as page


@pytest.fixture
def world(app):
    people = make_sales_team()
    account = accounts.create_account({"name": "Minh An"}, actor_id=people["rita"].id)
    deal = opps.create_opportunity({"name": "Rita's deal", "account_id": account.id, "amount": 1200,
                                    "currency": "EUR", "expected_close_date": "2026-12-31"},
                                   actor_id=people["rita"].id)
    return {**people, "account": account, "deal": deal}


def text(response):
    return unescape(response.get_data(as_text=True))


def stage(key, pipeline_key="sales"):
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == pipeline_key)))


def test_a_rep_of_another_department_sees_nothing_of_it_and_the_manager_sees_it(app, world):
    deal = world["deal"]
    bob = signed_in(app, world["bob"])
    assert "Rita's deal" not in text(bob.get("/opportunities"))
    assert "0 opportunities" in text(bob.get("/opportunities"))
    assert "Rita's deal" not in text(bob.get("/opportunities/board"))
    assert bob.get(f"/opportunities/{deal.id}").status_code == 404
    assert bob.get(f"/opportunities/{deal.id}/edit").status_code == 404
    assert "Rita's deal" not in text(bob.get("/opportunities/export?format=csv"))
    _html, token = page(bob, "/opportunities")
    assert bob.post(f"/opportunities/{deal.id}/move", data={
        "stage_id": stage("negotiating").id, "version": "1", "csrf_token": token}).status_code == 404
    assert bob.post(f"/opportunities/{deal.id}/members", data={
        "user_id": world["bob"].id, "csrf_token": token}).status_code == 404
    maria = signed_in(app, world["maria"])
    listed = text(maria.get("/opportunities"))
    assert "Rita's deal" in listed and "1 opportunity" in listed
    assert "Rita's deal" in text(maria.get("/opportunities/board"))
    assert maria.get(f"/opportunities/{deal.id}").status_code == 200
    assert "Rita's deal" in text(maria.get("/opportunities/export?format=csv"))


def test_the_list_filters_like_the_api_and_exports_what_it_shows(app, world):
    sales = world["maria"].department_id
    north = org.create_department("North", parent=sales)
    nam = make_user("nam@example.com", "Nam")
    org.set_roles(nam, ["sales_rep"])
    org.place_user(nam, north.id)
    g.pop("_crm_access", None)
    opps.create_opportunity({"name": "Nam's deal", "account_id": world["account"].id, "owner_id": nam.id, "amount": 50,
                             "stage_id": stage("negotiating").id}, actor_id=world["maria"].id)
    maria = signed_in(app, world["maria"])
    north_list = text(maria.get(f"/opportunities?department_id={north.id}"))
    assert "Nam's deal" in north_list and "Rita's deal" not in north_list
    both = text(maria.get(f"/opportunities?department_id={sales}&sort=-amount"))
    assert both.index("Rita's deal") < both.index("Nam's deal")
    staged = text(maria.get(f"/opportunities?stage_id={stage('negotiating').id}"))
    assert "Nam's deal" in staged and "Rita's deal" not in staged
    assert "Rita's deal" in text(maria.get("/opportunities?q=Rita&close_to=2026-12-31"))
    assert "Rita's deal" not in text(maria.get("/opportunities?close_from=2027-01-01"))
    assert "not valid" in text(maria.get("/opportunities?close_from=someday"))
    export = text(maria.get(f"/opportunities/export?format=csv&department_id={north.id}"))
    assert "Nam's deal" in export and "Rita's deal" not in export


def test_saved_views_are_private_unless_shared(app, world):
    rita = signed_in(app, world["rita"])
    _html, token = page(rita, "/opportunities")
    stage_id = stage("qualified").id
    saved = rita.post("/opportunities/views", data={"name": "My qualified", "stage_id": stage_id,
                                                    "sort": "-amount", "csrf_token": token})
    assert saved.status_code == 302 and f"stage_id={stage_id}" in saved.headers["Location"]
    rita.post("/opportunities/views", data={"name": "Team view", "q": "deal", "shared": "1", "csrf_token": token})
    refused = rita.post("/opportunities/views", data={"name": " ", "csrf_token": token})
    assert refused.status_code == 302 and SavedView.select().count() == 2
    listed = text(rita.get("/opportunities"))
    assert "My qualified" in listed and "Team view" in listed
    private = SavedView.get(SavedView.name == "My qualified")
    opened = rita.get(f"/opportunities/views/{private.id}")
    assert opened.status_code == 302 and "sort=-amount" in opened.headers["Location"]
    bob = signed_in(app, world["bob"])
    bob_list = text(bob.get("/opportunities"))
    assert "Team view" in bob_list and "My qualified" not in bob_list
    assert bob.get(f"/opportunities/views/{private.id}").status_code == 404
    shared = SavedView.get(SavedView.name == "Team view")
    # The shared view shows Bob only his own records.
    assert "Rita's deal" not in text(bob.get(bob.get(f"/opportunities/views/{shared.id}").headers["Location"]))
    _html, bob_token = page(bob, "/opportunities")
    assert bob.post(f"/opportunities/views/{shared.id}/delete", data={"csrf_token": bob_token}).status_code == 403
    assert rita.post(f"/opportunities/views/{shared.id}/delete", data={"csrf_token": token}).status_code == 302
    assert SavedView.select().count() == 1


def test_create_and_edit_through_the_form(app, world):
    rita = signed_in(app, world["rita"])
    html, token = page(rita, "/opportunities/new")
    assert 'name="stage_id"' in html and 'name="lost_reason_id"' in html
    bad = rita.post("/opportunities", data={"name": "New deal", "account_id": str(world["account"].id),
                                            "probability": "140", "csrf_token": token})
    assert bad.status_code == 422 and "New deal" in text(bad) and Opportunity.select().count() == 1
    made = rita.post("/opportunities", data={"name": "New deal", "account_id": str(world["account"].id),
                                             "amount": "2 500,50", "currency": "usd", "csrf_token": token})
    assert made.status_code == 302, text(made)
    deal = Opportunity.get(Opportunity.name == "New deal")
    assert deal.amount == Decimal("2500.5") and deal.currency == "USD" and deal.probability == 10
    html, token = page(rita, f"/opportunities/{deal.id}/edit")
    refused = rita.post(f"/opportunities/{deal.id}", data={
        "name": "New deal", "stage_id": str(stage("sale_lost").id), "version": "1", "csrf_token": token})
    assert refused.status_code == 422 and "Choose why the deal was lost." in text(refused)
    assert Opportunity.get_by_id(deal.id).stage_id == stage("qualified").id


def test_the_stage_path_moves_and_a_lost_stage_asks_for_its_reason(app, world):
    deal = world["deal"]
    reason = opps.create_lost_reason({"name": "Price"})
    rita = signed_in(app, world["rita"])
    html, token = page(rita, f"/opportunities/{deal.id}")
    assert 'aria-current="step"' in html and "Negotiating" in html and "Stage history" in html
    moved = rita.post(f"/opportunities/{deal.id}/move", data={
        "stage_id": stage("negotiating").id, "version": "1", "csrf_token": token})
    assert moved.status_code == 302 and Opportunity.get_by_id(deal.id).probability == 70
    html, token = page(rita, f"/opportunities/{deal.id}?move_to={stage('sale_lost').id}")
    assert 'id="move-form"' in html and "Price" in html
    refused = rita.post(f"/opportunities/{deal.id}/move", data={
        "stage_id": stage("sale_lost").id, "version": "2", "csrf_token": token})
    page_text = text(refused)
    assert refused.status_code == 422 and "Choose why the deal was lost." in page_text
    assert "1 requirement is not met" in page_text and 'id="move-form"' in page_text
    assert Opportunity.get_by_id(deal.id).status == "open"
    lost = rita.post(f"/opportunities/{deal.id}/move", data={
        "stage_id": stage("sale_lost").id, "version": "2", "lost_reason_id": str(reason.id),
        "lost_note": "Too dear", "csrf_token": token})
    assert lost.status_code == 302
    stored = Opportunity.get_by_id(deal.id)
    assert stored.status == "lost" and stored.lost_reason_id == reason.id and stored.lost_note == "Too dear"
    stale = rita.post(f"/opportunities/{deal.id}/move", data={
        "stage_id": stage("qualified").id, "version": "1", "csrf_token": token})
    assert stale.status_code == 409


def test_the_team_on_the_detail_page(app, world):
    deal = world["deal"]
    rita = signed_in(app, world["rita"])
    _html, token = page(rita, f"/opportunities/{deal.id}")
    added = rita.post(f"/opportunities/{deal.id}/members", data={
        "user_id": world["bob"].id, "role": "presales", "access": "read", "csrf_token": token})
    assert added.status_code == 302
    twice = rita.post(f"/opportunities/{deal.id}/members", data={
        "user_id": world["bob"].id, "role": "presales", "csrf_token": token})
    assert twice.status_code == 409 and "on the team already" in text(twice)
    member = OpportunityMember.get()
    bob = signed_in(app, world["bob"])
    bob_page = text(bob.get(f"/opportunities/{deal.id}"))
    assert "Rita's deal" in bob_page and "Presales" in bob_page
    assert "Add to the team" not in bob_page
    _html, bob_token = page(bob, f"/opportunities/{deal.id}")
    assert bob.post(f"/opportunities/{deal.id}/members/{member.id}/delete",
                    data={"csrf_token": bob_token}).status_code == 403
    assert rita.post(f"/opportunities/{deal.id}/members/{member.id}", data={
        "role": "technical", "access": "edit", "csrf_token": token}).status_code == 302
    assert OpportunityMember.get().access == "edit"
    assert rita.post(f"/opportunities/{deal.id}/members/{member.id}/delete",
                     data={"csrf_token": token}).status_code == 302
    assert bob.get(f"/opportunities/{deal.id}").status_code == 404


def test_the_board_shows_columns_with_counts_and_amounts_and_moves_without_script(app, world):
    deal = world["deal"]
    opps.create_opportunity({"name": "Second", "account_id": world["account"].id, "amount": 300,
                             "currency": "EUR"}, actor_id=world["rita"].id)
    rita = signed_in(app, world["rita"])
    html, token = page(rita, "/opportunities/board")
    board = unescape(html)
    qualified = board.split(f'data-stage-id="{stage("qualified").id}"', 1)[1].split("</section>", 1)[0]
    assert "2 opportunities" in qualified and "€1,500.00" in qualified
    assert f'for="f-move-{deal.id}"' in board and 'draggable="true"' in board
    moved = rita.post(f"/opportunities/{deal.id}/move", data={
        "stage_id": stage("proposal_submitted").id, "version": "1", "next": "board", "csrf_token": token})
    assert moved.status_code == 302 and "/opportunities/board" in moved.headers["Location"]
    # A refused move from the board lands on the deal's page with its form and requirements.
    refused = rita.post(f"/opportunities/{deal.id}/move", data={
        "stage_id": stage("sale_lost").id, "version": "2", "next": "board", "csrf_token": token})
    assert refused.status_code == 422 and "Choose why the deal was lost." in text(refused)
    other = opps.create_pipeline({"name": "Projects", "stages": [
        {"name": "Scoping", "kind": "open"}, {"name": "Signed", "kind": "won", "probability": 100}]})
    projects = text(rita.get(f"/opportunities/board?pipeline_id={other.id}"))
    assert "Scoping" in projects and "Rita's deal" not in projects
    assert rita.get("/opportunities/board?pipeline_id=987654").status_code == 404
    # A reader who may not change the deal gets no "move to" form and no dragging.
    opps.add_member(deal, {"user_id": world["bob"].id, "access": "read"})
    bob_board = text(signed_in(app, world["bob"]).get("/opportunities/board"))
    assert "Rita's deal" in bob_board and f'f-move-{deal.id}' not in bob_board


def test_the_pipeline_settings_are_for_configurers(app, world):
    rita = signed_in(app, world["rita"])
    assert rita.get("/settings/pipelines").status_code == 403
    assert rita.get("/settings/pipelines/lost-reasons").status_code == 403
    admin = signed_in(app, make_user("admin@example.com", "Admin", is_admin=True))
    html, token = page(admin, "/settings/pipelines")
    assert "Qualified → Proposal Submitted" in unescape(html)
    made = admin.post("/settings/pipelines", data={"name": "Projects", "csrf_token": token})
    assert made.status_code == 302
    pipeline = Pipeline.get(Pipeline.name == "Projects")
    url = f"/settings/pipelines/{pipeline.id}"
    assert admin.post(f"{url}/stages", data={"name": "Pilot", "probability": "60", "kind": "open",
                                             "csrf_token": token}).status_code == 302
    pilot = Stage.get(Stage.name == "Pilot")
    assert admin.post(f"{url}/stages/{pilot.id}/move", data={"direction": "up", "csrf_token": token}).status_code == 302
    assert [s.name for s in opps.stages(pipeline, include_inactive=True)][-2:] == ["Pilot", "Lost"]
    bad = admin.post(f"{url}/stages/{pilot.id}", data={"name": "Pilot", "probability": "150", "kind": "open",
                                                       "active": "1", "version": str(Stage.get_by_id(pilot.id).version),
                                                       "csrf_token": token})
    assert bad.status_code == 422 and "0 to 100" in text(bad)
    renamed = admin.post(url, data={"name": "Big projects", "active": "1", "is_default": "1",
                                    "version": "1", "csrf_token": token})
    assert renamed.status_code == 302 and Pipeline.get_by_id(pipeline.id).is_default
    stale = admin.post(url, data={"name": "Again", "active": "1", "version": "1", "csrf_token": token})
    assert stale.status_code == 409
    assert admin.post("/settings/pipelines/lost-reasons", data={"name": "Price", "csrf_token": token}).status_code == 302
    assert admin.post("/settings/pipelines/lost-reasons", data={"name": "Price", "csrf_token": token}).status_code == 409
    assert "Price" in text(admin.get("/settings/pipelines/lost-reasons"))


def test_the_menu_shows_opportunities_to_readers_and_pipelines_to_configurers(app, world):
    rita_nav = text(signed_in(app, world["rita"]).get("/")).split("<nav", 1)[1].split("</nav>", 1)[0]
    assert ">Opportunities<" in rita_nav and ">Board<" in rita_nav and ">Pipelines<" not in rita_nav
    boss = make_user("boss@example.com", "Boss")
    org.set_roles(boss, ["sales_manager"])
    g.pop("_crm_access", None)
    boss_nav = text(signed_in(app, boss).get("/")).split("<nav", 1)[1].split("</nav>", 1)[0]
    assert ">Pipelines<" in boss_nav
    assert re.search(r'href="/settings/pipelines"', boss_nav)


def test_custom_fields_of_opportunities_show_in_the_form_list_and_detail(app, world):
    from crm_core.customfields import services as custom_fields

    custom_fields.create_field({"object": "opportunity", "key": "region", "type": "text",
                                "labels": {"en": "Sales region"}})
    rita = signed_in(app, world["rita"])
    html, token = page(rita, f"/opportunities/{world['deal'].id}/edit")
    assert 'name="custom.region"' in html
    saved = rita.post(f"/opportunities/{world['deal'].id}", data={
        "name": "Rita's deal", "account_id": str(world["account"].id), "custom.region": "Miền Bắc",
        "version": "1", "csrf_token": token})
    assert saved.status_code == 302, text(saved)
    listed = text(rita.get("/opportunities"))
    assert "Sales region" in listed and "Miền Bắc" in listed
    assert "Miền Bắc" in text(rita.get(f"/opportunities/{world['deal'].id}"))
