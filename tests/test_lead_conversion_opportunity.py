"""Converting a lead creates its opportunity too (unless declined): the given values or the
defaults, the lead's owner, campaign and source, in the same transaction as the account and
the contact; of two conversions at once one wins and nothing of the other is kept."""

import threading
from decimal import Decimal

import pytest
from flask import g

from crm_core.accounts.models import Account, Contact
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Stage, StageChange
from crm_core.testing import api_client, make_sales_team, page_and_token, signed_in

from tests.test_opportunities import listener


@pytest.fixture
def team(app):
    opps.default_pipeline()  # the core's pipelines are written on first use
    return make_sales_team()


def new_lead(client, **values):
    response = client.post("/api/v1/leads", json={"last_name": "Nguyễn", "company": "Minh An", **values})
    assert response.status_code == 201, response.json
    return response


def convert(client, lead, **body):
    return client.post(f"/api/v1/leads/{lead.json['id']}/convert", json=body,
                       headers={"If-Match": lead.headers["ETag"]})


def test_the_conversion_creates_the_opportunity_with_the_leads_owner_campaign_and_source(app, team):
    rita = api_client(app, team["rita"])
    campaign = rita.post("/api/v1/campaigns", json={"name": "Expo"}).json
    lead = new_lead(rita, source="event", campaign_id=campaign["id"])
    done = convert(api_client(app, team["maria"]), lead)  # her manager converts: the deal stays Rita's
    assert done.status_code == 200, done.json
    deal = done.json["opportunity"]
    stored = Opportunity.get_by_id(deal["id"])
    assert (deal["name"], deal["account_id"], deal["contact_id"]) == ("Minh An", done.json["account"]["id"],
                                                                      done.json["contact"]["id"])
    assert (stored.owner_id, stored.campaign_id, stored.source, stored.lead_id) == (
        team["rita"].id, campaign["id"], "event", lead.json["id"])
    assert (stored.pipeline_id, stored.stage.key, stored.probability, stored.currency, stored.status) == (
        opps.default_pipeline().id, "qualified", 10, "USD", "open")
    assert [(c.from_stage_id, c.to_stage_id) for c in StageChange.select()] == [(None, stored.stage_id)]


def test_the_caller_gives_the_opportunitys_values_or_declines_it(app, team):
    rita = api_client(app, team["rita"])
    renewals = opps.create_pipeline({"name": "Renewals", "stages": [
        {"name": "Due", "probability": 50}, {"name": "Renewed", "kind": "won", "probability": 100}]},
        actor_id=team["maria"].id)
    due = Stage.get((Stage.pipeline == renewals.id) & (Stage.name == "Due"))
    lead = new_lead(rita)
    done = convert(rita, lead, opportunity={"name": "Minh An renewal", "amount": "1500.50", "currency": "vnd",
                                            "expected_close_date": "2027-01-31", "pipeline_id": renewals.id,
                                            "stage_id": due.id})
    assert done.status_code == 200, done.json
    assert (done.json["opportunity"]["amount"], done.json["opportunity"]["currency"]) == ("1500.5", "VND")
    stored = Opportunity.get_by_id(done.json["opportunity"]["id"])
    assert (stored.name, stored.amount, stored.stage_id, stored.probability, str(stored.expected_close_date)) == (
        "Minh An renewal", Decimal("1500.50"), due.id, 50, "2027-01-31")

    declined = new_lead(rita, last_name="Trần", company="Other Co")
    done = convert(rita, declined, create_opportunity=False)
    assert done.status_code == 200 and done.json["opportunity"] is None
    assert Opportunity.select().count() == 1 and Account.select().count() == 2


@pytest.mark.parametrize("opportunity, field", [
    ({"stage_id": "sale_lost"}, "lost_reason_id"),   # a lost deal needs its reason: the gates apply
    ({"stage_id": "other_pipeline"}, "stage_id"),
    ({"amount": "-5"}, "amount"),
    ({"pipeline_id": 99999}, "pipeline_id"),
])
def test_a_refused_opportunity_keeps_nothing_of_the_conversion(app, team, opportunity, field):
    rita = api_client(app, team["rita"])
    other = opps.create_pipeline({"name": "Other", "stages": [{"name": "Start"}]}, actor_id=team["maria"].id)
    stage_ids = {"sale_lost": Stage.get(Stage.key == "sale_lost").id,
                 "other_pipeline": Stage.get(Stage.pipeline == other.id).id}
    if isinstance(opportunity.get("stage_id"), str):
        opportunity = {**opportunity, "stage_id": stage_ids[opportunity["stage_id"]]}
    lead = new_lead(rita)
    refused = rita.post(f"/api/v1/leads/{lead.json['id']}/convert", json={"opportunity": opportunity},
                        headers={"If-Match": lead.headers["ETag"], "Accept-Language": "ru"})
    assert refused.status_code == 422 and field in refused.json["error"]["fields"], refused.json
    assert not Account.select().exists() and not Contact.select().exists()
    assert not Opportunity.select().exists() and not StageChange.select().exists()
    assert Lead.get_by_id(lead.json["id"]).status == "new"


