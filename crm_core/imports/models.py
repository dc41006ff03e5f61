"""What an import leaves behind: the run (its status, counts and per-row errors), the
named column mappings people save for their files' layouts, and the hashes of the rows
already imported (so that a file imported twice creates nothing the second time)."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow

IMPORT_STATUSES = ("queued", "running", "done", "refused", "failed")


class ImportRun(BaseModel):
    object_name = peewee.CharField(max_length=50)
    user_id = peewee.IntegerField(index=True)
    file_name = peewee.CharField(max_length=255)
    file_format = peewee.CharField(max_length=8)
    # Where the uploaded file waits for the worker (instance folder); removed when done.
    file_path = peewee.CharField(max_length=500, null=True)
    mapping = peewee.TextField(default="{}")  # JSON {file column: field}
    encoding = peewee.CharField(max_length=30, null=True)
    delimiter = peewee.CharField(max_length=4, null=True)
    dry_run = peewee.BooleanField(default=False)
    partial = peewee.BooleanField(default=False)
    status = peewee.CharField(max_length=10, default="queued")
    total_rows = peewee.IntegerField(default=0)
    created_count = peewee.IntegerField(default=0)
    updated_count = peewee.IntegerField(default=0)
    skipped_count = peewee.IntegerField(default=0)
    refused_count = peewee.IntegerField(default=0)
    # JSON list of {"row", "column", "value", "code", "params"}: messages are rendered in
    # the reader's language when shown, not stored in the importer's.
    errors = peewee.TextField(default="[]")
    created_at = UTCDateTimeField(default=utcnow, index=True)
    finished_at = UTCDateTimeField(null=True)


class ImportMapping(BaseModel):
    object_name = peewee.CharField(max_length=50)
    name = peewee.CharField(max_length=100)
    mapping = peewee.TextField()  # JSON {file column: field, or null to ignore it}
    created_by_id = peewee.IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("object_name", "name"), True),)


class ImportedRow(BaseModel):
    """The hash of a row imported without an external id."""

    object_name = peewee.CharField(max_length=50)
    row_hash = peewee.CharField(max_length=32)
    record_id = peewee.IntegerField()

    class Meta:
        primary_key = peewee.CompositeKey("object_name", "row_hash")
