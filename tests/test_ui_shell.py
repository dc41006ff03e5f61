"""The web UI shell: every page in the reader's language and time zone, safe headers."""

import datetime as dt
from decimal import Decimal

import pytest
from flask_babel import force_locale

from crm_core.formatting import day, money, when
from crm_core.money import Money
from crm_core.testing import browser_login, csrf_token_from, make_user

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy")


def page_routes(app):
    """Every GET route without parameters (pages and API)."""
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments:
            yield rule.rule


@pytest.fixture
def rep(app):
    return make_user("rep@example.com", "Trần Thị Bình", locale="vi", timezone="Asia/Ho_Chi_Minh")


@pytest.fixture
def signed_in(app, rep):
    browser = app.test_client()
    assert browser_login(browser, rep.email).status_code == 302
    return browser


def test_security_headers_on_every_route_signed_in_and_not(app, signed_in):
    anonymous = app.test_client()
    for path in list(page_routes(app)) + ["/no/such/page", "/api/v1/no/such"]:
        for client in (signed_in, anonymous):
            response = client.get(path)
            for header in SECURITY_HEADERS:
                assert header in response.headers, (path, response.status_code, header)
            assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_every_page_needs_sign_in_except_the_public_ones(app):
    anonymous = app.test_client()
    public = {"/login", "/healthz", "/api/v1/openapi.json"}
    for path in page_routes(app):
        response = anonymous.get(path)
        if path in public or path.startswith("/static"):
            continue
        if path.startswith("/api/"):
            assert response.status_code == 401, path
        else:
            assert response.status_code == 302 and "/login?next=" in response.headers["Location"], path


def test_pages_have_no_inline_scripts_or_styles(app, signed_in):
    for path in ["/", "/profile", "/login"]:
        html = (signed_in if path != "/login" else app.test_client()).get(path).get_data(as_text=True)
        assert "<script>" not in html and "<script " not in html.replace('<script src=', '')
        assert " style=" not in html and "<style" not in html
        assert " onclick=" not in html


def test_language_switcher_and_skip_link_on_every_page(app, signed_in):
    for path in ["/", "/profile", "/login"]:
        client = signed_in if path != "/login" else app.test_client()
        html = client.get(path).get_data(as_text=True)
        assert 'name="lang"' in html and "Tiếng Việt" in html and "繁體中文" in html
        assert 'class="skip-link" href="#main"' in html and '<main id="main">' in html
        assert '<meta name="viewport"' in html


def test_profile_language_decides_after_lang_parameter(app, signed_in, rep):
    html = signed_in.get("/", headers={"Accept-Language": "pl"}).get_data(as_text=True)
    assert '<html lang="vi">' in html  # profile (vi) beats the browser (pl)
    html = signed_in.get("/?lang=ru").get_data(as_text=True)
    assert '<html lang="ru">' in html
    # ?lang= is kept in the profile: the next page is Russian without the parameter
    assert '<html lang="ru">' in signed_in.get("/").get_data(as_text=True)
    from crm_core.users.models import User
    assert User.get_by_id(rep.id).locale == "ru"


@pytest.mark.parametrize("header, expected", [
    ("zh-CN,zh;q=0.9", "zh-Hans"), ("zh-TW", "zh-Hant"), ("zh-HK,en;q=0.5", "zh-Hant"),
    ("zh-Hans-HK", "zh-Hans"), ("pl-PL", "pl"), ("de-DE,ru;q=0.8", "ru"), ("de-DE", "en"),
])
def test_browser_language_for_anonymous_visitors(app, header, expected):
    html = app.test_client().get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert f'<html lang="{expected}">' in html


def test_language_cookie_beats_the_browser_for_anonymous_visitors(app):
    visitor = app.test_client()
    first = visitor.get("/login?lang=vi")
    assert "crm_lang=vi" in first.headers["Set-Cookie"]
    html = visitor.get("/login", headers={"Accept-Language": "pl"}).get_data(as_text=True)
    assert '<html lang="vi">' in html


def test_site_default_language(app_factory):
    app = app_factory(CRM_DEFAULT_LOCALE="pl")
    html = app.test_client().get("/login").get_data(as_text=True)
    assert '<html lang="pl">' in html and "Zaloguj" in html


@pytest.mark.parametrize("status, path", [(404, "/no/such/page"), (403, "/users")])
def test_error_pages_are_translated(app, signed_in, status, path):
    response = signed_in.get(path)  # the rep's profile language is Vietnamese
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert '<html lang="vi">' in html
    with app.test_request_context(headers={"Accept-Language": "vi"}), force_locale("vi"):
        from crm_core.api.errors import STATUS_TEXT
        assert str(STATUS_TEXT[status][1]) in html
        assert str(STATUS_TEXT[status][1]) != {404: "Not found.", 403: "You do not have permission to do this."}[status]


def test_500_page_has_no_traceback_and_is_translated(app_factory):
    app = app_factory()
    from flask import Blueprint

    boom = Blueprint("boom", __name__)

    @boom.get("/boom")
    def explode():
        raise RuntimeError("secret internals")

    app.register_blueprint(boom)
    with app.app_context():
        user = make_user("x@example.com", locale="pl")
    browser = app.test_client()
    browser_login(browser, user.email)
    response = browser.get("/boom")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in html and "Traceback" not in html
    assert '<html lang="pl">' in html


