"""Merging accounts, contacts and leads: chosen values, everything attached moves to the
survivor, the other goes to the recycle bin, both histories tell, versions of both are
checked, and the access rules decide who may merge what."""

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.accounts.models import Account, Contact
from crm_core.audit.models import FieldHistory
from crm_core.duplicates.models import DuplicatePair, MatchKey
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.org.models import RecordShare
from crm_core.permissions import Level
from crm_core.recycle import services as recycle
from crm_core.recycle.models import RecycleGroup
from crm_core.testing import api_client, make_sales_team


@pytest.fixture
def team(app):
    return make_sales_team()


def merge(client, name, survivor, other, take=(), survivor_version=None, other_version=None):
    return client.post(f"/api/v1/{name}s/{survivor.id}/merge",
                       json={"other_id": other.id, "other_version": other_version or other.version,
                             "take": list(take)},
                       headers={"If-Match": f'"{survivor_version or survivor.version}"'})


def test_merging_accounts_moves_everything_attached(app, team):
    rita = team["rita"].id
    group = accounts.create_account({"name": "Minh An Group"}, actor_id=rita)
    survivor = accounts.create_account({"name": "Minh An", "phone": "024 1234", "parent_id": group.id},
                                       actor_id=rita)
    other = accounts.create_account({"name": "Cong ty Minh An", "tax_id": "0101234567", "city": "Hà Nội"},
                                    actor_id=rita)
    child = accounts.create_account({"name": "Minh An Đà Nẵng", "parent_id": other.id}, actor_id=rita)
    boss = accounts.create_contact({"account_id": other.id, "last_name": "Trần"}, actor_id=rita)
    report = accounts.create_contact({"account_id": other.id, "last_name": "Lê", "reports_to_id": boss.id},
                                     actor_id=rita)
    gone = accounts.create_contact({"account_id": other.id, "last_name": "Vũ"}, actor_id=rita)
    recycle.move_to_bin(gone, actor_id=rita)
    lead = leads.create_lead({"last_name": "Phạm", "company": "Minh An"}, actor_id=rita)
    leads.convert(lead, actor_id=rita, account_id=other.id)
    share = org.share_record("account", other.id, "user", team["bob"].id, Level.READ, actor_id=rita)
    DuplicatePair.create(object="account", low_id=survivor.id, high_id=other.id, reason="name", score=95)
    attached = {c.id for c in Contact.select().where(Contact.account == other.id)}
    assert {boss.id, report.id, gone.id} < attached  # and the contact the conversion made

    response = merge(api_client(app, team["rita"]), "account", survivor, other, take=("tax_id", "city"))
    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["tax_id"], response.json["city"], response.json["phone"]) == (
        "Minh An", "0101234567", "Hà Nội", "024 1234")
    assert response.headers["ETag"] == f'"{response.json["version"]}"'
    assert {c.id for c in Contact.select().where(Contact.account == survivor.id)} == attached
    assert Contact.get_by_id(report.id).reports_to_id == boss.id
    assert Account.get_by_id(child.id).parent_id == survivor.id
    assert Account.get_by_id(survivor.id).parent_id == group.id
    assert Lead.get_by_id(lead.id).converted_account_id == survivor.id
    # The other is in the recycle bin, alone (its contacts stayed with the survivor)
    merged = Account.get_by_id(other.id)
    assert merged.deleted_at is not None
    bin_group = RecycleGroup.get((RecycleGroup.table == "account") & (RecycleGroup.record_id == other.id))
    assert "Minh An" in bin_group.label
    assert Contact.get_by_id(boss.id).deleted_at is None
    # The share now gives Bob the survivor; the keys and pairs of the other are gone
    assert RecordShare.get_by_id(share.id).record_id == survivor.id
    assert not MatchKey.select().where((MatchKey.object == "account") & (MatchKey.record_id == other.id)).exists()
    assert ("tax_id", "0101234567") in set(MatchKey.select(MatchKey.kind, MatchKey.value).where(
        MatchKey.record_id == survivor.id).tuples())
    assert not DuplicatePair.select().exists()
    # History: the merge on both, the move on each re-parented record
    history = api_client(app, team["rita"]).get(f"/api/v1/history/account/{survivor.id}").json
    fields = {row["field"]: row for row in history}
    assert fields["merged_from"]["new_value"] == str(other.id) and "tax_id" in fields
    assert FieldHistory.select().where((FieldHistory.table == "account") & (FieldHistory.record_id == other.id)
                                       & (FieldHistory.field == "merged_into")).exists()
    assert FieldHistory.select().where((FieldHistory.table == "contact") & (FieldHistory.record_id == boss.id)
                                       & (FieldHistory.field == "account")).exists()
    # The page of the survivor shows the merge in its history
    assert Contact.get_by_id(boss.id).version == 2


def test_merging_contacts_and_leads(app, team):
    rita = team["rita"].id
    account = accounts.create_account({"name": "Firma"}, actor_id=rita)
    anna = accounts.create_contact({"account_id": account.id, "first_name": "Anna", "last_name": "Nowak"},
                                   actor_id=rita)
    ana = accounts.create_contact({"account_id": account.id, "first_name": "Ana", "last_name": "Nowak",
                                   "email": "anna@firma.pl", "reports_to_id": anna.id}, actor_id=rita)
    intern = accounts.create_contact({"account_id": account.id, "last_name": "Intern", "reports_to_id": ana.id},
                                     actor_id=rita)
    client = api_client(app, team["rita"])
    response = merge(client, "contact", anna, ana, take=("email",))
    assert response.status_code == 200, response.json
    assert response.json["email"] == "anna@firma.pl" and response.json["reports_to_id"] is None
    assert Contact.get_by_id(intern.id).reports_to_id == anna.id

    one = leads.create_lead({"last_name": "Kowalski", "phone": "601 234 567"}, actor_id=rita)
    two = leads.create_lead({"last_name": "Kowalsky", "email": "jan@firma.pl"}, actor_id=rita)
    response = merge(client, "lead", one, two, take=("email",))
    assert response.status_code == 200 and response.json["email"] == "jan@firma.pl"
    assert Lead.get_by_id(two.id).deleted_at is not None


