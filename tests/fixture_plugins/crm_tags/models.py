import peewee

from crm_core.db import BaseModel


class Tag(BaseModel):
    label = peewee.CharField(max_length=50, unique=True)
    note_id = peewee.IntegerField(index=True)
