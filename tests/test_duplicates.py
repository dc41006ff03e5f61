"""Duplicates: normalised keys, the rules administrators set, the check on entry (warn and
block, never naming a record the user cannot read), the scan job and its groups, "not a
duplicate"."""

import pytest

from crm_core.accounts import services as accounts
from crm_core.duplicates import normalise as norm
from crm_core.duplicates.check import find_duplicates, find_duplicates_bulk
from crm_core.duplicates.models import DuplicatePair, MatchKey
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.testing import api_client, make_sales_team, make_user


@pytest.fixture
def team(app):
    people = make_sales_team()
    return {**people, "admin": make_user("admin@example.com", "Admin", is_admin=True)}


def set_mode(app, admin, name, mode, rules=None):
    client = api_client(app, admin)
    current = client.get(f"/api/v1/duplicates/settings/{name}")
    body = {"mode": mode, "rules": rules if rules is not None else current.json["rules"]}
    response = client.put(f"/api/v1/duplicates/settings/{name}", json=body,
                          headers={"If-Match": current.headers["ETag"]})
    assert response.status_code == 200, response.json
    return response


# -- normalisers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, country, expected", [
    ("+48 601-234-567", None, "48601234567"),
    ("0048 601 234 567", None, "48601234567"),
    ("601 234 567", "PL", "48601234567"),
    ("0912 345 678", "VN", "84912345678"),
    ("+84 912 345 678", "PL", "84912345678"),
    ("8 (495) 123-45-67", "RU", "74951234567"),
    ("+7 495 123 45 67 доб. 12", None, "74951234567"),
    ("(02) 2345-6789", "TW", "886223456789"),
    ("12-34", "PL", None),
    ("", "PL", None),
])
def test_phones_are_international_digits(raw, country, expected):
    assert norm.normalise_phone(raw, country) == expected


def test_emails_tax_ids_and_names_normalise():
    assert norm.normalise_email("  Anna.Nowak@Example.COM ") == "anna.nowak@example.com"
    assert norm.normalise_email("mailto:<X@Y.pl>") == "x@y.pl"
    assert norm.normalise_email("no-at-sign") is None
    assert norm.normalise_tax_id("PL 526-10-00-645") == norm.normalise_tax_id("5261000645") == "5261000645"
    assert norm.normalise_name("Công ty TNHH Minh An", company=True) == "minh an"
    assert norm.normalise_name("ACME GmbH", company=True) == norm.normalise_name("Acme", company=True)
    assert norm.normalise_name("北京华为技术有限公司", company=True) == "北京华为技术"
    assert norm.person_name("Łukasz", "Wójcik") == "lukasz wojcik"
    # A typo, swapped words: still a shared block
    assert norm.name_blocks("anna nowak") & norm.name_blocks("nowak anna")
    assert norm.name_blocks("anna nowak") & norm.name_blocks("ana nowak")
    assert norm.name_blocks("tran thi thao") & norm.name_blocks("tran thao")


# -- the check on entry ------------------------------------------------------------------------

def test_keys_are_stored_and_kept_up_to_date(app, team):
    lead = leads.create_lead({"last_name": "Nowak", "first_name": "Anna", "email": "A.Nowak@Firma.PL",
                              "phone": "601 234 567", "country": "PL"}, actor_id=team["rita"].id)
    keys = set(MatchKey.select(MatchKey.kind, MatchKey.value).where(MatchKey.record_id == lead.id).tuples())
    assert {("email", "a.nowak@firma.pl"), ("phone", "48601234567"), ("name", "anna nowak")} <= keys
    leads.update_lead(lead, {"email": "anna@firma.pl"}, actor_id=team["rita"].id)
    emails = [v for (v,) in MatchKey.select(MatchKey.value).where(
        (MatchKey.record_id == lead.id) & (MatchKey.kind == "email")).tuples()]
    assert emails == ["anna@firma.pl"]


