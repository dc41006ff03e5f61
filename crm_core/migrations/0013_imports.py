"""Imports: runs, saved mappings, hashes of imported rows; external ids on accounts,
contacts and leads (unique per object)."""

from peewee import BooleanField, CharField, CompositeKey, IntegerField, Model, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table


def up(migrator, db):
    import datetime

    def now():
        return datetime.datetime.now(datetime.timezone.utc)

    run = frozen_table(db, "import_run", {
        "object_name": CharField(max_length=50),
        "user_id": IntegerField(index=True),
        "file_name": CharField(max_length=255),
        "file_format": CharField(max_length=8),
        "file_path": CharField(max_length=500, null=True),
        "mapping": TextField(default="{}"),
        "encoding": CharField(max_length=30, null=True),
        "delimiter": CharField(max_length=4, null=True),
        "dry_run": BooleanField(default=False),
        "partial": BooleanField(default=False),
        "status": CharField(max_length=10, default="queued"),
        "total_rows": IntegerField(default=0),
        "created_count": IntegerField(default=0),
        "updated_count": IntegerField(default=0),
        "skipped_count": IntegerField(default=0),
        "refused_count": IntegerField(default=0),
        "errors": TextField(default="[]"),
        "created_at": UTCDateTimeField(default=now, index=True),
        "finished_at": UTCDateTimeField(null=True),
    })
    mapping = frozen_table(db, "import_mapping", {
        "object_name": CharField(max_length=50),
        "name": CharField(max_length=100),
        "mapping": TextField(),
        "created_by_id": IntegerField(null=True),
        "created_at": UTCDateTimeField(default=now),
    }, indexes=((("object_name", "name"), True),))
    class ImportedRow(Model):
        object_name = CharField(max_length=50)
        row_hash = CharField(max_length=32)
        record_id = IntegerField()

        class Meta:
            database = db
            table_name = "imported_row"
            primary_key = CompositeKey("object_name", "row_hash")

    db.create_tables([run, mapping, ImportedRow])
    tables = ("account", "contact", "lead")
    migrator.migrate(*[migrator.add_column(t, "external_id", CharField(max_length=100, null=True))
                       for t in tables])
    migrator.migrate(*[migrator.add_index(t, ("external_id",), True) for t in tables])
