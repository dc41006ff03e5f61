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


def _count(key, rule, now):
    expired = LoginThrottle.window_start < now - rule.window
    # Inside CASE the value is not tied to the column: convert it as the column would.
    stored_now = peewee.Value(LoginThrottle.window_start.db_value(now), unpack=False)
    (LoginThrottle.insert(key=key, failures=1, window_start=now)
     .on_conflict(conflict_target=[LoginThrottle.key], update={
         LoginThrottle.failures: peewee.Case(None, [(expired, 1)], LoginThrottle.failures + 1),
         LoginThrottle.window_start: peewee.Case(None, [(expired, stored_now)],
                                                 LoginThrottle.window_start),
     }).execute())


def begin_attempt(email, address, now=None):
    """Count a sign-in attempt before the password is checked; return the seconds to wait
    (0: go ahead). Counting first, in one transaction, means concurrent attempts on
    several workers cannot slip past the limit together."""
    now = now or utcnow()
    keys = _keys(email, address)
    waits = []
    with database.atomic():
        for rule in RULES:
            _count(keys[rule.kind], rule, now)
        rows = {row.key: row for row in
                LoginThrottle.select().where(LoginThrottle.key.in_(list(keys.values())))}
        for rule in RULES:
            row = rows[keys[rule.kind]]
            if rule.kind == "account" and _trusted(email, address):
                continue  # a distributed attack must not lock the owner out
            if row.blocked_until is not None and row.blocked_until > now:
                waits.append((row.blocked_until - now).total_seconds())
            elif row.failures > rule.limit:
                LoginThrottle.update(blocked_until=now + rule.block).where(
                    LoginThrottle.key == row.key).execute()
                waits.append(rule.block.total_seconds())
    return int(max(waits)) + 1 if waits else 0


def hit(key, rule, now=None):
    """Count one event under ``key`` (any namespaced string, e.g. ``webform:3|10.0.0.1``)
    against ``rule``; return the seconds to wait (0: go ahead). The same counters and the
    same counting-first transaction as sign-ins, so other limits shared by every worker
    process (web-to-lead submissions) need no table of their own."""
    now = now or utcnow()
    with database.atomic():
        _count(key, rule, now)
        row = LoginThrottle.get(LoginThrottle.key == key)
        if row.blocked_until is not None and row.blocked_until > now:
            return int((row.blocked_until - now).total_seconds()) + 1
        if row.failures > rule.limit:
            LoginThrottle.update(blocked_until=now + rule.block).where(LoginThrottle.key == key).execute()
            return int(rule.block.total_seconds()) + 1
    return 0


def retry_after(email, address, now=None):
    """Seconds before a sign-in may be tried (without counting one), 0 when it may."""
    now = now or utcnow()
    keys = _keys(email, address)
    rows = {row.key: row for row in LoginThrottle.select().where(
        LoginThrottle.key.in_(list(keys.values())) & (LoginThrottle.blocked_until > now))}
    waits = [(rows[keys[rule.kind]].blocked_until - now).total_seconds() for rule in RULES
             if keys[rule.kind] in rows and not (rule.kind == "account" and _trusted(email, address))]
    return int(max(waits)) + 1 if waits else 0


def record_failure(email, address, now=None):
    """Count a failed sign-in (for callers that did not go through begin_attempt)."""
    now = now or utcnow()
    keys = _keys(email, address)
    with database.atomic():
        for rule in RULES:
            _count(keys[rule.kind], rule, now)
            (LoginThrottle.update(blocked_until=now + rule.block)
             .where((LoginThrottle.key == keys[rule.kind]) & (LoginThrottle.failures >= rule.limit))
             .execute())


def record_success(email, address):
    """A correct password: this address's count for the account starts again, and the
    attempt is taken off the address and account counts."""
    keys = _keys(email, address)
    with database.atomic():
        LoginThrottle.delete().where(LoginThrottle.key == keys["pair"]).execute()
        (LoginThrottle.update(failures=LoginThrottle.failures - 1)
         .where(LoginThrottle.key.in_([keys["address"], keys["account"]])
                & (LoginThrottle.failures > 0)).execute())


def purge_expired(now=None):
    """Drop counters whose window and block are both over (a periodic job)."""
    now = now or utcnow()
    longest = max(rule.window for rule in RULES)
    return (LoginThrottle.delete()
            .where((LoginThrottle.window_start < now - longest)
                   & (LoginThrottle.blocked_until.is_null() | (LoginThrottle.blocked_until < now)))
            .execute())
