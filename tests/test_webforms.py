"""Web-to-lead: forms managed through the API, and the public endpoint visitors post to
(idempotent, honeypot, size and rate limits, duplicate check, nothing accepted dropped)."""

import json

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.testing import api_client, make_user
from crm_core.users.models import LoginThrottle
from crm_core.webforms import services
from crm_core.webforms.models import WebForm, WebFormSubmission

FIELDS = [{"name": "first_name", "label": "First name"},
          {"name": "last_name", "label": "Last name", "required": True},
          {"name": "company", "label": "Company"},
          {"name": "email", "label": "Email", "required": True},
          {"name": "phone", "label": "Phone"},
          {"name": "description", "label": "Message"}]


@pytest.fixture
def world(app):
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    rita = make_user("rita@example.com", "Rita")
    org.set_roles(rita, ["sales_rep"])
    campaign = leads.create_campaign({"name": "Webinar"}, actor_id=admin.id)
    g.pop("_crm_access", None)
    client = api_client(app, admin)
    created = client.post("/api/v1/web-forms", json={
        "name": "Contact us", "fields": FIELDS, "target_owner_id": rita.id, "campaign_id": campaign.id,
        "source": "web", "thank_you_url": "https://www.example.com/thanks", "rate_limit": 5})
    assert created.status_code == 201, created.json
    return {"admin": admin, "rita": rita, "campaign": campaign, "client": client, "form": created.json,
            "record": WebForm.get_by_id(created.json["id"])}


def token_of(app, form):
    return app.test_client().get(f"/api/v1/web-to-lead/{form['key']}").json["token"]


def post_json(app, form, body, token=None, address="198.51.100.7", **headers):
    body = {services.TOKEN_FIELD: token or token_of(app, form), **body}
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post(f"/api/v1/web-to-lead/{form['key']}", json=body, headers=headers)


def snippet_token(form):
    return services.snippet_token(WebForm.get_by_id(form["id"]))


def post_form(app, form, data, address="198.51.100.8", **headers):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post(f"/api/v1/web-to-lead/{form['key']}",
                       data={services.TOKEN_FIELD: snippet_token(form), **data}, headers=headers)


ANNA = {"first_name": "Anna", "last_name": "Nowak", "email": "Anna@Example.PL", "company": "Mleczarnia"}


# -- forms -------------------------------------------------------------------------------------------

def test_a_form_gives_an_embeddable_snippet_without_script(world):
    form = world["form"]
    snippet = form["snippet"]
    assert f'action="{form["action_url"]}"' in snippet and "<script" not in snippet.lower()
    assert f'<input type="hidden" name="{services.TOKEN_FIELD}" value="{snippet_token(form)}">' in snippet
    assert 'class="crm-hp"' in snippet and ".crm-hp{" in snippet and 'name="website"' in snippet
    assert 'name="last_name"' in snippet and 'required' in snippet
    assert "secret" not in form  # the key that signs tokens never leaves the server


def test_only_managers_see_and_change_forms(app, world):
    rita = api_client(app, world["rita"])
    assert rita.get("/api/v1/web-forms").status_code == 403
    assert rita.post("/api/v1/web-forms", json={"name": "x", "fields": FIELDS}).status_code == 403
    assert rita.get(f"/api/v1/web-forms/{world['form']['id']}/submissions").status_code == 403
    assert app.test_client().get("/api/v1/web-forms").status_code == 401
    listed = world["client"].get("/api/v1/web-forms").json
    assert listed["total"] == 1 and listed["items"][0]["name"] == "Contact us"


def test_a_named_permission_lets_a_sales_manager_manage_forms(app, world):
    from crm_core.org.models import Role, RoleGrant

    maria = make_user("maria@example.com", "Maria")
    org.set_roles(maria, ["sales_manager"])
    g.pop("_crm_access", None)
    assert api_client(app, maria).get("/api/v1/web-forms").status_code == 403
    role = org.role_by_key("sales_manager")
    RoleGrant.create(role=role.id, permission="webforms.manage")
    Role.update(grants_set=True).where(Role.id == role.id).execute()
    g.pop("_crm_access", None)
    assert api_client(app, maria).get("/api/v1/web-forms").status_code == 200


