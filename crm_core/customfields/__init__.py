"""Custom fields: typed fields administrators (and plugins) add to records without code.

The public functions other parts call:

- ``validate(object_name, raw, partial=False) -> (values, errors)``
- ``compile_validator(object_name, partial=False) -> (raw -> (values, errors))`` for bulk
- ``compile_columns(object_name, keys, partial=False)`` the same over columns (the importer)
- ``check(object_name, values, problems, record=None)`` inside a service
- ``dumps(values) -> str | None`` the ``custom`` column's text for a bulk insert
- ``public(object_name, stored, visible=None) -> dict`` the API's ``custom``
- ``export_values(object_name, stored, keys) -> list``; ``definitions(object_name)``
"""

from crm_core.customfields.models import dumps
from crm_core.customfields.registry import CustomFieldSpec, definitions
from crm_core.customfields.values import check, compile_columns, compile_validator, export_values, public, validate

__all__ = ["CustomFieldSpec", "definitions", "validate", "compile_validator", "compile_columns", "check", "dumps",
           "public", "export_values"]
