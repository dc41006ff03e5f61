"""What duplicate detection keeps: the rules administrators set per object, the
normalised match keys of every record (exact matching is an index lookup) and the pairs
the scan found, with the ones a person dismissed as "not a duplicate"."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow


class DuplicateSetting(BaseModel):
    """An object's rules as an administrator set them (built-in defaults until then)."""

    object = peewee.CharField(max_length=64, unique=True)
    mode = peewee.CharField(max_length=8)          # warn | block | off
    rules = peewee.TextField()                      # JSON: [{"key", "method", "threshold"}]
    version = peewee.IntegerField(default=1)
    updated_at = UTCDateTimeField(default=utcnow)
    updated_by_id = peewee.IntegerField(null=True)


class MatchKey(BaseModel):
    """One normalised key of one record: kind is email, phone, tax_id, name (the whole
    normalised name) or block (a fuzzy-matching block of the name)."""

    object = peewee.CharField(max_length=64)
    record_id = peewee.BigIntegerField()
    kind = peewee.CharField(max_length=8)
    value = peewee.CharField(max_length=300)

    class Meta:
        indexes = ((("object", "kind", "value"), False),
                   (("object", "record_id"), False))


class DuplicatePair(BaseModel):
    """Two records the scan found alike (``low_id < high_id``), why, and whether someone
    said they are not duplicates (a dismissed pair is never proposed again)."""

    object = peewee.CharField(max_length=64)
    low_id = peewee.BigIntegerField()
    high_id = peewee.BigIntegerField()
    reason = peewee.CharField(max_length=16)
    score = peewee.IntegerField(default=100)
    found_at = UTCDateTimeField(default=utcnow)
    dismissed_at = UTCDateTimeField(null=True)
    dismissed_by_id = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("object", "low_id", "high_id"), True),
                   (("object", "high_id"), False))
