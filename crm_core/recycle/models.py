import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow


class RecycleGroup(BaseModel):
    """One deletion: a record and the children deleted with it."""

    table = peewee.CharField(max_length=64)
    record_id = peewee.BigIntegerField()
    label = peewee.CharField(max_length=300)
    owner_id = peewee.IntegerField(null=True, index=True)
    deleted_at = UTCDateTimeField(default=utcnow, index=True)
    deleted_by_id = peewee.IntegerField(null=True, index=True)


class RecycleItem(BaseModel):
    group = peewee.ForeignKeyField(RecycleGroup, backref="items", on_delete="CASCADE")
    table = peewee.CharField(max_length=64)
    record_id = peewee.BigIntegerField()
    position = peewee.IntegerField()  # children before the root when purging
