"""Languages: choosing the locale, loading every package's catalogue, checking them.

One gettext domain per package (``crm_core``, ``crm_<plugin>``) with ``.po``
files inside the package (``<package>/locale/<lang>/LC_MESSAGES/<domain>.po``).
They are compiled in memory when the app starts, so an editable install, a
wheel and CI behave the same with no compile step.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import re
from dataclasses import dataclass
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import has_request_context, request
from flask_babel import Babel, Domain, get_locale
from flask_login import current_user

from crm_core.config import LOCALES

SOURCE_LOCALE = "en"
TRANSLATED_LOCALES = tuple(code for code in LOCALES if code != SOURCE_LOCALE)
LANGUAGE_NAMES = {
    "en": "English", "vi": "Tiếng Việt", "pl": "Polski", "zh": "简体中文",
    "zh_TW": "繁體中文", "ru": "Русский",
}
_TRADITIONAL = {"tw", "hk", "mo", "hant"}


def normalize_locale(tag):
    """Map a browser or user language tag to one of LOCALES, or None.

    ``zh-CN``/``zh-Hans``/``zh`` -> zh; ``zh-TW``/``zh-HK``/``zh-Hant`` -> zh_TW.
    """
    if not tag:
        return None
    parts = [p for p in re.split(r"[-_]", tag.strip().lower()) if p]
    if not parts:
        return None
    language = parts[0]
    if language == "zh":
        # An explicit script wins over the region: zh-Hans-HK is Simplified.
        if "hans" in parts[1:]:
            return "zh"
        return "zh_TW" if _TRADITIONAL & set(parts[1:]) else "zh"
    return language if language in LOCALES else None


LANG_COOKIE = "crm_lang"


def select_locale(app):
    """``?lang=``, the user's profile, the language cookie, Accept-Language, the site default."""
    if not has_request_context():
        return app.config["CRM_DEFAULT_LOCALE"]
    chosen = normalize_locale(request.args.get("lang"))
    if chosen:
        return chosen
    user = current_user
    if getattr(user, "is_authenticated", False) and user.locale in LOCALES:
        return user.locale
    chosen = normalize_locale(request.cookies.get(LANG_COOKIE))
    if chosen:
        return chosen
    for tag, _quality in request.accept_languages:
        chosen = normalize_locale(tag)
        if chosen:
            return chosen
    return app.config["CRM_DEFAULT_LOCALE"]


def select_timezone(app):
    """The user's time zone, else the company's (CRM_TIMEZONE)."""
    if has_request_context():
        user = current_user
        if getattr(user, "is_authenticated", False) and user.timezone:
            return user.timezone
    return app.config["CRM_TIMEZONE"]


def remember_language(response):
    """``?lang=xx`` is kept: in the profile of a signed-in user, else in a cookie."""
    chosen = normalize_locale(request.args.get("lang"))
    if not chosen:
        return response
    user = current_user
    if getattr(user, "is_authenticated", False) and getattr(user, "via", None) == "session":
        if user.locale != chosen:
            from crm_core.users.services import update_profile

            update_profile(user.user, {"locale": chosen}, actor_id=user.id)
    response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax",
                        httponly=True, secure=request.is_secure)
    return response


@dataclass(frozen=True)
class CatalogSource:
    """A package's gettext domain and the folder that holds its ``locale/``."""

    domain: str
    root: Path

    @classmethod
    def for_module(cls, module):
        """The catalogue of the package a (plugin) module belongs to, or None."""
        package = module.__name__.split(".")[0]
        try:
            root = Path(str(importlib.resources.files(package)))
        except (ModuleNotFoundError, TypeError, ValueError):
            return None  # a module built in memory (tests) has no files
        return cls(package, root)

    def po_path(self, locale):
        return self.root / "locale" / locale / "LC_MESSAGES" / f"{self.domain}.po"


@functools.lru_cache(maxsize=256)
def _compile(path, _mtime_ns):
    """Compile one .po file to a Translations object (cached per file version)."""
    with open(path, "rb") as handle:
        catalog = read_po(handle)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def load_catalogs(sources):
    """{locale: merged Translations of every package} for the translated locales."""
    merged = {}
    for locale in TRANSLATED_LOCALES:
        translations = None
        for source in sources:
            path = source.po_path(locale)
            if not path.is_file():
                continue
            compiled = _compile(str(path), path.stat().st_mtime_ns)
            if translations is None:
                translations = Translations()
                translations.plural = compiled.plural
                translations._catalog = dict(compiled._catalog)
            else:
                translations._catalog.update(compiled._catalog)
        merged[locale] = translations or NullTranslations()
    return merged


class CatalogDomain(Domain):
    """A flask-babel domain that serves the application's merged catalogues."""

    def __init__(self, catalogs):
        super().__init__()
        self.catalogs = catalogs

    def get_translations(self):
        locale = get_locale()
        if locale is None:
            return NullTranslations()
        return self.catalogs.get(locale_code(locale)) or NullTranslations()


def locale_code(locale):
    """babel Locale -> one of LOCALES (zh_Hant_TW -> zh_TW)."""
    if locale.language == "zh":
        if locale.script:
            return "zh_TW" if locale.script == "Hant" else "zh"
        return "zh_TW" if locale.territory in ("TW", "HK", "MO") else "zh"
    return locale.language


def current_locale():
    """The active one of LOCALES (the default outside a request)."""
    locale = get_locale()
    return locale_code(locale) if locale is not None else SOURCE_LOCALE


def html_lang():
    """The BCP 47 tag for ``<html lang>``: zh-Hans, zh-Hant, pl..."""
    return {"zh": "zh-Hans", "zh_TW": "zh-Hant"}.get(current_locale(), current_locale())


def babel_locale(code):
    return Locale.parse("zh_Hant_TW" if code == "zh_TW" else code)


def init_i18n(app, sources):
    catalogs = load_catalogs(sources)
    babel = Babel()
    babel.init_app(app, default_locale=app.config["CRM_DEFAULT_LOCALE"],
                   default_timezone=app.config["CRM_TIMEZONE"],
                   locale_selector=lambda: babel_locale(select_locale(app)),
                   timezone_selector=lambda: select_timezone(app))
    # Replace the directory-based default domain with the merged catalogues.
    babel.__dict__["domain_instance"] = CatalogDomain(catalogs)
    app.jinja_env.globals.update(html_lang=html_lang, current_locale=current_locale,
                                 language_names=LANGUAGE_NAMES)
    app.after_request(remember_language)
    return catalogs