@pytest.mark.parametrize("change, field", [
    ({"thank_you_url": "javascript:alert(1)"}, "thank_you_url"),
    ({"thank_you_url": "ftp://example.com/"}, "thank_you_url"),
    ({"fields": [{"name": "email", "label": "Email"}]}, "fields"),
    ({"fields": [{"name": "last_name", "label": "Name", "required": True},
                 {"name": "last_name", "label": "Again"}]}, "fields"),
    ({"allowed_origins": ["not a site"]}, "allowed_origins"),
    ({"target_owner_id": 999999}, "target_owner_id"),
    ({"campaign_id": 999999}, "campaign_id"),
])
def test_bad_form_settings_are_refused_and_nothing_changes(world, change, field):
    client, form = world["client"], world["form"]
    response = client.patch(f"/api/v1/web-forms/{form['id']}", json=change,
                            headers={"If-Match": f'"{form["version"]}"', "Accept-Language": "pl"})
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert WebForm.get_by_id(form["id"]).version == form["version"]


def test_changes_need_the_version_seen(world):
    client, form = world["client"], world["form"]
    path = f"/api/v1/web-forms/{form['id']}"
    assert client.patch(path, json={"name": "New"}).status_code == 428
    assert client.patch(path, json={"name": "New"}, headers={"If-Match": '"99"'}).status_code == 412
    done = client.patch(path, json={"name": "New", "allowed_origins": ["https://WWW.example.com/path"]},
                        headers={"If-Match": f'"{form["version"]}"'})
    assert done.status_code == 200 and done.json["name"] == "New"
    assert done.json["allowed_origins"] == ["https://www.example.com"]


# -- the public endpoint -----------------------------------------------------------------------------

def test_a_json_submission_becomes_a_lead_and_is_stored_with_it(app, world):
    response = post_json(app, world["form"], {**ANNA, "utm": "spring"})
    assert response.status_code == 201, response.json
    submission = WebFormSubmission.get(WebFormSubmission.uid == response.json["id"])
    assert set(response.json) == {"id"}  # the visitor learns nothing about the CRM's records
    lead = Lead.get_by_id(submission.lead_id)
    assert (lead.last_name, lead.email, lead.company) == ("Nowak", "anna@example.pl", "Mleczarnia")
    assert lead.owner_id == world["rita"].id and lead.campaign_id == world["campaign"].id
    assert lead.source == "web" and lead.status == "new"
    assert submission.result == "lead" and submission.address == "198.51.100.7"
    assert json.loads(submission.payload) == {**ANNA, "utm": "spring"}  # raw, unasked fields too
    listed = world["client"].get(f"/api/v1/web-forms/{world['form']['id']}/submissions").json
    assert listed["total"] == 1 and listed["items"][0]["lead_id"] == lead.id


def test_a_form_post_is_redirected_to_the_thank_you_page(app, world):
    response = post_form(app, world["form"], ANNA)
    assert response.status_code == 303
    assert response.headers["Location"] == "https://www.example.com/thanks"
    assert Lead.select().count() == 1


def test_without_a_thank_you_page_the_visitor_is_thanked_in_their_language(app, world):
    form, record = world["form"], world["record"]
    services.update_form(record, {"thank_you_url": None}, actor_id=world["admin"].id)
    response = post_form(app, form, ANNA, **{"Accept-Language": "ru"})
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    assert "Спасибо" in html and "<script" not in html and "Nowak" not in html


def test_the_same_idempotency_key_gives_the_first_result_and_creates_nothing(app, world):
    form = world["form"]
    first = post_json(app, form, ANNA, **{"Idempotency-Key": "order-1"})
    again = post_json(app, form, {**ANNA, "last_name": "Other"}, **{"Idempotency-Key": "order-1"})
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    assert Lead.select().count() == 1 and WebFormSubmission.select().count() == 1
    other = post_json(app, form, ANNA, **{"Idempotency-Key": "order-2"})
    assert other.json["id"] != first.json["id"] and Lead.select().count() == 2


def test_the_same_submission_token_gives_the_first_result(app, world):
    form = world["form"]
    token = token_of(app, form)
    first = post_json(app, form, ANNA, token=token)
    again = post_json(app, form, {**ANNA, "company": "Changed"}, token=token)
    assert again.status_code == 201 and again.json["id"] == first.json["id"]
    assert Lead.select().count() == 1