def test_the_campaign_goes_along_even_when_the_converter_may_not_read_it(app, team):
    bob, rita = team["bob"], team["rita"]
    campaign = leads.create_campaign({"name": "Bob's fair"}, actor_id=bob.id)
    lead = leads.create_lead({"last_name": "Lê", "company": "Hoa Sen", "campaign_id": campaign.id,
                              "owner_id": rita.id}, actor_id=bob.id)
    g.pop("_crm_access", None)
    done = leads.convert(Lead.get_by_id(lead.id), actor_id=rita.id)
    assert Opportunity.get_by_id(done.opportunity.id).campaign_id == campaign.id


def test_two_conversions_at_once_keep_one_opportunity(app, team):
    """Two connections convert the same version at the same moment: one 200, one 412; one
    account, contact, opportunity and stage history row remain, and only the winner's
    opportunity is announced."""
    rita, maria = api_client(app, team["rita"]), api_client(app, team["maria"])
    lead = new_lead(rita)
    announced = []
    undo = listener(app, "conversion_watch", crm_stage_changed=lambda app, actor_id, opportunity, from_stage,
                    to_stage: announced.append(opportunity.id))
    start = threading.Barrier(2)
    answers = []

    def run(client):
        with app.app_context():
            start.wait(timeout=10)
            answers.append(convert(client, lead, opportunity={"amount": "10"}).status_code)

    try:
        workers = [threading.Thread(target=run, args=(c,)) for c in (rita, maria)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
    finally:
        undo()
    assert sorted(answers) == [200, 412]
    assert (Account.select().count(), Contact.select().count(), Opportunity.select().count(),
            StageChange.select().count()) == (1, 1, 1, 1)
    assert announced == [Opportunity.get().id]


def test_the_lead_page_converts_with_an_opportunity_or_without(app, team):
    rita = team["rita"]
    lead = leads.create_lead({"last_name": "Nguyễn", "company": "Minh An", "status": "qualified"}, actor_id=rita.id)
    browser = signed_in(app, rita)
    html, token = page_and_token(browser, f"/leads/{lead.id}")
    assert "Create an opportunity" in html and "Proposal Submitted" in html
    proposal = Stage.get(Stage.key == "proposal_submitted")
    bad = browser.post(f"/leads/{lead.id}/convert", data={
        "version": "1", "csrf_token": token, "create_opportunity": "1", "amount": "lots"})
    assert bad.status_code == 422 and not Account.select().exists()
    done = browser.post(f"/leads/{lead.id}/convert", data={
        "version": "1", "csrf_token": token, "create_opportunity": "1", "opportunity_name": "Minh An POS",
        "amount": "2 500,50", "currency": "eur", "expected_close_date": "2027-02-01", "stage_id": str(proposal.id)},
        follow_redirects=True)
    assert done.status_code == 200 and "The opportunity “Minh An POS” has been created." in done.get_data(as_text=True)
    deal = Opportunity.get()
    assert (deal.amount, deal.currency, deal.stage_id, deal.lead_id) == (Decimal("2500.50"), "EUR", proposal.id, lead.id)
    assert "Minh An POS" in browser.get(f"/leads/{lead.id}").get_data(as_text=True)

    other = leads.create_lead({"last_name": "Trần", "company": "Sen Vàng"}, actor_id=rita.id)
    html, token = page_and_token(browser, f"/leads/{other.id}")
    done = browser.post(f"/leads/{other.id}/convert", data={"version": "1", "csrf_token": token})
    assert done.status_code == 302 and Opportunity.select().count() == 1


def test_a_rep_does_not_see_another_departments_opportunity_on_the_lead_page(app, team):
    rita, bob = team["rita"], team["bob"]
    lead = leads.create_lead({"last_name": "Nguyễn", "company": "Minh An"}, actor_id=rita.id)
    done = leads.convert(lead, actor_id=rita.id, opportunity={"name": "Secret deal"})
    # Bob is given the lead to read, not the opportunity.
    from crm_core.org import services as org
    from crm_core.permissions import Level

    org.share_record("lead", lead.id, "user", bob.id, Level.READ, actor_id=rita.id)
    g.pop("_crm_access", None)
    page = signed_in(app, bob).get(f"/leads/{lead.id}")
    assert page.status_code == 200 and "Secret deal" not in page.get_data(as_text=True)
    assert "Secret deal" in signed_in(app, team["maria"]).get(f"/leads/{lead.id}").get_data(as_text=True)
    assert done.opportunity.name == "Secret deal"
