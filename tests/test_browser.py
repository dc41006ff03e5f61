"""A real Chromium against a real server: sign in, switch language, dashboard, sign out;
and every page in every language shows no English source text."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from crm_core.i18n import TRANSLATED_LOCALES
from crm_core.testing import (
    CrmServer, create_postgres_database, drop_postgres_database, is_postgres, subprocess_env)

# One test process runs them all (pytest -n ... --dist loadgroup): one server, one Chromium.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ADMIN_EMAIL, ADMIN_PASSWORD = "browser.admin@example.com", "a browser test pass phrase"
REP_EMAIL = "browser.rep@example.com"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(crm_database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    url = (create_postgres_database(crm_database_url, "crm_browser") if is_postgres(crm_database_url)
           else "sqlite:///" + str(folder / "crm.sqlite3"))
    env = subprocess_env(CRM_ENV="test", CRM_DATABASE_URL=url, CRM_INSTANCE_PATH=folder / "instance",
                         CRM_SECRET_KEY="browser-tests-secret-key-0123456789", CRM_PLUGINS="")
    crm = [sys.executable, "-m", "crm_core"]
    subprocess.run(crm + ["init", "--admin-email", ADMIN_EMAIL, "--admin-password-stdin"], env=env,
                   input=ADMIN_PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=120)
    subprocess.run(crm + ["user", "create", REP_EMAIL, "--name", "Lê Văn Cường", "--locale", "vi",
                          "--password-stdin"], env=env, input=ADMIN_PASSWORD + "\n", text=True,
                   check=True, capture_output=True, timeout=120)
    with CrmServer(env, capture=False) as running:
        yield running.base
    if is_postgres(url):
        drop_postgres_database(url)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: install Debian's chromium (see README)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    tab = context.new_page()
    tab.set_default_timeout(15000)
    yield tab
    context.close()


def sign_in(page, base, email=ADMIN_EMAIL, password=ADMIN_PASSWORD):
    page.goto(base + "/login")
    page.get_by_label(re.compile("Email|E-mail|Адрес|电子邮件|電子郵件|Thư|Email")).first.fill(email)
    page.locator("#f-password").fill(password)
    page.locator("form button[type=submit].primary").click()
    page.wait_for_url(base + "/")


def test_sign_in_switch_language_dashboard_sign_out(page, server):
    sign_in(page, server)
    assert page.locator("h1").inner_text().startswith("Hello")
    page.select_option("#lang-select", "pl")
    page.locator(".language-switcher button").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "pl"
    assert not page.locator("h1").inner_text().startswith("Hello")
    # The choice is kept in the profile: the next page stays Polish.
    page.goto(server + "/")
    assert page.locator("html").get_attribute("lang") == "pl"
    page.locator("form[action='/logout'] button").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto(server + "/")
    assert "/login" in page.url  # signed out for real
    page.goto(server + "/?lang=en")


def test_keyboard_reaches_the_main_content_first(page, server):
    sign_in(page, server)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == "#main"


def test_the_layout_fits_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        tab = context.new_page()
        sign_in(tab, server)
        for path in ("/", "/profile", "/users"):
            tab.goto(server + path)
            width = tab.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, (path, width)
    finally:
        context.close()


# -- every page, every language --------------------------------------------------------

def _same_in(locale):
    """Texts that are right in ``locale`` although they read like an English message: a
    translation that is the source itself (a brand such as "CRM"), or one that happens to
    spell another message's English (Polish "Role" is the plural of "Rola", English "Role")."""
    same = set()
    for po in ROOT.glob(f"**/locale/{locale}/LC_MESSAGES/*.po"):
        if ".venv" in po.parts:
            continue
        with open(po, "rb") as handle:
            for message in read_po(handle):
                if not message.id:
                    continue
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                same.update(text for text in strings if text)
    return same


