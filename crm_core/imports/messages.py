"""What each import problem says, in the reader's language (errors are stored as a code
and parameters, and shown in whoever reads them)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

MESSAGES = {
    # the whole file
    "too_large": _l("The file is larger than %(limit)s MB."),
    "too_many_rows": _l("The file has more than %(limit)s rows."),
    "empty": _l("The file is empty."),
    "encoding": _l("The file's encoding was not recognised: save it as UTF-8."),
    "malformed": _l("The file cannot be read as CSV (line %(row)s)."),
    "not_xlsx": _l("The file is not an Excel workbook (.xlsx)."),
    "zip_bomb": _l("The workbook unpacks to far more than its size: it is refused."),
    "unknown_field": _l("No field is named “%(field)s”."),
    "duplicate_column": _l("Two columns go to the field “%(field)s”."),
    "not_editable": _l("You may not change this field."),
    "no_create": _l("You may not create these records."),
    "unknown_object": _l("These records cannot be imported."),
    "failed": _l("The import stopped: %(detail)s"),
    # one row
    "required": _l("This field is required."),
    "too_long": _l("At most %(limit)s characters are allowed."),
    "choice": _l("Choose one of: %(choices)s."),
    "email": _l("“%(email)s” is not an email address."),
    "country": _l("Choose a country by its two-letter code."),
    "integer": _l("Enter a whole number."),
    "decimal": _l("Enter a number."),
    "date": _l("Enter a date as YYYY-MM-DD."),
    "date_ambiguous": _l("Day and month could be swapped in this date: write it as YYYY-MM-DD."),
    "currency_mismatch": _l("The amount is in %(found)s but the row's currency is %(currency)s."),
    "boolean": _l("Enter yes or no."),
    "currency": _l("Enter a currency code such as EUR."),
    "not_found": _l("No record you may see matches this value."),
    "ambiguous": _l("Several records match this value: use an external id."),
    "no_user": _l("No such user."),
    "reports_to_account": _l("Choose a contact of the same account."),
    "external_id_taken": _l("This external id belongs to a record you may not change."),
    "duplicate_in_file": _l("This external id is already on line %(line)s."),
    "duplicate": _l("This row duplicates records already stored (ids %(records)s)."),
    "duplicate_in_file_key": _l("Line %(line)s has the same value: this row would duplicate it."),
    "no_update": _l("You may not change this record."),
    "no_transfer": _l("You may not give this record to someone else."),
    "rejected": "%(message)s",
    "database": _l("The database refused this row."),
}


def message(code, params=None):
    """The message of ``code`` in the current language."""
    text = MESSAGES.get(code, MESSAGES["database"])
    if isinstance(text, str):
        return text % (params or {})
    return _(text._args[0] if hasattr(text, "_args") else str(text), **(params or {}))
