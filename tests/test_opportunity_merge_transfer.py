"""Opportunities follow merges (accounts, contacts, leads) and transfers of ownership
(their own, or with their accounts: the open ones the account's owner holds)."""

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.audit.models import FieldHistory
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Stage
from crm_core.org import services as org
from crm_core.org.models import RecordShare
from crm_core.permissions import Level
from crm_core.testing import api_client, make_sales_team, make_user

from tests.test_merge import merge


@pytest.fixture
def team(app):
    people = make_sales_team()
    people["tom"] = make_user("tom@example.com", "Tom")
    org.set_roles(people["tom"], ["sales_rep"])
    g.pop("_crm_access", None)
    return people


def deal(account, owner, **values):
    return opps.create_opportunity({"name": f"Deal {account.name}", "account_id": account.id, **values},
                                   actor_id=owner.id)


def test_merging_accounts_and_contacts_moves_their_opportunities(app, team):
    rita = team["rita"]
    keep = accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    gone = accounts.create_account({"name": "ACME Ltd"}, actor_id=rita.id)
    anna = accounts.create_contact({"account_id": keep.id, "last_name": "Nowak"}, actor_id=rita.id)
    ana = accounts.create_contact({"account_id": gone.id, "last_name": "Nowak", "email": "a@acme.example"},
                                  actor_id=rita.id)
    moved = deal(gone, rita, contact_id=ana.id)
    stays = deal(keep, rita)
    before = moved.version
    client = api_client(app, rita)
    assert merge(client, "account", keep, gone).status_code == 200
    moved = Opportunity.get_by_id(moved.id)
    assert (moved.account_id, moved.version) == (keep.id, before + 1)
    assert Opportunity.get_by_id(stays.id).account_id == keep.id
    assert FieldHistory.select().where((FieldHistory.table == "opportunity") & (FieldHistory.record_id == moved.id)
                                       & (FieldHistory.field == "account")).exists()
    # Ana is a contact of Acme now (her account merged): merging her into Anna moves the deal's contact.
    ana = type(ana).get_by_id(ana.id)
    assert merge(client, "contact", type(anna).get_by_id(anna.id), ana).status_code == 200
    assert Opportunity.get_by_id(moved.id).contact_id == anna.id


def test_a_stale_merge_moves_no_opportunity(app, team):
    rita = team["rita"]
    keep = accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    gone = accounts.create_account({"name": "ACME Ltd"}, actor_id=rita.id)
    moved = deal(gone, rita)
    response = merge(api_client(app, rita), "account", keep, gone, survivor_version=keep.version + 5)
    assert response.status_code == 412
    assert Opportunity.get_by_id(moved.id).account_id == gone.id


def test_transferring_opportunities_and_accounts_with_their_open_opportunities(app, team):
    rita, maria, tom, bob = team["rita"], team["maria"], team["tom"], team["bob"]
    account = accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    open_deal = deal(account, rita)
    colleague = deal(account, maria)  # Maria's deal on Rita's account stays Maria's
    won = deal(account, rita, stage_id=Stage.get(Stage.key == "sale_agreed").id)
    org.share_record("opportunity", open_deal.id, "user", bob.id, Level.READ, actor_id=rita.id)
    manager = api_client(app, maria)
    body = {"object": "account", "ids": [account.id], "to_owner_id": tom.id, "with_opportunities": True}
    preview = manager.post("/api/v1/transfers", json=body)
    assert preview.status_code == 200, preview.json
    assert (preview.json["count"], preview.json["opportunities"]) == (1, 1)
    done = manager.post("/api/v1/transfers", json={**body, "expected_count": 1})
    assert done.json == {"count": 1, "opportunities": 1, "transferred": True, "sample": []}
    owners = {o.id: o.owner_id for o in Opportunity.select()}
    assert owners == {open_deal.id: tom.id, colleague.id: maria.id, won.id: rita.id}
    assert not RecordShare.select().where((RecordShare.object == "opportunity")
                                          & (RecordShare.record_id == open_deal.id)).exists()

    # Opportunities on their own, chosen by owner; a rep cannot take another department's.
    body = {"object": "opportunity", "from_owner_id": rita.id, "to_owner_id": maria.id}
    preview = manager.post("/api/v1/transfers", json=body)
    assert preview.json["count"] == 1 and [o["id"] for o in preview.json["sample"]] == [won.id]
    assert manager.post("/api/v1/transfers", json={**body, "expected_count": 1}).json["count"] == 1
    assert Opportunity.get_by_id(won.id).owner_id == maria.id
    outsider = api_client(app, bob)
    refused = outsider.post("/api/v1/transfers", json={"object": "opportunity", "ids": [won.id],
                                                       "to_owner_id": bob.id})
    assert refused.json["count"] == 0 and refused.json["sample"] == []


def test_only_accounts_take_opportunities_along(app, team):
    response = api_client(app, team["maria"]).post("/api/v1/transfers", json={
        "object": "contact", "from_owner_id": team["rita"].id, "to_owner_id": team["tom"].id,
        "with_opportunities": True}, headers={"Accept-Language": "vi"})
    assert response.status_code == 422 and "with_opportunities" in response.json["error"]["fields"]


def test_the_transfer_page_takes_open_opportunities_along(app, team):
    from crm_core.testing import page_and_token, signed_in

    rita, tom = team["rita"], team["tom"]
    account = accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    open_deal = deal(account, rita)
    browser = signed_in(app, team["maria"])
    _html, token = page_and_token(browser, "/transfers")
    form = {"csrf_token": token, "object": "account", "from_owner_id": str(rita.id), "to_owner_id": str(tom.id),
            "ids": "", "with_opportunities": "1"}
    page = browser.post("/transfers", data=form)
    assert page.status_code == 200 and "1 open opportunity would go with them." in page.get_data(as_text=True)
    done = browser.post("/transfers", data={**form, "expected_count": "1"}, follow_redirects=True)
    assert "1 open opportunity went with them." in done.get_data(as_text=True)
    assert Opportunity.get_by_id(open_deal.id).owner_id == tom.id