def english_sources(locale):
    """Every message of every package's template that ``locale`` translates to something
    else: ({text: msgid} for those without placeholders, which only an equal text matches,
    [(pattern, msgid)] for the others). Looking the first up in a dict instead of trying a
    pattern per message on every text of every page made this test take half a minute."""
    exact, patterns = {}, []
    same = _same_in(locale)
    for pot in (ROOT / "locale").glob("*.pot"):
        with open(pot, "rb") as handle:
            catalog = read_po(handle)
        for message in catalog:
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            for text in ids:
                if not text or len(text) < 3 or text in same:
                    continue
                escaped = re.escape(text)
                regex = re.sub(r"%\\\(\w+\\\)[sd]", ".+", escaped)
                regex = re.sub(r"\\\{\w+\\\}", ".+", regex)
                if regex == escaped:
                    exact.setdefault(text, text)
                else:
                    patterns.append((re.compile(f"^{regex}$"), text))
    return exact, patterns


def english_in(texts, sources):
    """The msgids of ``sources`` (from english_sources) that ``texts`` show untranslated."""
    exact, patterns = sources
    found = set()
    for text in texts:
        if text in exact:
            found.add(exact[text])
        for pattern, source in patterns:
            if pattern.match(text):
                found.add(source)
    return found


def test_untranslated_text_is_found():
    """The check below can fail: an English message, a message with a placeholder filled
    in, and a translated text."""
    sources = english_sources("vi")
    exact, patterns = sources
    plain = next(iter(exact))
    pattern, source = patterns[0]
    filled = re.sub(r"%\(\w+\)[sd]|\{\w+\}", "7", source)
    assert pattern.match(filled)
    assert english_in([plain, filled, "Đăng nhập"], sources) == {plain, source}


def visible_texts(page):
    return page.evaluate("""() => {
        const out = [document.title];
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode;
            const parent = node.parentElement;
            if (!parent || ['SCRIPT', 'STYLE', 'OPTION'].includes(parent.tagName)) continue;
            const text = node.textContent.trim();
            if (text) out.push(text);
        }
        for (const el of document.querySelectorAll('[aria-label],[title],[placeholder],[alt]')) {
            for (const name of ['aria-label', 'title', 'placeholder', 'alt']) {
                if (el.getAttribute(name)) out.push(el.getAttribute(name).trim());
            }
        }
        return out;
    }""")


def pages_to_check(base, page):
    """Every page an administrator can open: the GET routes, with a real id where needed."""
    paths = ["/", "/profile", "/users"]
    page.goto(base + "/users")
    href = page.locator("table a[href^='/users/']").first.get_attribute("href")
    paths.append(href)
    paths += ["/org", "/org/departments", "/org/people", "/org/teams", "/org/roles", "/org/access",
              "/org/explain", "/org/recycle-bin", "/org/security-log"]
    # One department and one team (made through their forms the first time) for their own pages.
    for listing, name, link in (("/org/departments", "Hà Nội", "ul.tree a"),
                                ("/org/teams", "Sài Gòn", "table a[href^='/org/teams/']")):
        page.goto(base + listing)
        if not page.locator(link).count():
            page.locator("#f-name").fill(name)
            page.locator("main form button[type=submit].primary").click()
            page.wait_for_load_state()
            page.goto(base + listing)
        paths.append(page.locator(link).first.get_attribute("href"))
    for listing, link in (("/org/people", "table a[href^='/org/people/']"),
                          ("/org/roles", "table a[href^='/org/roles/']")):
        page.goto(base + listing)
        paths.append(page.locator(link).first.get_attribute("href"))
    paths.append(paths[-1] + "/fields")
    paths += ["/accounts", "/accounts/new", "/contacts", "/contacts/new", "/leads", "/leads/new",
              "/leads/purge", "/campaigns", "/campaigns/new"]
    # One record of each kind (made through their forms the first time).
    for listing, form, fields in (("/accounts", "/accounts/new", {"#f-name": "Công ty Minh An"}),
                                  ("/contacts", "/contacts/new", {"#f-last_name": "Nguyễn"}),
                                  ("/campaigns", "/campaigns/new", {"#f-name": "Vietbuild"}),
                                  ("/leads", "/leads/new", {"#f-last_name": "Trần"})):
        page.goto(base + listing)
        if not page.locator("main table a").count():
            page.goto(base + form)
            for selector, value in fields.items():
                page.locator(selector).fill(value)
            page.locator("main form button[type=submit].primary").click()
            page.wait_for_load_state()
            page.goto(base + listing)
        detail = page.locator("main table a").first.get_attribute("href")
        paths += [detail, detail + "/edit"]
    return paths