def test_merge_checks_versions_access_and_choices(app, team):
    rita, bob = team["rita"].id, team["bob"].id
    one = accounts.create_account({"name": "Alpha"}, actor_id=rita)
    two = accounts.create_account({"name": "Alpha Ltd", "owner_id": rita}, actor_id=rita)
    bobs = accounts.create_account({"name": "Alpha GmbH"}, actor_id=bob)
    client = api_client(app, team["rita"])
    stale_other = merge(client, "account", one, two, other_version=two.version + 1)
    assert stale_other.status_code == 412
    stale_survivor = merge(client, "account", one, two, survivor_version=one.version + 3)
    assert stale_survivor.status_code == 412
    assert merge(client, "account", one, one).status_code == 422
    unknown = merge(client, "account", one, two, take=("balance",))
    assert unknown.status_code == 422 and "take" in unknown.json["error"]["fields"]
    hidden = merge(client, "account", one, bobs)
    assert hidden.status_code == 422 and "other_id" in hidden.json["error"]["fields"]
    assert merge(api_client(app, team["bob"]), "account", one, bobs).status_code == 404
    # Bob may read Rita's account (a share) but not delete it
    org.share_record("account", one.id, "user", bob, Level.EDIT, actor_id=rita)
    g.pop("_crm_access", None)
    assert merge(api_client(app, team["bob"]), "account", bobs, one).status_code == 403
    assert Account.select().where(Account.deleted_at.is_null(False)).count() == 0
    assert Account.get_by_id(one.id).version == one.version


def test_a_plugin_reparents_its_records_in_the_same_transaction(app, team, register_plugin):
    """The hook runs inside the merge: when it fails, nothing of the merge is kept."""
    rita = team["rita"].id
    one = accounts.create_account({"name": "Alpha"}, actor_id=rita)
    two = accounts.create_account({"name": "Alpha Ltd"}, actor_id=rita)
    contact = accounts.create_contact({"account_id": two.id, "last_name": "Nowak"}, actor_id=rita)
    pm = app.extensions["crm"].pm

    class Failing:
        @staticmethod
        def crm_records_merged(app, object, survivor, merged, actor_id):
            raise RuntimeError("the documents store is down")

    from crm_core import hookimpl
    Failing.crm_records_merged = hookimpl(Failing.crm_records_merged)
    pm.register(Failing, name="failing_merge")
    try:
        response = merge(api_client(app, team["rita"]), "account", one, two, take=("name",))
        assert response.status_code == 500
    finally:
        pm.unregister(name="failing_merge")
    assert Contact.get_by_id(contact.id).account_id == two.id
    assert Account.get_by_id(two.id).deleted_at is None and Account.get_by_id(one.id).name == "Alpha"


def test_hook_crm_records_merged(app, team):
    """Plugins hear of a merge inside it: the core's records already moved, the other not yet
    in the bin, so theirs can follow in the same transaction."""
    rita = team["rita"].id
    one = accounts.create_account({"name": "Alpha"}, actor_id=rita)
    two = accounts.create_account({"name": "Alpha Ltd"}, actor_id=rita)
    contact = accounts.create_contact({"account_id": two.id, "last_name": "Nowak"}, actor_id=rita)
    seen = []

    from crm_core import hookimpl

    class Listener:
        @staticmethod
        @hookimpl
        def crm_records_merged(app, object, survivor, merged, actor_id):
            seen.append((object, survivor.id, merged.id, actor_id,
                         Contact.get_by_id(contact.id).account_id,
                         Account.get_by_id(merged.id).deleted_at))

    pm = app.extensions["crm"].pm
    pm.register(Listener, name="merge_listener")
    try:
        assert merge(api_client(app, team["rita"]), "account", one, two).status_code == 200
    finally:
        pm.unregister(name="merge_listener")
    assert seen == [("account", one.id, two.id, rita, one.id, None)]


def test_an_ancestor_further_up_is_merged_the_other_way_round(app, team):
    rita = team["rita"].id
    top = accounts.create_account({"name": "Top"}, actor_id=rita)
    middle = accounts.create_account({"name": "Middle", "parent_id": top.id}, actor_id=rita)
    bottom = accounts.create_account({"name": "Bottom", "parent_id": middle.id}, actor_id=rita)
    client = api_client(app, team["rita"])
    refused = merge(client, "account", bottom, top)
    assert refused.status_code == 422 and "other_id" in refused.json["error"]["fields"]
    assert Account.get_by_id(top.id).deleted_at is None
    done = merge(client, "account", top, bottom)  # the other way round: Bottom's place is taken by Top
    assert done.status_code == 200, done.json
    assert Account.get_by_id(middle.id).parent_id == top.id and Account.get_by_id(top.id).parent_id is None
    # the direct parent: the survivor takes its place in the group
    child = accounts.create_account({"name": "Child", "parent_id": middle.id}, actor_id=rita)
    middle = Account.get_by_id(middle.id)
    assert merge(client, "account", child, middle).status_code == 200
    assert Account.get_by_id(child.id).parent_id == top.id
