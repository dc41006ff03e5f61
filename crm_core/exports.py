"""Export of a list of records to CSV or XLSX, as the reader may see it.

The rows are the reader's readable records (the access engine's query), the columns the
record's fields minus those hidden from the reader, named as in the API (``parent_id``),
so a file exported can be imported back with no mapping. Text that a spreadsheet would
run as a formula (starting with = + - @ or a tab/return) is written so it stays text.
Every export goes to the security log with its size.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io

from crm_core.audit.services import log_security
from crm_core.permissions import FIELD_HIDDEN, engine

FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
# Kept out of files: soft-delete bookkeeping says nothing about a live record.
SKIPPED = frozenset(["deleted_at", "deleted_by_id"])
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_ROWS = 1_000_000  # an XLSX sheet holds 1,048,576 rows


def columns(object_name, user_id):
    """(API name, model field name) of the fields the reader may see, in model order."""
    obj = engine().objects[object_name]
    levels = engine().field_levels(user_id, object_name)
    out = []
    for name, field in obj.model._meta.fields.items():
        if name in SKIPPED or name == "custom":
            continue
        public = field.column_name if hasattr(field, "rel_model") else name
        level = levels.get("*", levels.get(public, levels.get(name, 2)))
        if level > FIELD_HIDDEN or name == "id":
            out.append((public, name))
    if "custom" in obj.model._meta.fields:
        from crm_core.customfields.registry import definitions

        # Custom fields as "custom.<key>" columns (the importer maps them back by name).
        for spec in definitions(object_name):
            if levels.get("*", levels.get(spec.name, 2)) > FIELD_HIDDEN:
                out.append((spec.name, spec))
    return out


def rows(object_name, user_id, query=None):
    """The readable records as lists of values (``query`` narrows the engine's own)."""
    model = engine().objects[object_name].model
    selected = query if query is not None else engine().query(user_id, object_name)
    from crm_core.customfields.values import export_value

    names = [name for _public, name in columns(object_name, user_id)]
    plain = [name for name in names if isinstance(name, str)]
    specs = [spec for spec in names if not isinstance(spec, str)]
    for record in selected.order_by(model.id).limit(MAX_ROWS).iterator():
        row = [record.__data__.get(name) for name in plain]
        if specs:
            custom = record.custom or {}
            row += [export_value(spec, custom.get(spec.key)) for spec in specs]
        yield row


def _text(value):
    """A value as the text a file holds; formulas defused for text values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return str(value)
    return _safe(str(value))


def _safe(text):
    return "'" + text if text.startswith(FORMULA_START) else text


def write(object_name, user_id, file_format, query=None):
    """(bytes, row count) of the export in ``file_format`` (csv or xlsx)."""
    header = [public for public, _name in columns(object_name, user_id)]
    if file_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        count = 0
        for values in rows(object_name, user_id, query):
            writer.writerow([_text(v) for v in values])
            count += 1
        # A byte-order mark so that spreadsheets open UTF-8 (Vietnamese, Chinese) correctly.
        data = ("\ufeff" + buffer.getvalue()).encode("utf-8")
    elif file_format == "xlsx":
        data, count = _xlsx(object_name, header, rows(object_name, user_id, query))
    else:
        raise ValueError(f"no export format {file_format!r}; choose one of {', '.join(FORMATS)}")
    log_security("export", actor_id=user_id, subject=object_name, format=file_format, rows=count)
    return data, count


def write_table(name, header, values, file_format, user_id):
    """(bytes, row count) of a report's table (``values``: lists of cells) in
    ``file_format``, defused and logged like a list export."""
    if file_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        count = 0
        for row in values:
            writer.writerow([_text(v) for v in row])
            count += 1
        data = ("\ufeff" + buffer.getvalue()).encode("utf-8")
    elif file_format == "xlsx":
        data, count = _xlsx(name, header, values)
    else:
        raise ValueError(f"no export format {file_format!r}; choose one of {', '.join(FORMATS)}")
    log_security("export", actor_id=user_id, subject=name, format=file_format, rows=count)
    return data, count


def _xlsx(object_name, header, values):
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(object_name[:31])
    sheet.append(header)
    count = 0
    for row in values:
        sheet.append([_cell(v) for v in row])
        count += 1
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue(), count


def _cell(value):
    """Numbers stay numbers; datetimes lose their zone (a sheet has none: they are UTC);
    text is defused like in CSV."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, (bool, int, float, decimal.Decimal, dt.date)) or value is None:
        return value
    return _safe(str(value))