def test_warn_asks_to_confirm_and_block_refuses(app, team):
    rita = api_client(app, team["rita"])
    first = rita.post("/api/v1/leads", json={"last_name": "Nowak", "first_name": "Anna",
                                             "email": "anna@firma.pl"})
    assert first.status_code == 201
    # Off by default: a twin is saved without a question
    assert rita.post("/api/v1/leads", json={"last_name": "Kowalski", "email": "jan@firma.pl"}).status_code == 201
    assert rita.post("/api/v1/leads", json={"last_name": "Kowalsky", "email": "JAN@firma.pl"}).status_code == 201

    set_mode(app, team["admin"], "lead", "warn")
    twin = {"last_name": "Nowak", "first_name": "Ana", "email": "other@firma.pl"}
    warned = rita.post("/api/v1/leads", json=twin, headers={"Accept-Language": "pl"})
    assert warned.status_code == 409, warned.json
    assert warned.json["error"]["code"] == "possible_duplicates"
    assert [d["id"] for d in warned.json["duplicates"]] == [first.json["id"]]
    assert warned.json["duplicates"][0]["reasons"] == ["name"]
    assert "Anna Nowak" in warned.json["error"]["message"] and "duplikat" in warned.json["error"]["message"]
    assert Lead.select().where(Lead.first_name == "Ana").count() == 0
    confirmed = rita.post("/api/v1/leads?confirm_duplicates=true", json=twin)
    assert confirmed.status_code == 201

    set_mode(app, team["admin"], "lead", "block")
    blocked = rita.post("/api/v1/leads?confirm_duplicates=true",
                        json={"last_name": "Someone", "email": " ANNA@firma.pl"})
    assert blocked.status_code == 422 and blocked.json["error"]["code"] == "duplicates"
    assert [d["reasons"] for d in blocked.json["duplicates"]] == [["email"]]
    # Editing: only a changed key asks again, and a record is not its own duplicate
    lead = rita.get(f"/api/v1/leads/{first.json['id']}").json
    retitled = rita.patch(f"/api/v1/leads/{lead['id']}", json={"title": "CEO"},
                          headers={"If-Match": f'"{lead["version"]}"'})
    assert retitled.status_code == 200, retitled.json
    clash = rita.patch(f"/api/v1/leads/{lead['id']}", json={"email": "jan@firma.pl"},
                       headers={"If-Match": f'"{retitled.json["version"]}"'})
    assert clash.status_code == 422 and clash.json["error"]["code"] == "duplicates"
    assert Lead.get_by_id(lead["id"]).email == "anna@firma.pl"


def test_a_record_the_user_cannot_read_is_never_named_nor_blocks(app, team):
    accounts.create_account({"name": "Hidden Trading Ltd", "tax_id": "PL5261000645"}, actor_id=team["bob"].id)
    set_mode(app, team["admin"], "account", "block")
    rita = api_client(app, team["rita"])
    response = rita.post("/api/v1/accounts", json={"name": "Hidden Trading", "tax_id": "526-100-06-45"})
    assert response.status_code == 201, response.json
    check = rita.post("/api/v1/duplicates/check", json={"object": "account",
                                                       "values": {"name": "Hidden Trading sp. z o.o."}})
    assert [d["id"] for d in check.json["duplicates"]] == [response.json["id"]]
    # Bob sees his own one and Rita's? No: only his own (Rita's is private to her department)
    bob = api_client(app, team["bob"])
    seen = bob.post("/api/v1/duplicates/check", json={"object": "account", "values": {"tax_id": "5261000645"}})
    assert len(seen.json["duplicates"]) == 1 and seen.json["duplicates"][0]["label"] == "Hidden Trading Ltd"


def test_contacts_phones_take_their_accounts_country(app, team):
    rita = team["rita"].id
    account = accounts.create_account({"name": "Minh An", "country": "VN"}, actor_id=rita)
    contact = accounts.create_contact({"account_id": account.id, "last_name": "Trần", "mobile": "0912 345 678"},
                                      actor_id=rita)
    found = find_duplicates("contact", {"last_name": "Other", "phone": "+84 912-345-678"}, rita)
    assert [m.record.id for m in found] == [contact.id] and found[0].reasons == ["phone"]


def test_rules_are_checked(app, team):
    client = api_client(app, team["admin"])
    current = client.get("/api/v1/duplicates/settings/contact")
    assert current.json["version"] == 0 and current.json["mode"] == "off"
    for rules in ([{"key": "email", "method": "fuzzy"}], [{"key": "name", "method": "fuzzy", "threshold": 20}],
                  [{"key": "tax_id", "method": "exact"}],
                  [{"key": "email", "method": "exact"}, {"key": "email", "method": "exact"}]):
        bad = client.put("/api/v1/duplicates/settings/contact", json={"mode": "warn", "rules": rules},
                         headers={"If-Match": '"0"'})
        assert bad.status_code == 422, (rules, bad.json)
    assert client.get("/api/v1/duplicates/settings/contact").json["version"] == 0
    stale = client.put("/api/v1/duplicates/settings/contact", json={"mode": "warn", "rules": []},
                       headers={"If-Match": '"3"'})
    assert stale.status_code == 412
    assert api_client(app, team["rita"]).get("/api/v1/duplicates/settings").status_code == 403
    assert client.get("/api/v1/duplicates/settings/nothing").status_code == 404


