"""Saved segments: a named condition tree over one kind of record, private or shared."""

import peewee

from crm_core.records import RecordModel

VISIBILITIES = ("private", "team", "department", "everyone")


class Segment(RecordModel):
    name = peewee.CharField(max_length=200)
    object = peewee.CharField(max_length=64)
    owner_id = peewee.IntegerField(index=True)
    visibility = peewee.CharField(max_length=16, default="private")
    team_id = peewee.IntegerField(null=True)
    department_id = peewee.IntegerField(null=True)
    conditions = peewee.TextField(default='{"all": []}')
    description = peewee.TextField(null=True)

    class Meta:
        indexes = ((("visibility", "object"), False),)
