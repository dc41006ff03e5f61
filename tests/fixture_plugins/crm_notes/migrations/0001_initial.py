import datetime

from peewee import CharField, IntegerField, Model, TextField

from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    class Note(Model):
        version = IntegerField(default=1)
        created_at = UTCDateTimeField(default=_now, index=True)
        created_by_id = IntegerField(null=True)
        updated_at = UTCDateTimeField(default=_now)
        updated_by_id = IntegerField(null=True)
        deleted_at = UTCDateTimeField(null=True, index=True)
        deleted_by_id = IntegerField(null=True)
        title = CharField(max_length=200)
        body = TextField(default="")
        amount = MoneyField(null=True)
        currency = CurrencyField(null=True)
        remind_at = UTCDateTimeField(null=True)

        class Meta:
            database = db
            table_name = "notes_note"

    db.create_tables([Note])
