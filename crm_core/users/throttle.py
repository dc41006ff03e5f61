"""Sign-in throttling shared by every worker process (state in the database).

Three counters, each over a sliding window that restarts after it expires:
- the account from one address: few tries, then that address waits;
- one address over all accounts: stops a sweep across many accounts;
- the account from everywhere: stops a distributed guess, but never blocks an
  address the user has signed in from before, so the real user is not locked out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee

from crm_core.db import database, utcnow
from crm_core.users.models import LoginThrottle, UserSession


@dataclass(frozen=True)
class Rule:
    kind: str
    limit: int
    window: dt.timedelta
    block: dt.timedelta


RULES = (
    Rule("pair", 5, dt.timedelta(minutes=15), dt.timedelta(minutes=15)),
    Rule("address", 30, dt.timedelta(minutes=15), dt.timedelta(minutes=30)),
    Rule("account", 100, dt.timedelta(hours=1), dt.timedelta(hours=1)),
)
TRUSTED_FOR = dt.timedelta(days=60)


def _keys(email, address):
    email = (email or "").strip().lower()
    return {"pair": f"pair:{email}|{address}", "address": f"address:{address}",
            "account": f"account:{email}"}


def _trusted(email, address):
    """Has this account signed in from this address recently?"""
    from crm_core.users.models import User

    return (UserSession.select().join(User)
            .where((User.email == (email or "").strip().lower()) & (UserSession.address == address)
                   & (UserSession.created_at > utcnow() - TRUSTED_FOR))
            .exists())


def retry_after(email, address, now=None):
    """Seconds to wait before this sign-in may be tried, 0 when it may be tried now."""
    now = now or utcnow()
    keys = _keys(email, address)
    rows = {row.key: row for row in LoginThrottle.select().where(
        LoginThrottle.key.in_(list(keys.values())) & (LoginThrottle.blocked_until > now))}
    waits = []
    for rule in RULES:
        row = rows.get(keys[rule.kind])
        if row is None:
            continue
        if rule.kind == "account" and _trusted(email, address):
            continue
        waits.append((row.blocked_until - now).total_seconds())
    return int(max(waits)) + 1 if waits else 0


def record_failure(email, address, now=None):
    """Count a failed sign-in under every rule, atomically across processes."""
    now = now or utcnow()
    keys = _keys(email, address)
    with database.atomic():
        for rule in RULES:
            key = keys[rule.kind]
            expired = LoginThrottle.window_start < now - rule.window
            (LoginThrottle.insert(key=key, failures=1, window_start=now)
             .on_conflict(conflict_target=[LoginThrottle.key], update={
                 LoginThrottle.failures: peewee.Case(None, [(expired, 1)],
                                                     LoginThrottle.failures + 1),
                 LoginThrottle.window_start: peewee.Case(None, [(expired, now)],
                                                         LoginThrottle.window_start),
             }).execute())
            (LoginThrottle.update(blocked_until=now + rule.block)
             .where((LoginThrottle.key == key) & (LoginThrottle.failures >= rule.limit))
             .execute())


def record_success(email, address):
    """A correct password from this address clears that address's count for the account."""
    LoginThrottle.delete().where(LoginThrottle.key == _keys(email, address)["pair"]).execute()


def purge_expired(now=None):
    """Drop counters whose window and block are both over (a periodic job)."""
    now = now or utcnow()
    longest = max(rule.window for rule in RULES)
    return (LoginThrottle.delete()
            .where((LoginThrottle.window_start < now - longest)
                   & (LoginThrottle.blocked_until.is_null() | (LoginThrottle.blocked_until < now)))
            .execute())
