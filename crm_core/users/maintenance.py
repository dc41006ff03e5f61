"""Periodic clean-up of sign-in records."""

import datetime as dt

from crm_core.db import utcnow
from crm_core.users import throttle
from crm_core.users.models import ApiToken, UserSession

KEEP_ENDED = dt.timedelta(days=90)  # ended sessions stay a while: they show trusted addresses


def purge_sign_in_records():
    now = utcnow()
    sessions = (UserSession.delete()
                .where((UserSession.expires_at < now - KEEP_ENDED)
                       | (UserSession.ended_at < now - KEEP_ENDED)).execute())
    tokens = ApiToken.delete().where(ApiToken.revoked_at < now - KEEP_ENDED).execute()
    counters = throttle.purge_expired(now)
    return {"sessions": sessions, "tokens": tokens, "throttle": counters}