@pytest.mark.parametrize("locale", TRANSLATED_LOCALES)
def test_every_page_is_translated(browser, server, locale):
    sources = english_sources(locale)
    context = browser.new_context()
    try:
        tab = context.new_page()
        sign_in(tab, server)
        tab.goto(f"{server}/?lang={locale}")
        # Pipelines and stages are the company's data, written once in its language (the
        # core's standard pipeline too, from its messages): not text the page forgot.
        pipelines = tab.evaluate("fetch('/api/v1/pipelines').then(answer => answer.json())")
        data = {p["name"] for p in pipelines} | {s["name"] for p in pipelines for s in p["stages"]}
        sources = ({text: msgid for text, msgid in sources[0].items() if text not in data}, sources[1])
        english = {}
        for path in pages_to_check(server, tab) + ["/no/such/page"]:
            tab.goto(server + path)
            if found := english_in(visible_texts(tab), sources):
                english.setdefault(path, set()).update(found)
        # The sign-in page, signed out, in the same language.
        anonymous = browser.new_context()
        try:
            login = anonymous.new_page()
            login.goto(f"{server}/login?lang={locale}")
            if found := english_in(visible_texts(login), sources):
                english.setdefault("/login", set()).update(found)
        finally:
            anonymous.close()
        tab.goto(f"{server}/?lang=en")
    finally:
        context.close()
    assert not english, f"English text on {locale} pages: {english}"


# -- the opportunity board ------------------------------------------------------------

def test_a_card_dragged_to_another_stage_moves_and_a_refused_move_stays(page, server):
    """Drag-and-drop posts the move to the API; a stage that needs a lost reason refuses it,
    the card stays in its column and the requirement is shown."""
    sign_in(page, server)
    page.goto(server + "/accounts/new")
    page.locator("#f-name").fill("Board account")
    page.locator("main form button[type=submit].primary").click()
    page.wait_for_load_state()
    page.goto(server + "/opportunities/new")
    page.locator("#f-name").fill("Dragged deal")
    page.select_option("#f-account_id", label="Board account")
    page.locator("main form button[type=submit].primary").click()
    page.wait_for_load_state()
    page.goto(server + "/opportunities/board")
    columns = page.locator(".board-column")
    names = columns.locator("h2").all_inner_texts()
    card = page.locator(".card", has_text="Dragged deal")
    assert card.locator("xpath=ancestor::section").locator("h2").inner_text() == "Qualified"
    # Grabbed by its corner: the middle of a card may be its "Move to" select.
    card.drag_to(columns.nth(names.index("Negotiating")), source_position={"x": 4, "y": 4})
    page.wait_for_function("() => [...document.querySelectorAll('.board-column')].some(c => "
                           "c.querySelector('h2').textContent === 'Negotiating' && "
                           "c.textContent.includes('Dragged deal'))")
    card = page.locator(".card", has_text="Dragged deal")
    card.drag_to(columns.nth(names.index("Sale Lost")), source_position={"x": 4, "y": 4})
    problem = page.locator("#board-problem")
    problem.wait_for(state="visible")
    assert "Choose why the deal was lost." in problem.inner_text()
    assert card.locator("xpath=ancestor::section").locator("h2").inner_text() == "Negotiating"
