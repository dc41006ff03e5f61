"""From the bytes of an uploaded file to rows of text: limits checked before anything is
parsed, the encoding and the delimiter found, each row numbered by its line in the file.

``Refused`` carries a code and parameters; messages.py says it in the reader's language.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from typing import Iterator

# Tried in this order when a file is neither UTF-8 nor marked by a byte-order mark: the
# legacy code pages of the company's markets (Western and Central Europe, Russia, China,
# Taiwan).
LEGACY_ENCODINGS = ("cp1252", "cp1250", "cp1251", "gb18030", "big5")
DELIMITERS = ",;\t|"
# An .xlsx is a zip; a sheet compresses ~10x, a crafted one 1000x or more.
MAX_ZIP_RATIO = 150


class Refused(Exception):
    """The whole file is refused (``code``, ``params`` for the message)."""

    def __init__(self, code, **params):
        self.code, self.params = code, params
        super().__init__(f"{code} {params}")


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 100 * 1024 * 1024
    max_rows: int = 1_000_000
    max_unpacked_bytes: int = 500 * 1024 * 1024


@dataclass
class Table:
    """The header and an iterator of (line in the file, values)."""

    header: list
    rows: Iterator
    encoding: str | None = None
    delimiter: str | None = None
    estimated_rows: int = 0


def file_format(file_name, data):
    if data[:4] == b"PK\x03\x04" or file_name.lower().endswith(".xlsx"):
        return "xlsx"
    return "csv"


def read(data: bytes, file_name: str, limits: Limits, encoding=None, delimiter=None) -> Table:
    if len(data) > limits.max_bytes:
        raise Refused("too_large", limit=limits.max_bytes // (1024 * 1024))
    if not data.strip():
        raise Refused("empty")
    if file_format(file_name, data) == "xlsx":
        return read_xlsx(data, limits)
    return read_csv(data, limits, encoding, delimiter)


# -- CSV ------------------------------------------------------------------------------------------

def detect_encoding(data: bytes) -> str:
    """The file's encoding: a byte-order mark decides; else UTF-8 when it decodes; else the
    legacy code page whose reading looks most like text (legacy_encoding)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = data[:4096]
    # UTF-16 without a mark: every other byte of ASCII text is zero.
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 4:
        return "utf-16-le"
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 4:
        return "utf-16-be"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    return legacy_encoding(data)


# Punctuation that any of the code pages writes in ordinary text.
COMMON_SIGNS = frozenset("€–—“”‘’„«»°·•…\u00a0×±§©®№")


def _expected(encoding):
    """Does a non-ASCII character belong in text of ``encoding``'s languages?"""
    if encoding == "cp1251":
        return lambda c: "\u0410" <= c <= "\u044f" or c in "Ёё" or c in COMMON_SIGNS
    if encoding in ("gb18030", "big5"):
        return lambda c: ("\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f"
                          or "\uff00" <= c <= "\uffef" or c in COMMON_SIGNS)
    return lambda c: c.isalpha() or c in COMMON_SIGNS


def legacy_encoding(data):
    """The legacy code page whose reading of ``data`` looks most like text: the fewest
    characters foreign to its languages (Polish read as cp1252 shows ³ ¹ ¿; Chinese read as
    cp1251 shows Ђ ‰ Ў), and for the Latin pages non-ASCII letters must be the minority of
    letters (Russian read as cp1252 is all accented letters). Ties go to the earlier page."""
    sample = data[:65536]
    if len(data) > len(sample) and b"\n" in sample:
        sample = sample[:sample.rindex(b"\n")]
    best, best_penalty = None, None
    for encoding in LEGACY_ENCODINGS:
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        expected = _expected(encoding)
        foreign = [c for c in text if c > "\x7f"]
        penalty = sum(1 for c in foreign if not expected(c))
        if encoding in ("cp1252", "cp1250"):
            letters = sum(1 for c in text if c.isalpha())
            accented = sum(1 for c in foreign if c.isalpha())
            if letters and accented * 2 > letters:
                penalty += accented
        if best_penalty is None or penalty < best_penalty:
            best, best_penalty = encoding, penalty
    if best is None:
        raise Refused("encoding")
    return best


def detect_delimiter(text: str) -> str:
    """The delimiter of the header line and the first rows: csv.Sniffer restricted to ours,
    or the one that splits the header into the most columns."""
    sample = "\n".join(text[:65536].splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = text.split("\n", 1)[0]
        return max(DELIMITERS, key=header.count)


def read_csv(data, limits, encoding=None, delimiter=None):
    # Counting line-end bytes bounds the rows before any parsing (quoted line breaks, and
    # in UTF-16 the odd character with a 0x0A byte, only make the true count smaller).
    if data.count(b"\n") - 1 > limits.max_rows:
        raise Refused("too_many_rows", limit=limits.max_rows)
    encoding = encoding or detect_encoding(data)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise Refused("encoding")
    if text.startswith("\ufeff"):
        text = text[1:]
    delimiter = delimiter or detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise Refused("empty")
    return Table([h.strip() for h in header], _csv_rows(reader), encoding, delimiter,
                 text.count("\n"))


def _csv_rows(reader):
    line = reader.line_num + 1
    try:
        for values in reader:
            if any(values):
                yield line, values
            line = reader.line_num + 1
    except csv.Error:
        raise Refused("malformed", row=line)


# -- XLSX -------------------------------------------------------------------------------------------

def check_zip(data, limits):
    """Refuse zip bombs from the archive's directory, before openpyxl unpacks anything."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise Refused("not_xlsx")
    unpacked = sum(entry.file_size for entry in entries)
    packed = sum(entry.compress_size for entry in entries) or 1
    if unpacked > limits.max_unpacked_bytes or unpacked / packed > MAX_ZIP_RATIO:
        raise Refused("zip_bomb")
    if not any(entry.filename.startswith("xl/worksheets/") for entry in entries):
        raise Refused("not_xlsx")


def read_xlsx(data, limits):
    check_zip(data, limits)
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file
        raise Refused("not_xlsx")
    sheet = book.worksheets[0]
    declared = sheet.max_row or 0
    if declared - 1 > limits.max_rows:
        raise Refused("too_many_rows", limit=limits.max_rows)
    rows = sheet.iter_rows(values_only=True)
    try:
        header = next(rows)
    except StopIteration:
        raise Refused("empty")
    header = ["" if h is None else str(h).strip() for h in header]
    return Table(header, _xlsx_rows(rows, limits), None, None, declared)


def _xlsx_rows(rows, limits):
    count = 0
    for line, values in enumerate(rows, start=2):
        if not any(v not in (None, "") for v in values):
            continue
        count += 1
        if count > limits.max_rows:  # the sheet's declared size may lie
            raise Refused("too_many_rows", limit=limits.max_rows)
        yield line, [_cell_text(v) for v in values]


def _cell_text(value):
    """Cells as the text a CSV would hold (dates ISO, whole numbers without .0); the
    converters then treat both formats alike."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