def test_flash_messages_show_after_a_change(app, signed_in, rep):
    token = csrf_token_from(signed_in.get("/profile").get_data(as_text=True))
    response = signed_in.post("/profile", data={"name": "Bình Trần", "locale": "en",
                                                "timezone": "Europe/Warsaw", "version": "1",
                                                "csrf_token": token}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Your profile has been saved." in html and 'role="status"' in html
    from crm_core.users.models import User
    stored = User.get_by_id(rep.id)
    assert (stored.name, stored.locale, stored.timezone) == ("Bình Trần", "en", "Europe/Warsaw")


def test_profile_refuses_an_unknown_time_zone_and_keeps_the_input(app, signed_in, rep):
    token = csrf_token_from(signed_in.get("/profile").get_data(as_text=True))
    response = signed_in.post("/profile", data={"name": "New name", "locale": "vi",
                                                "timezone": "Mars/Base", "version": "1",
                                                "csrf_token": token})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'value="New name"' in html
    from crm_core.users.models import User
    assert User.get_by_id(rep.id).timezone == "Asia/Ho_Chi_Minh"


def test_profile_edited_elsewhere_meanwhile_keeps_your_input(app, signed_in, rep):
    token = csrf_token_from(signed_in.get("/profile").get_data(as_text=True))
    from crm_core.users.models import User
    from crm_core.users.services import update_profile
    update_profile(User.get_by_id(rep.id), {"name": "Changed by admin"})
    response = signed_in.post("/profile", data={"name": "My own name", "locale": "vi",
                                                "timezone": "Asia/Ho_Chi_Minh", "version": "1",
                                                "csrf_token": token})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert 'value="My own name"' in html and "Changed by admin" in html
    assert User.get_by_id(rep.id).name == "Changed by admin"


def test_times_show_in_the_users_time_zone(app, signed_in):
    html = signed_in.get("/profile?lang=en").get_data(as_text=True)
    assert "Indochina Time" in html or "GMT+07:00" in html


@pytest.mark.parametrize("locale, expected", [
    ("pl", "1\u00a0234,50\u00a0zł"), ("ru", "1\u00a0234,50\u00a0PLN"), ("vi", "1.234,50\u00a0PLN"),
    ("en", "PLN1,234.50"),
])
def test_money_in_each_locale(app, locale, expected):
    with app.test_request_context(), force_locale(locale):
        assert money(Money("1234.5", "PLN")) == expected


def test_vnd_has_no_minor_unit(app):
    with app.test_request_context(), force_locale("vi"):
        assert money(Decimal("1234567.5"), "VND") == "1.234.568\u00a0₫"


def test_dates_in_each_locales_order(app):
    moment = dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.timezone.utc)
    with app.test_request_context(), force_locale("pl"):
        assert day(moment.date(), "short") == "4.03.2026"
    with app.test_request_context(), force_locale("zh"):
        assert day(moment.date(), "short") == "2026/3/4"
    with app.test_request_context(), force_locale("ru"):
        assert when(moment, "short").startswith("04.03.2026")


def test_admin_pages_manage_users(app, client):
    admin = client.user
    browser = app.test_client()
    from crm_core.users.passwords import hash_password
    from crm_core.users.models import User
    User.update(password_hash=hash_password("admin pass phrase 123")).where(User.id == admin.id).execute()
    browser_login(browser, admin.email, "admin pass phrase 123")
    listing = browser.get("/users")
    assert listing.status_code == 200 and admin.email in listing.get_data(as_text=True)
    token = csrf_token_from(listing.get_data(as_text=True))
    created = browser.post("/users", data={"email": "new.rep@example.com", "name": "Ivan Petrov",
                                           "password": "a new reps pass phrase", "locale": "ru",
                                           "csrf_token": token})
    assert created.status_code == 302
    new_user = User.get(User.email == "new.rep@example.com")
    detail = browser.get(f"/users/{new_user.id}").get_data(as_text=True)
    assert "Ivan Petrov" in detail
    token = csrf_token_from(detail)
    disabled = browser.post(f"/users/{new_user.id}/active", data={"active": "0", "version": "1",
                                                                   "csrf_token": token})
    assert disabled.status_code == 302
    assert not User.get_by_id(new_user.id).active
    duplicate = browser.post("/users", data={"email": "NEW.REP@example.com", "name": "Again",
                                             "password": "a new reps pass phrase", "locale": "ru",
                                             "csrf_token": token})
    assert duplicate.status_code == 422
    assert "A user with this email already exists." in duplicate.get_data(as_text=True)


def test_administrator_cannot_disable_themselves(app, client):
    etag = client.get(f"/api/v1/users/{client.user.id}").headers["ETag"]
    response = client.patch(f"/api/v1/users/{client.user.id}", json={"active": False},
                            headers={"If-Match": etag})
    assert response.status_code == 422
    assert response.json["error"]["fields"]["active"] == ["You cannot disable yourself."]
