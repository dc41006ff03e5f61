"""One configured requirement of a stage: moving an opportunity INTO ``stage`` needs it.

``kind`` names a registered requirement kind ("field", "team_role", or a plugin's
"<plugin>.<name>"); ``params`` holds what that kind asks (JSON: {"field": "amount",
"minimum": "0", "exclusive": true}, {"role": "presales"}...). Gates are settings, not
business records: no recycle bin; their changes go to the security log.
"""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow
from crm_core.opportunities.models import Stage


class StageGate(BaseModel):
    stage = peewee.ForeignKeyField(Stage, backref="gates", on_delete="CASCADE")
    kind = peewee.CharField(max_length=100)
    params = peewee.TextField(default="{}")
    # Off: the gate applies only when the deal moves forward (see services.moving_back).
    also_backwards = peewee.BooleanField(default=False)
    position = peewee.IntegerField(default=0)
    version = peewee.IntegerField(default=1)
    created_at = UTCDateTimeField(default=utcnow)
    created_by_id = peewee.IntegerField(null=True)
    updated_at = UTCDateTimeField(default=utcnow)
    updated_by_id = peewee.IntegerField(null=True)

    class Meta:
        # The gates of a stage are read in one query on every move.
        indexes = ((("stage", "position"), False),)
