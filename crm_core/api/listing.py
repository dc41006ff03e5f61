"""Lists: page, per_page, sort and filters, each only on allow-listed fields.

A ``ListQuery`` declares what one list endpoint accepts; its ``schema`` parses
the query string (an unknown parameter is a 400) and ``page()`` applies it to
a peewee query, returning ``{"items", "total", "page", "per_page"}``.
"""

from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from crm_core.api.frame import Schema

MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 50
# Deep offsets are slow and, past 64 bits, overflow; lists that go deeper page by keyset.
MAX_PAGE = 100_000
# Parameters every page accepts whatever the endpoint (the language switch).
GLOBAL_PARAMETERS = ("lang",)

_page_schemas: dict[type, type] = {}


class ListQuery:
    def __init__(self, name, *, sort, filters=None, default_sort="id", tiebreaker=None):
        """``sort``: {public name: peewee field}; ``filters``: {public name:
        (marshmallow field, peewee field)}; the tiebreaker keeps pages stable."""
        self.name = name
        self.sort_fields = dict(sort)
        self.filters = dict(filters or {})
        self.default_sort = default_sort
        self.tiebreaker = tiebreaker
        allowed = sorted(self.sort_fields) + sorted("-" + k for k in self.sort_fields)
        attrs = {
            "page": ma.fields.Integer(load_default=1,
                                      validate=ma.validate.Range(min=1, max=MAX_PAGE)),
            "per_page": ma.fields.Integer(
                load_default=DEFAULT_PER_PAGE,
                validate=ma.validate.Range(min=1, max=MAX_PER_PAGE)),
            "sort": ma.fields.String(
                load_default=default_sort,
                validate=ma.validate.OneOf(
                    allowed, error=_l("Sort by one of: {choices}.")),
                metadata={"description": "field name, '-' in front for descending"}),
        }
        for public, (field, _) in self.filters.items():
            attrs[public] = field
        for parameter in GLOBAL_PARAMETERS:
            attrs[parameter] = ma.fields.String(load_default=None, load_only=True)
        self.schema = Schema.from_dict(attrs, name=f"{name}ListQuery")

    def order(self, args):
        key = args.get("sort") or self.default_sort
        descending = key.startswith("-")
        field = self.sort_fields[key.lstrip("-")]
        ordering = [field.desc() if descending else field.asc()]
        tiebreaker = self.tiebreaker or field.model._meta.primary_key
        if tiebreaker is not field:
            ordering.append(tiebreaker.desc() if descending else tiebreaker.asc())
        return ordering

    def where(self, query, args):
        for public, (_, column) in self.filters.items():
            value = args.get(public)
            if value is not None:
                query = query.where(column == value)
        return query

    def page(self, query, args):
        query = self.where(query, args)
        page, per_page = args["page"], args["per_page"]
        total = query.count()
        items = list(query.order_by(*self.order(args)).paginate(page, per_page))
        return {"items": items, "total": total, "page": page, "per_page": per_page}


def page_schema(item_schema):
    """The list envelope for ``item_schema`` (one class per item schema, for the spec)."""
    if item_schema not in _page_schemas:
        name = item_schema.__name__.removesuffix("Schema") + "Page"
        _page_schemas[item_schema] = Schema.from_dict({
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "total": ma.fields.Integer(required=True),
            "page": ma.fields.Integer(required=True),
            "per_page": ma.fields.Integer(required=True),
        }, name=name)
    return _page_schemas[item_schema]