# -- the scan and its groups ----------------------------------------------------------------------

def test_the_scan_finds_groups_each_reader_sees_only_theirs(app, team):
    rita, bob = team["rita"].id, team["bob"].id
    a = leads.create_lead({"first_name": "Anna", "last_name": "Nowak", "email": "anna@firma.pl"}, actor_id=rita)
    b = leads.create_lead({"first_name": "Nowak", "last_name": "Anna"}, actor_id=rita)     # swapped
    c = leads.create_lead({"last_name": "Zieliński", "email": "ANNA@firma.pl"}, actor_id=bob)  # Bob's
    leads.create_lead({"first_name": "Piotr", "last_name": "Lewandowski"}, actor_id=rita)
    MatchKey.delete().execute()  # the scan rebuilds keys written around the services
    admin = api_client(app, team["admin"])
    assert admin.post("/api/v1/duplicates/scan", json={"object": "lead"}).status_code == 202
    assert {(p.low_id, p.high_id, p.reason) for p in DuplicatePair.select()} == {
        (a.id, b.id, "name"), (a.id, c.id, "email")}
    everyone = admin.get("/api/v1/duplicates/groups?object=lead").json
    assert [[r["id"] for r in group["records"]] for group in everyone["items"]] == [[a.id, b.id, c.id]]
    mine = api_client(app, team["rita"]).get("/api/v1/duplicates/groups?object=lead").json
    assert [[r["id"] for r in group["records"]] for group in mine["items"]] == [[a.id, b.id]]
    # Bob sees only his lead: no pair of two records he can read
    assert api_client(app, team["bob"]).get("/api/v1/duplicates/groups?object=lead").json["items"] == []
    pair_ac = DuplicatePair.get((DuplicatePair.low_id == a.id) & (DuplicatePair.high_id == c.id))
    assert api_client(app, team["rita"]).post(f"/api/v1/duplicates/pairs/{pair_ac.id}/dismiss").status_code == 404
    pair_ab = DuplicatePair.get((DuplicatePair.low_id == a.id) & (DuplicatePair.high_id == b.id))
    assert api_client(app, team["rita"]).post(f"/api/v1/duplicates/pairs/{pair_ab.id}/dismiss").status_code == 204
    assert api_client(app, team["rita"]).get("/api/v1/duplicates/groups?object=lead").json["items"] == []
    # A new scan keeps the dismissed pair dismissed
    admin.post("/api/v1/duplicates/scan", json={"object": "lead"})
    assert DuplicatePair.get((DuplicatePair.low_id == a.id) & (DuplicatePair.high_id == b.id)).dismissed_at
    assert api_client(app, team["rita"]).get("/api/v1/duplicates/groups?object=lead").json["items"] == []
    assert api_client(app, team["rita"]).post("/api/v1/duplicates/scan", json={}).status_code == 403


def test_contacts_names_are_compared_within_their_account(app, team):
    rita = team["rita"].id
    firma = accounts.create_account({"name": "Firma"}, actor_id=rita)
    other = accounts.create_account({"name": "Other"}, actor_id=rita)
    anna = accounts.create_contact({"account_id": firma.id, "first_name": "Anna", "last_name": "Nowak"},
                                   actor_id=rita)
    accounts.create_contact({"account_id": other.id, "first_name": "Anna", "last_name": "Nowak"}, actor_id=rita)
    found = find_duplicates("contact", {"account_id": firma.id, "first_name": "Ana", "last_name": "Nowak"}, rita)
    assert [m.record.id for m in found] == [anna.id]
    assert find_duplicates("contact", {"first_name": "Anna", "last_name": "Nowak"}, rita) == []


def test_many_rows_are_checked_at_once(app, team):
    rita, bob = team["rita"].id, team["bob"].id
    one = leads.create_lead({"last_name": "A", "email": "a@firma.pl"}, actor_id=rita)
    two = leads.create_lead({"last_name": "B", "phone": "+48 601 234 567"}, actor_id=rita)
    hidden = leads.create_lead({"last_name": "C", "email": "c@firma.pl"}, actor_id=bob)
    rows = [{"last_name": "x", "email": "A@FIRMA.pl"}, {"last_name": "y", "phone": "0601234567", "country": "PL"},
            {"last_name": "z", "email": "c@firma.pl"}, {"last_name": "new", "email": "new@firma.pl"}]
    assert find_duplicates_bulk("lead", rows, rita) == [[one.id], [two.id], [], []]
    assert find_duplicates_bulk("lead", rows) == [[one.id], [two.id], [hidden.id], []]
