"""Signing in and out, sessions that really end, CSRF, API tokens, passwords."""


import pytest

from crm_core.testing import DEFAULT_PASSWORD, browser_login, csrf_token_from, make_user


@pytest.fixture
def rep(app):
    return make_user("an.nguyen@example.com", "Nguyễn Văn An", locale="en")


def test_sign_in_sets_a_new_http_only_lax_session_cookie(app, rep):
    browser = app.test_client()
    browser.get("/login")
    before = browser.get_cookie("session")
    response = browser_login(browser, rep.email)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert browser.get_cookie("session").value != before.value
    assert browser.get("/").status_code == 200


def test_session_cookie_is_secure_behind_https(app, rep):
    browser = app.test_client()
    page = browser.get("/login", base_url="https://crm.example.com")
    token = csrf_token_from(page.get_data(as_text=True))
    response = browser.post("/login", base_url="https://crm.example.com",
                            data={"email": rep.email, "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_cookie_captured_before_logout_is_refused_after_it(app, rep):
    browser = app.test_client()
    browser_login(browser, rep.email)
    captured = browser.get_cookie("session").value
    token = csrf_token_from(browser.get("/").get_data(as_text=True))
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", captured)
    response = thief.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert thief.get("/api/v1/users/me").status_code == 401


def test_disabling_a_user_ends_their_sessions_and_tokens_at_once(app, rep, client):
    browser = app.test_client()
    browser_login(browser, rep.email)
    program = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": rep.email, "password": DEFAULT_PASSWORD})
    program.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + token.json["token"]
    assert browser.get("/").status_code == 200 and program.get("/api/v1/users/me").status_code == 200
    version = client.get(f"/api/v1/users/{rep.id}").headers["ETag"]
    assert client.patch(f"/api/v1/users/{rep.id}", json={"active": False},
                        headers={"If-Match": version}).status_code == 200
    assert browser.get("/").status_code == 302
    assert program.get("/api/v1/users/me").status_code == 401
    refused = browser_login(app.test_client(), rep.email)
    assert refused.status_code == 401


def test_wrong_password_and_unknown_email_get_the_same_answer(app, rep):
    wrong = browser_login(app.test_client(), rep.email, "not the password at all")
    unknown = browser_login(app.test_client(), "nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    message = "The email or password is incorrect."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_login_page_speaks_the_browsers_language(app, rep):
    page = app.test_client().get("/login", headers={"Accept-Language": "pl-PL,pl;q=0.9"})
    assert '<html lang="pl">' in page.get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.example.com/", "//evil.example.com/x", "javascript:alert(1)"])
def test_next_never_redirects_to_another_site(app, rep, target):
    browser = app.test_client()
    page = browser.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    response = browser.post("/login", query_string={"next": target},
                            data={"email": rep.email, "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_next_keeps_a_local_path(app, rep):
    browser = app.test_client()
    first = browser.get("/profile?x=1")
    assert first.headers["Location"] == "/login?next=/profile?x%3D1" or "next=" in first.headers["Location"]
    page = browser.get(first.headers["Location"])
    token = csrf_token_from(page.get_data(as_text=True))
    response = browser.post(first.headers["Location"],
                            data={"email": rep.email, "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/profile?x=1"


def test_state_change_without_csrf_token_is_refused(app, rep):
    browser = app.test_client()
    browser_login(browser, rep.email)
    response = browser.post("/profile", data={"name": "Changed", "locale": "vi",
                                              "timezone": "Asia/Ho_Chi_Minh", "version": "1"})
    assert response.status_code == 400
    assert "The form has expired." in response.get_data(as_text=True)
    with app.app_context():
        from crm_core.users.models import User
        assert User.get_by_id(rep.id).name == "Nguyễn Văn An"


def test_state_change_from_a_foreign_origin_is_refused(app, rep):
    browser = app.test_client()
    browser_login(browser, rep.email)
    token = csrf_token_from(browser.get("/profile").get_data(as_text=True))
    data = {"name": "Changed", "locale": "vi", "timezone": "Asia/Ho_Chi_Minh", "version": "1",
            "csrf_token": token}
    foreign = browser.post("/profile", data=data, headers={"Origin": "https://evil.example.com"})
    assert foreign.status_code == 403
    assert "came from another site" in foreign.get_data(as_text=True)
    cross_site = browser.post("/profile", data=data, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    same = browser.post("/profile", data=data, headers={"Origin": "http://localhost"})
    assert same.status_code == 302


def test_cookie_authenticated_api_write_needs_the_csrf_header(app, rep):
    browser = app.test_client()
    browser_login(browser, rep.email)
    me = browser.get("/api/v1/users/me")
    refused = browser.patch("/api/v1/users/me".replace("me", str(rep.id)), json={"name": "X"},
                            headers={"If-Match": me.headers["ETag"]})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "csrf_failed"
    token = csrf_token_from(browser.get("/profile").get_data(as_text=True))
    accepted = browser.patch(f"/api/v1/users/{rep.id}", json={"name": "X"},
                             headers={"If-Match": me.headers["ETag"], "X-CSRFToken": token})
    assert accepted.status_code == 200


def test_login_form_itself_needs_csrf(app, rep):
    response = app.test_client().post("/login", data={"email": rep.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 400


def test_api_token_issue_use_list_and_revoke(app, rep):
    program = app.test_client()
    issued = program.post("/api/v1/auth/token", json={"username": rep.email.upper(),
                                                       "password": DEFAULT_PASSWORD, "name": "laptop"})
    assert issued.status_code == 201
    token = issued.json["token"]
    assert token.startswith("crm_") and issued.json["user"]["email"] == rep.email
    assert "password" not in issued.json["user"]
    with app.app_context():
        from crm_core.users.models import ApiToken
        stored = ApiToken.get(ApiToken.name == "laptop")
        assert token not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64
    headers = {"Authorization": f"Bearer {token}"}
    listed = program.get("/api/v1/auth/tokens", headers=headers).json
    assert [t["name"] for t in listed] == ["laptop"] and "token" not in listed[0]
    assert program.delete(f"/api/v1/auth/tokens/{listed[0]['id']}", headers=headers).status_code == 204
    assert program.get("/api/v1/users/me", headers=headers).status_code == 401


def test_someone_elses_token_cannot_be_revoked(app, rep, client):
    mine = client.get("/api/v1/auth/tokens").json[0]
    other = app.test_client()
    token = other.post("/api/v1/auth/token", json={"username": rep.email,
                                                   "password": DEFAULT_PASSWORD}).json["token"]
    response = other.delete(f"/api/v1/auth/tokens/{mine['id']}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert client.get("/api/v1/users/me").status_code == 200


def test_bad_credentials_for_a_token(app, rep):
    response = app.test_client().post("/api/v1/auth/token", json={"username": rep.email, "password": "nope nope nope"})
    assert response.status_code == 401
    assert response.json["error"] == {"code": "invalid_credentials",
                                      "message": "The email or password is incorrect.", "fields": {}}


def test_api_without_token_is_401_with_the_envelope(app):
    response = app.test_client().get("/api/v1/users")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="crm"'
    garbage = app.test_client().get("/api/v1/users", headers={"Authorization": "Bearer crm_forged"})
    assert garbage.status_code == 401


@pytest.mark.parametrize("password", [
    "Ж" * 3 + "пароль-очень-длинный-и-странный-🦊-" + "x" * 20,   # non-ASCII
    "q7#Lm" * 12 + "Zp9!",                                         # 64 characters
    "mật khẩu rất dài của tôi nhé 2026",
])
def test_long_and_non_ascii_passwords_work(app, password):
    assert len(password) >= 30
    user = make_user("long@example.com", password=password)
    assert browser_login(app.test_client(), user.email, password).status_code == 302


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "1234567890", "iloveyou2020"])
def test_common_passwords_are_refused(app, client, password):
    response = client.post("/api/v1/users", json={"email": "c@example.com", "name": "C", "password": password})
    assert response.status_code == 422
    assert "too common or too easy to guess" in response.json["error"]["fields"]["password"][0]


def test_password_containing_the_users_email_is_refused(app, client):
    response = client.post("/api/v1/users", json={"email": "kowalska.anna@example.com", "name": "Anna",
                                                  "password": "kowalska.anna2"})
    assert response.status_code == 422


def test_changing_your_password_ends_your_other_sessions(app, rep):
    laptop, phone = app.test_client(), app.test_client()
    browser_login(laptop, rep.email)
    browser_login(phone, rep.email)
    token = csrf_token_from(laptop.get("/profile").get_data(as_text=True))
    new = "a completely different phrase 77"
    response = laptop.post("/profile/password", data={"current_password": DEFAULT_PASSWORD,
                                                      "password": new, "csrf_token": token})
    assert response.status_code == 302
    assert laptop.get("/").status_code == 200
    assert phone.get("/").status_code == 302
    assert browser_login(app.test_client(), rep.email, new).status_code == 302


def test_changing_your_password_needs_the_current_one(app, rep):
    browser = app.test_client()
    browser_login(browser, rep.email)
    token = csrf_token_from(browser.get("/profile").get_data(as_text=True))
    response = browser.post("/profile/password", data={"current_password": "wrong one entirely",
                                                       "password": "a completely different phrase 77",
                                                       "csrf_token": token})
    assert response.status_code == 422
    assert "The current password is incorrect." in response.get_data(as_text=True)


def test_administrator_resets_a_password_and_the_user_is_signed_out(app, rep, client):
    browser = app.test_client()
    browser_login(browser, rep.email)
    response = client.post(f"/api/v1/users/{rep.id}/password", json={"password": "brand new secret phrase 9"})
    assert response.status_code == 204
    assert browser.get("/").status_code == 302
    assert browser_login(app.test_client(), rep.email, "brand new secret phrase 9").status_code == 302


def test_only_administrators_reset_passwords_or_disable_users(app, rep):
    other = make_user("piotr@example.com")
    program = app.test_client()
    token = program.post("/api/v1/auth/token", json={"username": rep.email,
                                                     "password": DEFAULT_PASSWORD}).json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert program.post(f"/api/v1/users/{other.id}/password", json={"password": "x" * 20},
                        headers=headers).status_code == 403
    etag = program.get(f"/api/v1/users/{other.id}", headers=headers).headers["ETag"]
    assert program.patch(f"/api/v1/users/{other.id}", json={"active": False},
                         headers={**headers, "If-Match": etag}).status_code == 403
    browser = app.test_client()
    browser_login(browser, rep.email)
    assert browser.get("/users").status_code == 403


def test_crm_user_commands(app, cli):
    created = cli("user", "create", "ops@example.com", "--name", "Ops", "--password-stdin",
                  input="an operator pass phrase 1\n")
    assert created.exit_code == 0, created.output
    assert "User ops@example.com created." in created.output
    disabled = cli("user", "disable", "ops@example.com")
    assert disabled.exit_code == 0 and "ops@example.com is disabled" in disabled.output
    assert browser_login(app.test_client(), "ops@example.com", "an operator pass phrase 1").status_code == 401
    missing = cli("user", "disable", "ghost@example.com")
    assert missing.exit_code == 1 and "no user ghost@example.com" in missing.output
