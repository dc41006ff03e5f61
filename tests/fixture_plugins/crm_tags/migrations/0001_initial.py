from peewee import CharField, IntegerField, Model


def up(migrator, db):
    class Tag(Model):
        label = CharField(max_length=50, unique=True)
        note_id = IntegerField(index=True)

        class Meta:
            database = db
            table_name = "tags_tag"

    db.create_tables([Tag])
