"""Which objects are checked for duplicates, on which keys, and the rules administrators
set per object (with built-in defaults until they do).

An object declares how to read its keys from a record's values (API names): the emails,
phones and tax ids to compare exactly, and the name to compare fuzzily. Later objects
call ``register_object`` with their own ``DuplicateObject``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from flask_babel import lazy_gettext as _l

from crm_core.duplicates import normalise as norm
from crm_core.errors import UserError

MODES = ("warn", "block", "off")
KEYS = ("email", "phone", "tax_id", "name")
METHODS = ("exact", "fuzzy")
KEY_LABELS = {"email": _l("Email"), "phone": _l("Phone"), "tax_id": _l("Tax id"), "name": _l("Name")}


@dataclass(frozen=True)
class DuplicateObject:
    """``fields`` per key: the value names that hold it (``phone`` and ``mobile``);
    ``name_of(values)`` the name to compare; ``country_of(values)`` the country a
    national phone number belongs to; ``mergeable`` the fields a merge may take from
    the other record; ``default_rules`` and ``default_mode`` until an administrator decides."""

    name: str
    fields: dict
    name_of: Callable[[dict], Any]
    country_of: Callable[[dict], Any]
    mergeable: tuple
    default_rules: tuple
    default_mode: str = "off"
    label_of: Callable[[Any], str] = field(default=lambda record: str(record.id))
    # Names are compared within a scope: contacts within their account (two Anna Nowaks of
    # two customers are two people; an email or phone still matches across accounts).
    scope_of: Callable[[dict], Any] = field(default=lambda values: "")

    def keys(self):
        return tuple(key for key in KEYS if key in self.fields or key == "name")


def _contact_country(values):
    from crm_core.accounts.models import Account

    account_id = values.get("account_id")
    if account_id is None:
        return None
    return Account.select(Account.country).where(Account.id == account_id).scalar()


def _person(values):
    return norm.person_name(values.get("first_name"), values.get("last_name"))


def _label_person(record):
    return " ".join(part for part in (record.first_name, record.last_name) if part)


OBJECTS: dict[str, DuplicateObject] = {}


def register_object(spec):
    OBJECTS[spec.name] = spec


register_object(DuplicateObject(
    "account", {"email": ("email",), "phone": ("phone",), "tax_id": ("tax_id",)},
    name_of=lambda values: norm.normalise_name(values.get("name"), company=True),
    country_of=lambda values: values.get("country"),
    mergeable=("name", "kind", "owner_id", "parent_id", "industry", "street", "city", "postal_code",
               "region", "country", "phone", "email", "website", "registration_number", "tax_id",
               "employees", "credit_rating", "legal_status", "financial_status", "description"),
    default_rules=({"key": "tax_id", "method": "exact"}, {"key": "email", "method": "exact"},
                   {"key": "phone", "method": "exact"}, {"key": "name", "method": "fuzzy", "threshold": 90}),
    label_of=lambda record: record.name))

register_object(DuplicateObject(
    "contact", {"email": ("email",), "phone": ("phone", "mobile")},
    name_of=_person, country_of=_contact_country,
    scope_of=lambda values: values.get("account_id") or "",
    mergeable=("account_id", "owner_id", "first_name", "last_name", "salutation", "title", "department",
               "reports_to_id", "email", "phone", "mobile", "birthday", "language", "interests",
               "family", "education", "preferred_channel", "do_not_call", "do_not_email", "notes"),
    default_rules=({"key": "email", "method": "exact"}, {"key": "phone", "method": "exact"},
                   {"key": "name", "method": "fuzzy", "threshold": 90}),
    label_of=_label_person))

register_object(DuplicateObject(
    "lead", {"email": ("email",), "phone": ("phone", "mobile")},
    name_of=_person, country_of=lambda values: values.get("country"),
    mergeable=("owner_id", "company", "first_name", "last_name", "title", "email", "phone", "mobile",
               "country", "region", "city", "industry", "source", "campaign_id", "status", "rating",
               "description"),
    default_rules=({"key": "email", "method": "exact"}, {"key": "phone", "method": "exact"},
                   {"key": "name", "method": "fuzzy", "threshold": 90}),
    label_of=_label_person))


def spec_of(object_name):
    try:
        return OBJECTS[object_name]
    except KeyError:
        raise UserError(_l("Duplicates are not checked for this kind of record."), field="object")


@dataclass
class Settings:
    object: str
    mode: str
    rules: list
    version: int = 0     # 0: the built-in defaults, never saved

    def rule(self, key):
        return next((rule for rule in self.rules if rule["key"] == key), None)

    def as_dict(self):
        return {"object": self.object, "mode": self.mode, "rules": self.rules, "version": self.version}


def settings_of(object_name):
    from crm_core.duplicates.models import DuplicateSetting

    spec = spec_of(object_name)
    row = DuplicateSetting.get_or_none(DuplicateSetting.object == object_name)
    if row is None:
        return Settings(object_name, spec.default_mode, [dict(rule) for rule in spec.default_rules])
    return Settings(object_name, row.mode, json.loads(row.rules), row.version)


def check_rules(object_name, mode, rules):
    """The rules cleaned (one per key, thresholds 50-100, fuzzy only on names), or a
    UserError naming every problem."""
    from crm_core.org.services import Problems

    spec = spec_of(object_name)
    problems = Problems()
    if mode not in MODES:
        problems.add("mode", _l("Choose one of: %(choices)s.", choices=", ".join(MODES)))
    cleaned, seen = [], set()
    for rule in rules or ():
        key, method = rule.get("key"), rule.get("method", "exact")
        if key not in spec.keys():
            problems.add("rules", _l("Choose one of: %(choices)s.", choices=", ".join(spec.keys())))
            continue
        if key in seen:
            problems.add("rules", _l("One rule per key."))
            continue
        seen.add(key)
        if method not in METHODS or (method == "fuzzy") != (key == "name"):
            problems.add("rules", _l("Names are compared fuzzily, emails, phones and tax ids exactly."))
            continue
        out = {"key": key, "method": method}
        if method == "fuzzy":
            threshold = rule.get("threshold", 90)
            if not isinstance(threshold, int) or isinstance(threshold, bool) or not 50 <= threshold <= 100:
                problems.add("rules", _l("A threshold is a whole number from 50 to 100."))
                continue
            out["threshold"] = threshold
        cleaned.append(out)
    problems.check()
    return cleaned


def save_settings(object_name, mode, rules, actor_id=None, expected_version=None):
    """Store an object's rules on the version the administrator saw (0: the defaults)."""
    from crm_core.audit.services import log_security
    from crm_core.db import database, utcnow
    from crm_core.duplicates.models import DuplicateSetting
    from crm_core.errors import VersionConflict

    cleaned = check_rules(object_name, mode, rules)
    with database.atomic():
        current = settings_of(object_name)
        if expected_version is not None and int(expected_version) != current.version:
            raise VersionConflict(DuplicateSetting, object_name, expected_version, current.version)
        values = {"mode": mode, "rules": json.dumps(cleaned), "updated_at": utcnow(),
                  "updated_by_id": actor_id}
        if current.version == 0:
            DuplicateSetting.insert(object=object_name, version=1, **values).execute()
        else:
            count = (DuplicateSetting.update(version=DuplicateSetting.version + 1, **values)
                     .where((DuplicateSetting.object == object_name)
                            & (DuplicateSetting.version == current.version)).execute())
            if count != 1:
                raise VersionConflict(DuplicateSetting, object_name, expected_version, None)
        log_security("duplicate_rules_changed", actor_id=actor_id, subject=object_name, mode=mode,
                     rules=cleaned)
    return settings_of(object_name)