def test_the_snippet_token_repeats_the_same_post_but_never_swallows_another_visitor(app, world):
    form = world["form"]
    first = post_form(app, form, ANNA)
    double_click = post_form(app, form, ANNA)
    other_visitor = post_form(app, form, {"last_name": "Kowalski", "email": "jan@example.pl"})
    assert first.status_code == double_click.status_code == other_visitor.status_code == 303
    assert sorted(lead.last_name for lead in Lead.select()) == ["Kowalski", "Nowak"]
    assert WebFormSubmission.select().count() == 2


def test_a_filled_honeypot_looks_like_success_but_is_kept_as_spam(app, world):
    form = world["form"]
    response = post_json(app, form, {**ANNA, "website": "http://spam.example"})
    assert response.status_code == 201 and set(response.json) == {"id"}
    assert Lead.select().count() == 0
    spam = WebFormSubmission.get(WebFormSubmission.uid == response.json["id"])
    assert spam.result == "spam" and spam.lead_id is None
    assert post_form(app, form, {**ANNA, "website": "x"}).status_code == 303  # same answer as success
    listed = world["client"].get(f"/api/v1/web-forms/{form['id']}/submissions?result=spam").json
    assert listed["total"] == 2 and {item["result"] for item in listed["items"]} == {"spam"}
    assert world["client"].get(f"/api/v1/web-forms/{form['id']}/submissions?result=lead").json["total"] == 0


def test_a_body_over_the_limit_is_a_413_in_the_visitors_language(app, world):
    form = world["form"]
    big = {**ANNA, "description": "x" * (services.MAX_BODY + 10)}
    response = post_json(app, form, big, **{"Accept-Language": "pl"})
    assert response.status_code == 413
    assert response.json["error"]["message"] == "Formularz jest za duży, aby go wysłać. Skróć tekst i spróbuj ponownie."
    page = post_form(app, form, big, **{"Accept-Language": "pl"})
    assert page.status_code == 413 and "Formularz jest za duży" in page.get_data(as_text=True)
    assert Lead.select().count() == 0 and WebFormSubmission.select().count() == 0


def test_a_field_over_its_limit_or_missing_is_a_422_per_field_and_nothing_is_stored(app, world):
    form = world["form"]
    response = post_json(app, form, {"last_name": "N" * 101, "description": "d" * 5001},
                         **{"Accept-Language": "vi"})
    assert response.status_code == 422
    fields = response.json["error"]["fields"]
    assert set(fields) == {"last_name", "description", "email"}
    assert fields["last_name"] == ["Tối đa 100 ký tự."]
    assert fields["email"] == ["Trường này là bắt buộc."]
    bad_email = post_json(app, form, {"last_name": "Nowak", "email": "not-an-email"})
    assert bad_email.status_code == 422 and set(bad_email.json["error"]["fields"]) == {"email"}
    not_text = post_json(app, form, {"last_name": ["a"], "email": "a@example.com"})
    assert not_text.status_code == 422 and "last_name" in not_text.json["error"]["fields"]
    page = post_form(app, form, {"last_name": "Nowak"}, **{"Accept-Language": "vi"})
    assert page.status_code == 422 and "Email" in page.get_data(as_text=True)
    assert Lead.select().count() == 0 and WebFormSubmission.select().count() == 0


