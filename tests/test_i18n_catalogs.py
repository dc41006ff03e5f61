"""Translations: the catalogues are complete and correct, the workflow tools
find each kind of problem, plural forms are right, and the app speaks the
caller's language.

``test_project_translations_are_complete`` is the suite's gate: a message
added to the code without translations (or a fuzzy or broken one) fails it.
Fix with ``crm i18n extract``, ``crm i18n update``, translate, ``crm i18n check``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner

from crm_core import i18n_tools
from crm_core.i18n import _compile
from crm_core.i18n_cli import i18n
from crm_core.i18n_tools import LANGUAGES, PLURAL_COUNTS, check, extract, update

PROJECT_ROOT = Path(i18n_tools.__file__).resolve().parent.parent
PLURAL_EXPR = {
    1: "0",
    3: {"pl": "(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)",
        "ru": "(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)"},
}


def core_translation(language, msgid):
    path = PROJECT_ROOT / "crm_core" / "locale" / language / "LC_MESSAGES" / "crm_core.po"
    with open(path, "rb") as handle:
        return read_po(handle)[msgid].string


# -- the real project ---------------------------------------------------------------

def test_project_translations_are_complete():
    problems = check(PROJECT_ROOT)
    assert problems == [], "translation problems:\n" + "\n".join(problems)


def test_project_has_the_translators_workspace():
    assert (PROJECT_ROOT / "locale" / "babel.cfg").is_file()
    assert (PROJECT_ROOT / "locale" / "crm_core.pot").is_file()
    assert not (PROJECT_ROOT / "locale" / "__init__.py").exists()  # would shadow stdlib locale
    for language in LANGUAGES:
        glossary = PROJECT_ROOT / "locale" / "glossary" / f"{language}.md"
        assert glossary.is_file(), glossary
        text = glossary.read_text(encoding="utf-8")
        for term in ("opportunity", "lead", "quota", "forecast", "permission"):
            assert f"| {term}" in text, (language, term)


def test_committed_template_lists_every_core_message():
    with open(PROJECT_ROOT / "locale" / "crm_core.pot", "rb") as handle:
        committed = {m.id for m in read_po(handle) if m.id}
    package = i18n_tools.Package("crm_core", PROJECT_ROOT / "crm_core")
    extracted = {m.id for m in i18n_tools.extract_catalog(package, PROJECT_ROOT) if m.id}
    assert extracted <= committed, f"run `crm i18n extract`: {sorted(extracted - committed)}"


@pytest.mark.parametrize("language", ["pl", "ru"])
def test_core_catalogue_plural_rule(language):
    path = PROJECT_ROOT / "crm_core" / "locale" / language / "LC_MESSAGES" / "crm_core.po"
    compiled = _compile(str(path), path.stat().st_mtime_ns)
    assert [compiled.plural(n) for n in (1, 2, 5, 22, 11, 12, 21, 112)] == (
        [0, 1, 2, 1, 2, 2, 2 if language == "pl" else 0, 2])


# -- small trees in tmp_path ---------------------------------------------------------

def po_text(language, entries, nplurals=None):
    """A .po file for ``language``; entries are raw .po text blocks."""
    count = nplurals or PLURAL_COUNTS[language]
    expr = PLURAL_EXPR[1] if count == 1 else PLURAL_EXPR[3].get(language, "(n != 1)")
    header = textwrap.dedent(f'''\
        msgid ""
        msgstr ""
        "Language: {language}\\n"
        "Plural-Forms: nplurals={count}; plural={expr};\\n"
        "MIME-Version: 1.0\\n"
        "Content-Type: text/plain; charset=utf-8\\n"
        "Content-Transfer-Encoding: 8bit\\n"
        ''')
    return header + "\n" + "\n".join(textwrap.dedent(e).strip() + "\n" for e in entries)


def entry(msgid, msgstr, flags=""):
    flag_line = f"#, {flags}\n" if flags else ""
    return f'{flag_line}msgid "{msgid}"\nmsgstr "{msgstr}"\n'


def plural_entry(singular, plural, forms, flags=""):
    flag_line = f"#, {flags}\n" if flags else ""
    lines = [f'msgstr[{i}] "{form}"' for i, form in enumerate(forms)]
    return f'{flag_line}msgid "{singular}"\nmsgid_plural "{plural}"\n' + "\n".join(lines) + "\n"


GOOD = {
    "vi": {"Save": "Lưu", "Hello %(name)s": "Xin chào %(name)s", "forms": ["%(num)d cơ hội"]},
    "pl": {"Save": "Zapisz", "Hello %(name)s": "Witaj, %(name)s",
           "forms": ["%(num)d szansa", "%(num)d szanse", "%(num)d szans"]},
    "zh": {"Save": "保存", "Hello %(name)s": "您好，%(name)s", "forms": ["%(num)d 个商机"]},
    "zh_TW": {"Save": "儲存", "Hello %(name)s": "您好，%(name)s", "forms": ["%(num)d 個商機"]},
    "ru": {"Save": "Сохранить", "Hello %(name)s": "Здравствуйте, %(name)s",
           "forms": ["%(num)d сделка", "%(num)d сделки", "%(num)d сделок"]},
}


def good_entries(language, **overrides):
    words = {**GOOD[language], **overrides}
    return [
        entry("Save", words["Save"]),
        entry("Hello %(name)s", words["Hello %(name)s"], "python-format"),
        plural_entry("%(num)d opportunity", "%(num)d opportunities", words["forms"],
                     "python-format"),
    ]


def write_package(package_dir, domain, languages=LANGUAGES, entries=None):
    package_dir.mkdir(parents=True, exist_ok=True)
    (package_dir / "__init__.py").write_text("", encoding="utf-8")
    for language in languages:
        path = package_dir / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        blocks = (entries or {}).get(language) or good_entries(language)
        path.write_text(po_text(language, blocks), encoding="utf-8")
    return package_dir


@pytest.fixture
def tree(tmp_path):
    """A project with a complete crm_core and one plugin package, crm_demo."""
    write_package(tmp_path / "crm_core", "crm_core")
    write_package(tmp_path / "plugins" / "demo" / "crm_demo", "crm_demo")
    return tmp_path


def rewrite(root, domain, language, blocks, nplurals=None):
    if domain == "crm_core":
        folder = root / "crm_core"
    else:
        folder = root / "plugins" / domain.removeprefix("crm_") / domain
    path = folder / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
    path.write_text(po_text(language, blocks, nplurals), encoding="utf-8")
    return path.relative_to(root).as_posix()


def test_a_complete_tree_has_no_problems(tree):
    assert check(tree) == []


def test_check_reports_an_untranslated_message(tree):
    where = rewrite(tree, "crm_core", "vi", good_entries("vi", Save=""))
    problems = check(tree)
    assert problems == [f"{where}: untranslated: 'Save'"]


def test_check_reports_a_fuzzy_message(tree):
    entries = good_entries("ru")
    entries[0] = entry("Save", "Сохранить", "fuzzy")
    where = rewrite(tree, "crm_demo", "ru", entries)
    problems = check(tree)
    assert problems == [f"{where}: fuzzy: 'Save'"]
    assert where == "plugins/demo/crm_demo/locale/ru/LC_MESSAGES/crm_demo.po"


@pytest.mark.parametrize("wrong", ["Witaj, %(imie)s", "Witaj", "Witaj, %s", "Witaj, {name}",
                                   "Witaj, %(name)d"])
def test_check_reports_a_placeholder_mismatch(tree, wrong):
    where = rewrite(tree, "crm_core", "pl", good_entries("pl", **{"Hello %(name)s": wrong}))
    problems = check(tree)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{where}: placeholders differ in msgstr of 'Hello %(name)s'")
    assert "%(name)s" in problems[0]


def test_check_reports_a_brace_placeholder_mismatch(tree):
    blocks = good_entries("zh") + [entry("Sort by one of: {choices}.", "排序：{choice}。",
                                         "python-brace-format")]
    where = rewrite(tree, "crm_core", "zh", blocks)
    problems = check(tree)
    assert problems == [f"{where}: placeholders differ in msgstr of 'Sort by one of: {{choices}}.': "
                        "source has {choices}, translation has {choice}"]


def test_check_reports_a_placeholder_mismatch_in_a_plural_form(tree):
    forms = ["%(num)d сделка", "сделки", "%(num)d сделок"]
    where = rewrite(tree, "crm_core", "ru", good_entries("ru", forms=forms))
    problems = check(tree)
    assert problems == [f"{where}: placeholders differ in msgstr[1] of '%(num)d opportunity': "
                        "source has %(num)d, translation has none"]


def test_the_singular_form_may_spell_the_number_out_like_the_source(tree):
    singular = plural_entry("One opportunity", "%(num)d opportunities",
                            ["Jedna szansa", "%(num)d szanse", "%(num)d szans"], "python-format")
    rewrite(tree, "crm_core", "pl", good_entries("pl") + [singular])
    for language in ("vi", "zh", "zh_TW", "ru"):
        rewrite(tree, "crm_core", language, good_entries(language)
                + [plural_entry("One opportunity", "%(num)d opportunities", GOOD[language]["forms"],
                                "python-format")])
    assert check(tree) == []
    # ... but the forms used for several numbers need the placeholder
    broken = plural_entry("One opportunity", "%(num)d opportunities",
                          ["Jedna szansa", "szanse", "%(num)d szans"], "python-format")
    where = rewrite(tree, "crm_core", "pl", good_entries("pl") + [broken])
    assert check(tree) == [f"{where}: placeholders differ in msgstr[1] of 'One opportunity': "
                           "source has %(num)d, translation has none"]


def test_check_reports_a_missing_plural_form(tree):
    forms = ["%(num)d szansa", "%(num)d szanse"]  # the third form (5, 11, 25 ...) is missing
    where = rewrite(tree, "crm_core", "pl", good_entries("pl", forms=forms))
    problems = check(tree)
    assert problems == [f"{where}: missing plural form msgstr[2] (of 3): '%(num)d opportunity'"]


def test_check_reports_a_wrong_plural_forms_header(tree):
    where = rewrite(tree, "crm_core", "ru", good_entries("ru", forms=["%(num)d сделка", "%(num)d сделок"]),
                    nplurals=2)
    problems = check(tree)
    assert f"{where}: Plural-Forms says nplurals=2, ru has 3" in problems
    assert f"{where}: missing plural form msgstr[2] (of 3): '%(num)d opportunity'" in problems


def test_check_reports_two_packages_translating_one_text_differently(tree):
    core = "crm_core/locale/zh_TW/LC_MESSAGES/crm_core.po"
    plugin = rewrite(tree, "crm_demo", "zh_TW", good_entries("zh_TW", Save="存檔"))
    problems = check(tree)
    assert len(problems) == 1, problems
    assert problems[0].startswith("zh_TW: 'Save' is translated differently by two packages")
    assert f"{core}: '儲存'" in problems[0] and f"{plugin}: '存檔'" in problems[0]


def test_check_reports_obsolete_entries(tree):
    blocks = good_entries("vi") + ['#~ msgid "Old"\n#~ msgstr "Cũ"\n']
    where = rewrite(tree, "crm_core", "vi", blocks)
    assert check(tree) == [f"{where}: 1 obsolete (#~) entry: run `crm i18n update` to drop them"]


def test_check_reports_a_missing_catalogue(tree):
    missing = tree / "plugins" / "demo" / "crm_demo" / "locale" / "zh" / "LC_MESSAGES" / "crm_demo.po"
    missing.unlink()
    problems = check(tree)
    assert problems == ["plugins/demo/crm_demo/locale/zh/LC_MESSAGES/crm_demo.po: missing catalogue "
                        "for zh of crm_demo (run `crm i18n update`)"]


def test_check_reports_a_source_message_missing_from_the_catalogues(tree):
    (tree / "crm_core" / "views.py").write_text(
        'from flask_babel import lazy_gettext as _l\nLABEL = _l("Forecast")\n', encoding="utf-8")
    problems = check(tree)
    assert len(problems) == len(LANGUAGES)
    for language, problem in zip(LANGUAGES, problems):
        assert problem.startswith(f"crm_core/locale/{language}/LC_MESSAGES/crm_core.po: untranslated")
        assert problem.endswith("'Forecast'")


# -- extract and update ---------------------------------------------------------------

SOURCE = '''\
from flask_babel import gettext, lazy_gettext as _l, ngettext

TITLE = _l("Opportunities")


def count(n):
    return ngettext("%(num)d opportunity", "%(num)d opportunities", n)
'''
TEMPLATE = '''\
<h1>{{ _("Pipeline") }}</h1>
<p>{{ _("Owner: %(name)s", name=owner) }}</p>
'''


def make_sources(root):
    package = root / "plugins" / "demo" / "crm_demo"
    (package / "templates" / "crm_demo").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "services.py").write_text(SOURCE, encoding="utf-8")
    (package / "templates" / "crm_demo" / "index.html").write_text(TEMPLATE, encoding="utf-8")
    core = root / "crm_core"
    core.mkdir()
    (core / "__init__.py").write_text('from flask_babel import gettext\nX = gettext("Save")\n',
                                      encoding="utf-8")
    return package


def read(path):
    with open(path, "rb") as handle:
        return read_po(handle)


def test_extract_writes_one_template_per_package(tmp_path):
    make_sources(tmp_path)
    paths = extract(tmp_path)
    assert [p.name for p in paths] == ["crm_core.pot", "crm_demo.pot"]
    demo = read(tmp_path / "locale" / "crm_demo.pot")
    assert [m.id for m in demo if m.id] == [
        "Opportunities", ("%(num)d opportunity", "%(num)d opportunities"),
        "Pipeline", "Owner: %(name)s"]
    locations = {m.id if isinstance(m.id, str) else m.id[0]: m.locations for m in demo if m.id}
    assert locations["Pipeline"] == [("plugins/demo/crm_demo/templates/crm_demo/index.html", 1)]
    assert [m.id for m in read(tmp_path / "locale" / "crm_core.pot") if m.id] == ["Save"]
    assert not (tmp_path / "locale" / "__init__.py").exists()


def test_update_creates_catalogues_with_the_plural_forms_and_drops_obsolete(tmp_path):
    package = make_sources(tmp_path)
    extract(tmp_path)
    update(tmp_path)
    for language in LANGUAGES:
        catalog = read(package / "locale" / language / "LC_MESSAGES" / "crm_demo.po")
        assert catalog.num_plurals == PLURAL_COUNTS[language]
        assert str(catalog.locale) == {"zh_TW": "zh_Hant_TW"}.get(language, language)
    problems = check(tmp_path)
    assert "plugins/demo/crm_demo/locale/pl/LC_MESSAGES/crm_demo.po: untranslated: 'Pipeline'" in problems

    # a translated message whose source goes away is dropped, not kept as #~ obsolete
    path = package / "locale" / "vi" / "LC_MESSAGES" / "crm_demo.po"
    text = path.read_text(encoding="utf-8").replace('msgid "Pipeline"\nmsgstr ""',
                                                    'msgid "Pipeline"\nmsgstr "Quy trình bán hàng"')
    path.write_text(text, encoding="utf-8")
    (package / "templates" / "crm_demo" / "index.html").write_text(
        '<p>{{ _("Owner: %(name)s", name=owner) }}</p>\n', encoding="utf-8")
    extract(tmp_path)
    update(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "Pipeline" not in text and "#~" not in text


def translate_all(package, domain, words):
    for language in LANGUAGES:
        path = package / "locale" / language / "LC_MESSAGES" / f"{domain}.po"
        text = path.read_text(encoding="utf-8")
        for msgid, translation in words[language].items():
            if isinstance(translation, list):
                forms = "\n".join(f'msgstr[{i}] "{form}"' for i, form in enumerate(translation))
                empty = "\n".join(f'msgstr[{i}] ""' for i in range(len(translation)))
                text = text.replace(f'msgid_plural "{msgid}"\n{empty}', f'msgid_plural "{msgid}"\n{forms}')
            else:
                text = text.replace(f'msgid "{msgid}"\nmsgstr ""', f'msgid "{msgid}"\nmsgstr "{translation}"')
        path.write_text(text, encoding="utf-8")
        yield language, path


PLURAL_WORDS = {
    language: {"Opportunities": opportunities, "Pipeline": pipeline,
               "Owner: %(name)s": owner, "%(num)d opportunities": GOOD[language]["forms"]}
    for language, opportunities, pipeline, owner in [
        ("vi", "Cơ hội kinh doanh", "Quy trình bán hàng", "Người phụ trách: %(name)s"),
        ("pl", "Szanse sprzedaży", "Proces sprzedaży", "Opiekun: %(name)s"),
        ("zh", "商机", "销售流程", "负责人：%(name)s"),
        ("zh_TW", "商機", "銷售流程", "負責人：%(name)s"),
        ("ru", "Потенциальные сделки", "Воронка продаж", "Ответственный: %(name)s"),
    ]
}


@pytest.mark.parametrize("language, expected", [
    ("pl", {1: "1 szansa", 2: "2 szanse", 5: "5 szans", 22: "22 szanse"}),
    ("ru", {1: "1 сделка", 2: "2 сделки", 5: "5 сделок", 22: "22 сделки"}),
    ("zh", {1: "1 个商机", 2: "2 个商机", 5: "5 个商机", 22: "22 个商机"}),
])
def test_plural_forms_select_the_right_form(tmp_path, language, expected):
    package = make_sources(tmp_path)
    extract(tmp_path)
    update(tmp_path)
    paths = dict(translate_all(package, "crm_demo", PLURAL_WORDS))
    compiled = _compile(str(paths[language]), paths[language].stat().st_mtime_ns)
    for n, text in expected.items():
        assert compiled.ngettext("%(num)d opportunity", "%(num)d opportunities", n) % {"num": n} == text


# -- the command line ------------------------------------------------------------------

def test_cli_check_fails_with_the_problems(tree):
    rewrite(tree, "crm_core", "vi", good_entries("vi", Save=""))
    result = CliRunner().invoke(i18n, ["check", "--root", str(tree)])
    assert result.exit_code == 1
    assert "crm_core/locale/vi/LC_MESSAGES/crm_core.po: untranslated: 'Save'" in result.output


def test_cli_check_passes_on_the_project():
    result = CliRunner().invoke(i18n, ["check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Translations OK")


def test_cli_extract_and_update(tmp_path):
    make_sources(tmp_path)
    runner = CliRunner()
    result = runner.invoke(i18n, ["extract", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "template locale/crm_demo.pot" in result.output
    result = runner.invoke(i18n, ["update", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "catalogue plugins/demo/crm_demo/locale/ru/LC_MESSAGES/crm_demo.po" in result.output


# -- the running app -----------------------------------------------------------------------

@pytest.mark.parametrize("header, language", [
    ("vi", "vi"), ("vi-VN,vi;q=0.9,en;q=0.5", "vi"), ("pl-PL", "pl"), ("zh-CN", "zh"),
    ("zh-TW", "zh_TW"), ("zh-HK", "zh_TW"), ("ru-RU,ru;q=0.9", "ru"),
])
def test_api_errors_are_in_the_callers_language(client, header, language):
    response = client.get("/api/v1/nope", headers={"Accept-Language": header})
    assert response.status_code == 404
    message = response.get_json()["error"]["message"]
    assert message == core_translation(language, "Not found.")
    assert message != "Not found."


def test_api_errors_default_to_english(client):
    response = client.get("/api/v1/nope", headers={"Accept-Language": "en-GB"})
    assert response.get_json()["error"]["message"] == "Not found."


@pytest.mark.parametrize("lang, language", [("ru", "ru"), ("zh-TW", "zh_TW"), ("zh_TW", "zh_TW"),
                                            ("vi", "vi")])
def test_lang_parameter_wins_over_accept_language(client, lang, language):
    response = client.get(f"/api/v1/nope?lang={lang}", headers={"Accept-Language": "pl"})
    assert response.get_json()["error"]["message"] == core_translation(language, "Not found.")


def test_pages_are_translated(client):
    response = client.get("/nope?lang=zh_TW")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert core_translation("zh_TW", "Back to the start page") in page
    assert core_translation("zh_TW", "Error %(status)s") % {"status": 404} in page
    assert '<html lang="zh-Hant">' in page
