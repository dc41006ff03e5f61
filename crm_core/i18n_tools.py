"""The translation workflow: extract messages, update catalogues, check them.

One gettext domain per package: ``crm_core`` and each bundled plugin package
``plugins/<name>/crm_<name>/`` (domain ``crm_<name>``). The translators'
workspace is the top-level ``locale/`` folder:

- ``locale/babel.cfg``: which files are read and how (patterns are relative
  to each package folder);
- ``locale/<domain>.pot``: the templates written by :func:`extract`;
- ``locale/glossary/<lang>.md``: the domain terms of each language.

The catalogues themselves live inside the packages
(``<package>/locale/<lang>/LC_MESSAGES/<domain>.po``); :mod:`crm_core.i18n`
compiles them in memory when the app starts.

``extract`` -> ``update`` -> translate -> ``check`` (``crm i18n ...``).
:func:`check` extracts the sources again in memory, so a message added to the
code but not yet to the catalogues is reported even when nobody ran
``extract``.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from babel.messages import frontend
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from crm_core.version import __version__

PROJECT = "crm-framework"
COPYRIGHT_HOLDER = "The crm-framework authors"
BUGS_ADDRESS = ""
CORE_DOMAIN = "crm_core"
LOCALE_DIR = "locale"
CONFIG_NAME = "babel.cfg"

# Translated languages (en is the source) and the number of plural forms of each.
PLURAL_COUNTS = {"vi": 1, "pl": 3, "zh": 1, "zh_TW": 1, "ru": 3}
LANGUAGES = tuple(PLURAL_COUNTS)
LANGUAGE_TEAMS = {"vi": "Vietnamese", "pl": "Polish", "zh": "Chinese (Simplified)",
                  "zh_TW": "Chinese (Traditional, Taiwan)", "ru": "Russian"}

# The functions that mark messages, beyond Babel's defaults (_, gettext, ngettext, ...):
# flask_babel's lazy variants, usually imported as ``_l`` (and ``_nl`` for lazy_ngettext).
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "_nl": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
    "lazy_npgettext": ((1, "c"), 2, 3),
}
COMMENT_TAGS = ("TRANSLATORS:",)

# Used when the project has no locale/babel.cfg (the same rules as the committed file).
DEFAULT_CONFIG = """\
[python: **.py]
keywords = _l _nl:1,2 lazy_gettext lazy_ngettext:1,2 lazy_pgettext:1c,2 lazy_npgettext:1c,2,3