def test_the_rate_limit_is_per_address_and_counted_in_the_database(app, world):
    form = world["form"]
    limit = world["record"].rate_limit
    statuses = [post_json(app, form, {**ANNA, "email": f"a{i}@example.com"}).status_code
                for i in range(limit + 2)]
    assert statuses == [201] * limit + [429, 429]
    blocked = post_json(app, form, ANNA, **{"Accept-Language": "zh"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert blocked.json["error"]["message"] == "提交次数过多，请稍后再试。"
    assert LoginThrottle.select().where(LoginThrottle.key.startswith("webform:")).count() == 1
    assert post_json(app, form, ANNA, address="203.0.113.50").status_code == 201
    assert Lead.select().count() == limit + 1


def test_a_possible_duplicate_is_accepted_and_flagged(app, world):
    admin = world["admin"]
    account = accounts.create_account({"name": "Mleczarnia"}, actor_id=admin.id)
    contact = accounts.create_contact({"account_id": account.id, "last_name": "Nowak",
                                       "email": "anna@example.pl"}, actor_id=admin.id)
    old = leads.create_lead({"last_name": "Kowalski", "phone": "+48 (22) 555-01-02"}, actor_id=admin.id)
    form = world["form"]
    by_email = post_json(app, form, ANNA)
    # The duplicate engine's normalised phone: "0048 22 555 01 02" is "+48 (22) 555-01-02".
    by_phone = post_json(app, form, {"last_name": "Kowalski", "email": "jan@example.pl", "phone": "0048 22 555 01 02"})
    fresh = post_json(app, form, {"last_name": "Nowy", "email": "nowy@example.pl"})
    found = {s.uid: (s.duplicate_of, s.duplicate_id) for s in WebFormSubmission.select()}
    assert found[by_email.json["id"]] == ("contact", contact.id)
    assert found[by_phone.json["id"]] == ("lead", old.id)
    assert found[fresh.json["id"]] == (None, None)
    assert Lead.select().count() == 4  # every one became a lead anyway


def test_the_links_show_only_what_the_reader_may_see(app, world):
    """A manager of forms who may not read the new lead (private by default, owned by Rita)
    nor the duplicate sees the submission without the links; an administrator sees them."""
    from crm_core.org.models import Role, RoleGrant

    bob = make_user("bob@example.com", "Bob")
    org.set_roles(bob, ["sales_manager"])
    role = org.role_by_key("sales_manager")
    RoleGrant.create(role=role.id, permission="webforms.manage")
    Role.update(grants_set=True).where(Role.id == role.id).execute()
    other = make_user("other@example.com", "Other")
    hidden = leads.create_lead({"last_name": "Hidden", "email": "anna@example.pl", "owner_id": other.id},
                               actor_id=other.id)
    post_json(app, world["form"], ANNA)
    g.pop("_crm_access", None)
    path = f"/api/v1/web-forms/{world['form']['id']}/submissions"
    seen = api_client(app, bob).get(path).json["items"][0]
    assert (seen["lead_id"], seen["duplicate_of"], seen["duplicate_id"]) == (None, None, None)
    assert seen["payload"]["last_name"] == "Nowak"
    full = world["client"].get(path).json["items"][0]
    assert full["lead_id"] == WebFormSubmission.get().lead_id
    assert (full["duplicate_of"], full["duplicate_id"]) == ("lead", hidden.id)


def test_a_missing_or_foreign_token_is_refused(app, world):
    form = world["form"]
    other = world["client"].post("/api/v1/web-forms", json={"name": "Other", "fields": FIELDS}).json
    for token in ("", "s.x.1.abc", token_of(app, other), snippet_token(other)):
        response = post_json(app, form, ANNA, token=token or "missing")
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_token"
    assert Lead.select().count() == 0


def test_an_expired_submission_token_is_refused(app, world):
    record = world["record"]
    old = services.issue_token(record, now=1_000_000)
    assert post_json(app, world["form"], ANNA, token=old).status_code == 400


def test_a_stopped_or_unknown_form_is_a_404(app, world):
    form, record = world["form"], world["record"]
    assert app.test_client().post("/api/v1/web-to-lead/nope", json=ANNA).status_code == 404
    services.update_form(record, {"active": False}, actor_id=world["admin"].id)
    assert post_json(app, form, ANNA, token="x").status_code == 404
    assert app.test_client().get(f"/api/v1/web-to-lead/{form['key']}").status_code == 404


def test_allowed_origins_refuse_other_sites(app, world):
    form, record = world["form"], world["record"]
    services.update_form(record, {"allowed_origins": ["https://www.example.com"]}, actor_id=world["admin"].id)
    refused = post_form(app, form, ANNA, Origin="https://evil.example.net")
    assert refused.status_code == 403
    assert post_form(app, form, ANNA, Origin="https://www.example.com").status_code == 303
    assert post_json(app, form, {**ANNA, "last_name": "Server"}).status_code == 201  # no Origin: a server
    assert Lead.select().count() == 2


def test_the_endpoint_needs_no_sign_in_and_no_csrf_token(app, world):
    browser = app.test_client()
    response = browser.post(f"/api/v1/web-to-lead/{world['form']['key']}",
                            data={services.TOKEN_FIELD: snippet_token(world["form"]), **ANNA},
                            headers={"Origin": "https://www.example.com", "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 303


def test_the_lead_and_its_submission_are_written_together(app, world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_store", broken)
    response = post_json(app, world["form"], ANNA)
    assert response.status_code == 500
    assert Lead.select().count() == 0  # no lead without its stored submission


def test_the_target_owner_falls_back_to_the_forms_owner(app, world):
    from crm_core.users.models import User

    User.update(active=False).where(User.id == world["rita"].id).execute()
    record = WebForm.get_by_id(world["form"]["id"])
    assert services.choose_owner(record, {}) == world["admin"].id
    services.update_form(record, {"assign_by": "rules"}, actor_id=world["admin"].id)
    response = post_json(app, world["form"], ANNA)
    assert Lead.get_by_id(WebFormSubmission.get(WebFormSubmission.uid == response.json["id"]).lead_id
                          ).owner_id == world["admin"].id


def test_a_race_on_the_same_key_keeps_one(app, world, monkeypatch):
    """Two posts with the same key at once: the loser's lead is rolled back and it answers
    with the winner's submission."""
    form = world["form"]
    real_first = services._first
    calls = {"n": 0}

    def late_first(form_record, key):
        calls["n"] += 1
        if calls["n"] == 1:  # the other request stored it between our check and our insert
            winner = real_first(form_record, key)
            assert winner is None
            services._store(form_record, key, "203.0.113.1", {"last_name": "Winner"}, "spam")
            return None
        return real_first(form_record, key)

    monkeypatch.setattr(services, "_first", late_first)
    response = post_json(app, form, ANNA, **{"Idempotency-Key": "same"})
    assert response.status_code == 201
    assert WebFormSubmission.get(WebFormSubmission.uid == response.json["id"]).address == "203.0.113.1"
    assert Lead.select().count() == 0 and WebFormSubmission.select().count() == 1


def test_the_demo_has_a_working_contact_form(app):
    from crm_core.demo import load_demo

    assert load_demo("a demo pass phrase 2026")["web_forms"] == 1
    form = WebForm.get(WebForm.name == "Website contact form")
    assert form.campaign_id is not None and form.thank_you_url.startswith("https://")
    response = post_json(app, {"key": form.key, "id": form.id},
                         {"last_name": "Demo", "email": "visitor@example.com"})
    assert response.status_code == 201
    assert Lead.get_by_id(WebFormSubmission.get().lead_id).owner_id == form.target_owner_id
    assert load_demo("a demo pass phrase 2026")["web_forms"] == 0


def test_the_forms_settings_never_refuse_a_visitor(app, world):
    """An owner who left and a campaign in the recycle bin: the lead is still made, for the
    first active administrator and without the campaign."""
    from crm_core.users.models import User

    record = world["record"]
    User.update(active=False).where(User.id.in_([world["rita"].id, world["admin"].id])).execute()
    boss = make_user("boss@example.com", "Boss", is_admin=True)
    leads.delete_campaign(world["campaign"], actor_id=boss.id)
    response = post_json(app, world["form"], ANNA)
    assert response.status_code == 201, response.json
    lead = Lead.get_by_id(WebFormSubmission.get().lead_id)
    assert lead.owner_id == boss.id and lead.campaign_id is None
    assert services.choose_owner(record, {}) == boss.id


def test_the_shared_counter_blocks_over_the_limit_then_forgets(app):
    import datetime as dt

    from crm_core.users import throttle

    rule = throttle.Rule("webform", 2, dt.timedelta(minutes=10), dt.timedelta(minutes=10))
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=25)
    waits = [throttle.hit("webform:test|10.0.0.1", rule, now=past) for _ in range(4)]
    assert waits[:2] == [0, 0] and all(600 <= wait <= 601 for wait in waits[2:])
    assert throttle.hit("webform:test|10.0.0.2", rule, now=past) == 0  # another address
    assert throttle.hit("webform:test|10.0.0.1", rule) == 0  # window and block are over
