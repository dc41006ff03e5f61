"""Optimistic locking over HTTP: the record's version is its ETag; writes send If-Match."""

from __future__ import annotations

from flask import request
from flask_babel import lazy_gettext as _l

from crm_core.api.errors import ApiError


def etag_of(record):
    return f'"{record.version}"'


def with_etag(response, record):
    response.headers["ETag"] = etag_of(record)
    return response


def check_if_match(record):
    """Return the version the client is changing; 428 without If-Match, 412 when stale.

    ``*`` is refused as well: it would let a client overwrite changes it never saw.
    """
    header = request.headers.get("If-Match")
    if not header or not header.strip() or header.strip() == "*":
        raise ApiError(428)
    tags = request.if_match
    if not tags.contains(str(record.version)):
        raise ApiError(412, fields={"version": [str(_l("The current version is {version}.")
                                                     .format(version=record.version))]},
                       headers={"ETag": etag_of(record)})
    return record.version