[jinja2: **/templates/**.html]
extensions = jinja2.ext.i18n
silent = false

[jinja2: **/templates/**.txt]
extensions = jinja2.ext.i18n
silent = false
"""

# Placeholders: %(name)s / %s / %d ... (python-format) and {name} / {} (str.format).
_PERCENT = re.compile(r"%(?:\((?P<name>[^()]*)\))?[-#0+]*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
                      r"(?P<type>[diouxXeEfFgGcrsa%])")
_BRACE = re.compile(r"\{\{|\}\}|\{(?P<field>[^{}]*)\}")


@dataclass(frozen=True)
class Package:
    """A package that owns one gettext domain."""

    domain: str
    path: Path  # the package folder (the one holding __init__.py)

    def po_path(self, language):
        return self.path / LOCALE_DIR / language / "LC_MESSAGES" / f"{self.domain}.po"

    def pot_path(self, project_root):
        return Path(project_root) / LOCALE_DIR / f"{self.domain}.pot"


def project_root_default():
    """The folder holding the crm_core package (the repository checkout)."""
    return Path(__file__).resolve().parent.parent


def find_packages(project_root):
    """crm_core and every bundled plugin package ``plugins/<name>/crm_<name>/``."""
    root = Path(project_root)
    packages = []
    core = root / CORE_DOMAIN
    if core.is_dir():
        packages.append(Package(CORE_DOMAIN, core))
    plugins = root / "plugins"
    if plugins.is_dir():
        for project in sorted(p for p in plugins.iterdir() if p.is_dir()):
            package = project / f"crm_{project.name}"
            if package.is_dir() and (package / "__init__.py").is_file():
                packages.append(Package(package.name, package))
    return packages


# -- extraction ----------------------------------------------------------------------

def load_mapping(project_root):
    """(method_map, options_map) from locale/babel.cfg, or the built-in rules."""
    path = Path(project_root) / LOCALE_DIR / CONFIG_NAME
    parse = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            return parse(handle, str(path))
    return parse(io.StringIO(DEFAULT_CONFIG))


def _relative(path, project_root):
    path, root = Path(path), Path(project_root)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def extract_catalog(package, project_root, mapping=None):
    """The package's messages as a template Catalog (nothing is written)."""
    method_map, options_map = mapping or load_mapping(project_root)
    catalog = Catalog(project=PROJECT, version=__version__, copyright_holder=COPYRIGHT_HOLDER,
                      msgid_bugs_address=BUGS_ADDRESS or None, domain=package.domain,
                      charset="utf-8", fuzzy=False)
    prefix = _relative(package.path, project_root)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(package.path), method_map, options_map, keywords=KEYWORDS,
            comment_tags=COMMENT_TAGS, strip_comment_tags=True):
        catalog.add(message, None, [(f"{prefix}/{filename}", lineno)],
                    auto_comments=comments, context=context)
    return catalog


def _po_bytes(catalog, **options):
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=76, ignore_obsolete=True, include_previous=False, **options)
    return buffer.getvalue()


def _without_dates(data):
    return re.sub(rb'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"\n', b"", data, flags=re.M)


def _write_if_changed(path, data):
    """Write unless only the creation/revision dates would change; True when written."""
    path = Path(path)
    if path.is_file() and _without_dates(path.read_bytes()) == _without_dates(data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def extract(project_root):
    """Write ``locale/<domain>.pot`` for crm_core and each bundled plugin package.

    Returns the paths of the templates (written or already up to date).
    """
    mapping = load_mapping(project_root)
    paths = []
    for package in find_packages(project_root):
        catalog = extract_catalog(package, project_root, mapping)
        path = package.pot_path(project_root)
        _write_if_changed(path, _po_bytes(catalog))
        paths.append(path)
    return paths


# -- updating --------------------------------------------------------------------------

def new_catalog(language, domain):
    """An empty catalogue for ``language`` with that language's Plural-Forms."""
    catalog = Catalog(locale=language, domain=domain, project=PROJECT, version=__version__,
                      copyright_holder=COPYRIGHT_HOLDER, msgid_bugs_address=BUGS_ADDRESS or None,
                      language_team=LANGUAGE_TEAMS.get(language), charset="utf-8", fuzzy=False)
    if catalog.num_plurals != PLURAL_COUNTS.get(language, catalog.num_plurals):
        raise RuntimeError(f"Babel's plural forms for {language} are not the expected ones")
    return catalog


def _read(path, language=None, domain=None):
    with open(path, "rb") as handle:
        return read_po(handle, locale=language, domain=domain)


def update(project_root):
    """Merge each ``locale/<domain>.pot`` into every language's .po of that package.

    Missing .po files are created (with the language's plural forms); messages
    no longer in the template are dropped, not kept as obsolete entries.
    Returns the paths of the catalogues.
    """
    paths = []
    for package in find_packages(project_root):
        pot = package.pot_path(project_root)
        if not pot.is_file():
            continue
        template = _read(pot)
        for language in LANGUAGES:
            path = package.po_path(language)
            if path.is_file():
                catalog = _read(path, language, package.domain)
            else:
                catalog = new_catalog(language, package.domain)
            catalog.update(template, update_creation_date=True)
            catalog.obsolete.clear()
            _write_if_changed(path, _po_bytes(catalog, include_lineno=False))
            paths.append(path)
    return paths


# -- checking --------------------------------------------------------------------------

def placeholders(text):
    """The placeholders of one string: ({named}, [positional %-types], {brace fields}, n of {})."""
    named, positional = set(), []
    for match in _PERCENT.finditer(text or ""):
        if match.group("type") == "%":
            continue
        if match.group("name") is not None:
            named.add(f"%({match.group('name')}){match.group('type')}")
        else:
            positional.append("%" + match.group("type"))
    fields, automatic = set(), 0
    for match in _BRACE.finditer(text or ""):
        field = match.group("field")
        if field is None:
            continue  # {{ or }}
        name = re.split(r"[!:]", field, maxsplit=1)[0]
        if name == "":
            automatic += 1
        else:
            fields.add("{" + name + "}")
    return named, positional, fields, automatic


def _source_placeholders(message):
    if isinstance(message.id, (list, tuple)):
        singular, plural = (placeholders(text) for text in message.id[:2])
        # The singular may spell the number out ("One lead"); the plural has them all.
        return (singular[0] | plural[0], plural[1], singular[2] | plural[2], plural[3])
    return placeholders(message.id)


def _describe(found):
    named, positional, fields, automatic = found
    items = sorted(named) + positional + sorted(fields) + ["{}"] * automatic
    return ", ".join(items) or "none"


def _label(message):
    text = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
    if message.context:
        return f"{text!r} (context {message.context!r})"
    return repr(text)


def _key(message):
    text = tuple(message.id) if isinstance(message.id, (list, tuple)) else message.id
    return (message.context, text)


def _translation(message):
    return tuple(message.string) if isinstance(message.string, (list, tuple)) else message.string


def _check_message(where, message, expected_plurals):
    problems = []
    label = _label(message)
    if message.fuzzy:
        problems.append(f"{where}: fuzzy: {label}")
    if isinstance(message.id, (list, tuple)):
        forms = list(message.string) if isinstance(message.string, (list, tuple)) \
            else [message.string or ""]
        forms += [""] * (expected_plurals - len(forms))
        filled = [bool(form) for form in forms[:expected_plurals]]
        if not any(filled):
            return problems + [f"{where}: untranslated: {label}"]
        for index, ok in enumerate(filled):
            if not ok:
                problems.append(f"{where}: missing plural form msgstr[{index}] "
                                f"(of {expected_plurals}): {label}")
        texts = [(f"msgstr[{index}]", form) for index, form in enumerate(forms) if form]
    else:
        if not message.string:
            return problems + [f"{where}: untranslated: {label}"]
        texts = [("msgstr", message.string)]
    source = _source_placeholders(message)
    for name, text in texts:
        found = placeholders(text)
        if found == source:
            continue
        if name == "msgstr[0]" and expected_plurals > 1 and found == placeholders(message.id[0]):
            continue  # the singular form may spell the number out, as the English one does
        if found != source:
            problems.append(f"{where}: placeholders differ in {name} of {label}: "
                            f"source has {_describe(source)}, translation has {_describe(found)}")
    return problems


def _has_catalogues(package):
    return (package.path / LOCALE_DIR).is_dir()


def check(project_root):
    """Problems of the translations as a list of strings (empty when all is well).

    Reported: a missing .po for a language; a wrong number of plural forms in a
    header; messages of the sources missing from a catalogue, untranslated or
    fuzzy; translations whose placeholders differ from the source's; plural
    entries missing a form; obsolete (``#~``) entries left in a file; the same
    source text translated differently by two packages in one language.
    """
    root = Path(project_root)
    mapping = load_mapping(root)
    problems = []
    # (language, context, msgid) -> {translation: [file, ...]}
    seen = defaultdict(lambda: defaultdict(list))
    for package in find_packages(root):
        try:
            source = extract_catalog(package, root, mapping)
        except Exception as exc:  # a file that cannot be parsed: say which, keep going
            problems.append(f"{_relative(package.path, root)}: extraction failed: {exc}")
            source = Catalog(domain=package.domain)
        wanted = [m for m in source if m.id]
        if not wanted and not _has_catalogues(package):
            continue  # nothing to translate in this package
        for language in LANGUAGES:
            path = package.po_path(language)
            where = _relative(path, root)
            if not path.is_file():
                problems.append(f"{where}: missing catalogue for {language} of {package.domain} "
                                f"(run `crm i18n update`)")
                continue
            try:
                catalog = _read(path, language, package.domain)
            except Exception as exc:
                problems.append(f"{where}: cannot be read: {exc}")
                continue
            expected = PLURAL_COUNTS[language]
            if catalog.num_plurals != expected:
                problems.append(f"{where}: Plural-Forms says nplurals={catalog.num_plurals}, "
                                f"{language} has {expected}")
            if catalog.obsolete:
                problems.append(f"{where}: {len(catalog.obsolete)} obsolete (#~) entr"
                                f"{'y' if len(catalog.obsolete) == 1 else 'ies'}: "
                                f"run `crm i18n update` to drop them")
            for message in wanted:
                if catalog.get(message.id, message.context) is None:
                    problems.append(f"{where}: untranslated (not in the catalogue; run "
                                    f"`crm i18n extract` and `crm i18n update`): {_label(message)}")
            for message in catalog:
                if not message.id:
                    continue
                own = _check_message(where, message, expected)
                problems.extend(own)
                if not own:  # compare only sound translations: each problem is reported once
                    context, text = _key(message)
                    seen[(language, context, text)][_translation(message)].append(where)
    for (language, context, text), translations in seen.items():
        if len(translations) < 2:
            continue
        singular = text[0] if isinstance(text, tuple) else text
        label = repr(singular) + (f" (context {context!r})" if context else "")
        variants = "; ".join(f"{' and '.join(files)}: {translation!r}"
                             for translation, files in translations.items())
        problems.append(f"{language}: {label} is translated differently by two packages: {variants}")
    return problems
