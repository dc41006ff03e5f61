"""Match keys: the normalised form of an email, a phone number, a tax id or a name, so that
exact matching is an index lookup and fuzzy matching compares like with like.

Plain functions without the database: the importer and web-to-lead compute keys in bulk
with them."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Country calling codes of the markets the CRM serves (and their neighbours); a national
# number ("0601 ...", Russian "8 ...") gets its country's code when the country is known.
CALLING_CODES = {
    "VN": "84", "PL": "48", "CN": "86", "TW": "886", "HK": "852", "RU": "7", "KZ": "7",
    "BY": "375", "UA": "380", "US": "1", "CA": "1", "GB": "44", "DE": "49", "FR": "33",
    "IT": "39", "ES": "34", "NL": "31", "BE": "32", "AT": "43", "CH": "41", "CZ": "420",
    "SK": "421", "LT": "370", "LV": "371", "EE": "372", "SE": "46", "NO": "47", "DK": "45",
    "FI": "358", "JP": "81", "KR": "82", "SG": "65", "TH": "66", "MY": "60", "ID": "62",
    "PH": "63", "AU": "61", "IN": "91", "KH": "855", "LA": "856",
}
# Where the national trunk prefix is not 0.
TRUNK_PREFIX = {"RU": "8", "KZ": "8", "BY": "8", "US": "1", "CA": "1"}

# Legal forms and filler words that say nothing about which company it is.
LEGAL_WORDS = frozenset("""
co company corp corporation inc incorporated ltd limited llc plc gmbh ag kg ohg ug se sa sas
sarl srl spa bv nv oy ab as aps kft sro spzoo sp z o oo zoo ska sk jsc pjsc ojsc cjsc
ooo oao zao pao ао ооо оао зао пао ип тов
cong ty tnhh cp co phan trach nhiem huu han mtv dntn tap doan
the and &
""".split())
CJK_LEGAL = ("有限责任公司", "股份有限公司", "有限公司", "股份公司", "集团", "公司")

_NON_DIGIT = re.compile(r"\D")
_EXTENSION = re.compile(r"(?i)\s*(?:ext\.?|x|#|доб\.?|wew\.?)\s*\d+\s*$")
_EXTENSION_ENDS = frozenset("xX#.tTбБwW")  # the last letter of each extension mark
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
_WORD = re.compile(r"\w+", re.UNICODE)


def normalise_email(value):
    """``" Anna.Nowak@Example.COM "`` -> ``"anna.nowak@example.com"``; None when empty or
    not an address (a missing @ or an empty side)."""
    if not value:
        return None
    text = "".join(str(value).split()).lower()  # no white space (what \s matches; cheaper than a regex)
    if text.startswith("mailto:"):
        text = text[7:]
    text = text.strip("<>")
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain:
        return None
    return f"{local}@{domain}"


def normalise_phone(value, country=None):
    """International digits without the plus: ``"+48 601-234-567"``, ``"0048 601234567"``
    and ``"601 234 567"`` with country PL all give ``"48601234567"``; ``"8 (495) 123-45-67"``
    with country RU gives ``"74951234567"``. Without a country a national number keeps its
    digits as written. None when fewer than 6 digits remain (an extension, a typo)."""
    if not value:
        return None
    text = str(value).strip()
    # An extension ("x12", "ext. 12", "doppio 12") is not part of the number.
    # Most numbers end in digits after a digit or a separator: no regex for them.
    last = text.rstrip().rstrip("0123456789").rstrip()[-1:]
    if last in _EXTENSION_ENDS or not last.isascii():
        extension = _EXTENSION.search(text)
        if extension is not None:
            text = text[:extension.start()]
    international = text.startswith("+")
    digits = _NON_DIGIT.sub("", text)
    if digits.startswith("00"):
        digits, international = digits[2:], True
    if len(digits) < 6:
        return None
    if not international and country:
        code = CALLING_CODES.get(str(country).upper())
        trunk = TRUNK_PREFIX.get(str(country).upper(), "0")
        if code:
            if digits.startswith(trunk) and len(digits) > 7:
                digits = code + digits[len(trunk):]
            elif not digits.startswith(code) or len(digits) <= 10:
                digits = code + digits
    return digits


def normalise_tax_id(value):
    """Letters and digits, upper case, without a VAT country prefix: ``"PL 526-10-00-645"``
    and ``"5261000645"`` give ``"5261000645"``."""
    if not value:
        return None
    text = _NON_ALNUM.sub("", unicodedata.normalize("NFKC", str(value))).upper()
    if len(text) > 4 and text[:2].isalpha() and text[2:].isdigit():
        text = text[2:]
    return text or None


def fold(text):
    """Lower case, accents off (ễ -> e, ł -> l), punctuation to spaces."""
    text = str(text).lower()
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("đ", "d"))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


@lru_cache(maxsize=100_000)
def normalise_name(value, company=False):
    """Folded words, in their order; a company name loses its legal form
    (``"Công ty TNHH Minh An"`` -> ``"minh an"``, ``"ACME GmbH"`` -> ``"acme"``)."""
    if not value:
        return None
    text = str(value)
    if company:
        for word in CJK_LEGAL:
            text = text.replace(word, " ")
    words = _WORD.findall(fold(text))
    if company:
        kept = [w for w in words if w not in LEGAL_WORDS]
        words = kept or words
    return " ".join(words) or None


def person_name(first, last):
    return normalise_name(" ".join(part for part in (first, last) if part))


@lru_cache(maxsize=100_000)
def _blocks(name):
    return frozenset(_name_blocks(name))


def name_blocks(name):
    """Block keys of a normalised name (see ``_name_blocks``)."""
    return set(_blocks(name)) if name else set()


def _name_blocks(name):
    """Block keys of a normalised name: two names that differ by a typo in one word, by
    swapped words or by a dropped middle name share at least one key, so fuzzy matching
    compares each name with a few others rather than with the whole base."""
    if not name:
        return set()
    words = name.split()
    if len(words) == 1:
        word = words[0]
        return {f"1:{word[:3]}", f"1:{word[-3:]}"}
    keys = set()
    words = words[:4]
    for i, first in enumerate(words):
        for second in words[i + 1:]:
            keys.add("p:" + "/".join(sorted((first[:2], second[:2]))))
            keys.add("s:" + "/".join(sorted((first[-2:], second[-2:]))))
    return keys
