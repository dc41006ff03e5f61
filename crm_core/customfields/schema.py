"""The ``custom`` object of a record in the API: dumped through ``values.public`` (every
live field, money as string decimals), loaded as a plain object that the record's service
validates field by field (a message per ``custom.<key>``)."""

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from crm_core.customfields.values import public


class CustomValues(ma.fields.Field):
    def __init__(self, object_name, **kwargs):
        kwargs.setdefault("metadata", {"description": "custom fields by key (GET /api/v1/custom-fields)",
                                       "type": "object"})
        super().__init__(**kwargs)
        self.object_name = object_name

    def _serialize(self, value, attr, obj, **kwargs):
        return public(self.object_name, value or {})

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ma.ValidationError(str(_l("This value is not valid.")))
        return value
