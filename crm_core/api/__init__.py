"""The JSON API frame: flask-smorest at /api/v1, the error envelope, lists, ETags."""

from crm_core.api.errors import ApiError
from crm_core.api.frame import Blueprint, Schema
from crm_core.api.listing import ListQuery, page_schema
from crm_core.api.locking import check_if_match, etag_of, with_etag

__all__ = ["ApiError", "Blueprint", "Schema", "ListQuery", "page_schema", "check_if_match",
           "etag_of", "with_etag"]
