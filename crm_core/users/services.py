"""Users: creating them, signing in, sessions, API tokens, passwords, disabling.

Messages are lazy translations: a page or an API error shows them in the
reader's language; the command line shows the English source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext as _nl

from crm_core.audit.services import log_security
from crm_core.config import LOCALES
from crm_core.db import database, utcnow
from crm_core.errors import UserError  # noqa: F401  (raised here; callers import it from here too)
from crm_core.records import create_record, update_record
from crm_core.users import throttle
from crm_core.users.models import ApiToken, User, UserSession
from crm_core.users.passwords import (
    PasswordProblem, check_new_password, hash_password, needs_rehash, verify_password)

SESSION_LIFETIME = dt.timedelta(days=7)  # absolute: sign in again after a week
SESSION_IDLE = dt.timedelta(hours=12)  # unused for this long: sign in again
TOUCH_EVERY = dt.timedelta(minutes=1)  # how often last_seen_at is written
TOKEN_PREFIX = "crm_"

PASSWORD_MESSAGES = {
    "too_long": _l("The password may have at most %(max)s characters."),
    "too_common": _l("This password is too common or too easy to guess. "
                     "Use a longer phrase of unrelated words."),
}


class SignInError(Exception):
    def __init__(self, code, retry_after=0):
        self.code, self.retry_after = code, retry_after
        super().__init__(code)


def _digest(raw):
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def normalize_email(email):
    email = (email or "").strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in email) \
            or len(email) > 254:
        raise UserError(_l("“%(email)s” is not an email address.", email=email), field="email")
    # One address, one account: stored and looked up in lower case (mail systems treat
    # the local part case-insensitively in practice).
    return email.lower()


def password_error(problem: PasswordProblem):
    if problem.code == "too_short":
        message = _nl("The password needs at least %(num)s character.",
                      "The password needs at least %(num)s characters.", problem.values["min"])
    else:
        message = PASSWORD_MESSAGES[problem.code] % problem.values
    return UserError(message, field="password", code=problem.code)


def _check_password(password, email=None, name=None):
    try:
        check_new_password(password, user_inputs=(email, name))
    except PasswordProblem as problem:
        raise password_error(problem) from None


def _check_profile(locale=None, timezone=None):
    import zoneinfo

    if locale is not None and locale not in LOCALES:
        raise UserError(_l("Choose one of the offered languages."), field="locale")
    if timezone is not None:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise UserError(_l("Choose a time zone from the list."), field="timezone") from None


def find_by_email(email):
    try:
        return User.get_or_none(User.email == normalize_email(email))
    except UserError:
        return None


def create_user(email, name, password=None, is_admin=False, locale=None, timezone=None,
                actor_id=None):
    email = normalize_email(email)
    name = (name or "").strip() or email.split("@")[0]
    _check_profile(locale, timezone)
    if password is not None:
        _check_password(password, email, name)
    with database.atomic():
        if User.select().where(User.email == email).exists():
            raise UserError(_l("A user with this email already exists."), field="email",
                            code="duplicate")
        user = create_record(
            User, actor_id=actor_id, email=email, name=name,
            password_hash=hash_password(password) if password is not None else None,
            is_admin=is_admin, locale=locale, timezone=timezone)
        if is_admin:
            from crm_core.org.services import set_roles

            set_roles(user, ["administrator"])
        return user


def administrators():
    return User.select().where(User.is_admin & User.active)


def update_profile(user, changes, actor_id=None, expected_version=None):
    """Name, language and time zone: what a user may change about themselves."""
    allowed = {key: value for key, value in changes.items() if key in ("name", "locale", "timezone")}
    _check_profile(allowed.get("locale"), allowed.get("timezone"))
    if "name" in allowed:
        allowed["name"] = (allowed["name"] or "").strip()
        if not allowed["name"]:
            raise UserError(_l("Enter a name."), field="name")
    return update_record(user, allowed, actor_id=actor_id, expected_version=expected_version)


# -- signing in ------------------------------------------------------------------

def authenticate(email, password, address):
    """Return the user for a correct email and password, else raise SignInError.

    ``invalid`` never says whether the email exists; ``throttled`` carries the
    seconds to wait. Counters are shared by every worker (see throttle.py).
    """
    wait = throttle.begin_attempt(email, address)
    if wait:
        log_security("sign_in_throttled", subject=email)
        raise SignInError("throttled", retry_after=wait)
    user = find_by_email(email)
    if user is None or not user.active or user.deleted_at is not None:
        verify_password(None, password)  # same time as a real check
        log_security("sign_in_failed", subject=email)
        raise SignInError("invalid")
    if not verify_password(user.password_hash, password):
        log_security("sign_in_failed", actor_id=user.id, subject=email)
        raise SignInError("invalid")
    throttle.record_success(email, address)
    log_security("sign_in", actor_id=user.id, subject=email)
    if needs_rehash(user.password_hash):
        User.update(password_hash=hash_password(password)).where(User.id == user.id).execute()
    return user


def start_session(user, address=None, user_agent=None):
    """A new server-side session; returns the raw token for the cookie (never stored)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    UserSession.create(id=_digest(raw), user=user, created_at=now, last_seen_at=now,
                       expires_at=now + SESSION_LIFETIME, address=address,
                       user_agent=(user_agent or "")[:255])
    return raw


def resolve_session(raw):
    """The active user of a session token, or None (ended, expired, idle, user disabled)."""
    if not raw:
        return None
    now = utcnow()
    row = (UserSession.select(UserSession, User).join(User)
           .where((UserSession.id == _digest(raw)) & UserSession.ended_at.is_null()
                  & (UserSession.expires_at > now) & (UserSession.last_seen_at > now - SESSION_IDLE)
                  & User.active & User.deleted_at.is_null())
           .first())
    if row is None:
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        UserSession.update(last_seen_at=now).where(UserSession.id == row.id).execute()
    return row.user


def end_session(raw, actor_id=None):
    if raw:
        log_security("sign_out", actor_id=actor_id)
        (UserSession.update(ended_at=utcnow())
         .where((UserSession.id == _digest(raw)) & UserSession.ended_at.is_null()).execute())


def end_all_sessions(user, keep=None):
    """End every session of ``user`` (all devices), except the raw token ``keep``."""
    query = UserSession.update(ended_at=utcnow()).where(
        (UserSession.user == user) & UserSession.ended_at.is_null())
    if keep:
        query = query.where(UserSession.id != _digest(keep))
    return query.execute()


# -- API tokens ---------------------------------------------------------------------

def issue_token(user, name="API", expires_at=None):
    """A new API token; returns (raw token shown once, ApiToken row)."""
    name = (name or "").strip() or "API"
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.create(user=user, name=name[:100], token_hash=_digest(raw), prefix=raw[:12],
                          expires_at=expires_at)
    return raw, row


def resolve_token(raw):
    if not raw or not raw.startswith(TOKEN_PREFIX):
        return None
    now = utcnow()
    row = (ApiToken.select(ApiToken, User).join(User)
           .where((ApiToken.token_hash == _digest(raw)) & ApiToken.revoked_at.is_null()
                  & (ApiToken.expires_at.is_null() | (ApiToken.expires_at > now))
                  & User.active & User.deleted_at.is_null())
           .first())
    if row is None:
        return None
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        ApiToken.update(last_used_at=now).where(ApiToken.id == row.id).execute()
    return row.user


def tokens_of(user):
    return (ApiToken.select().where((ApiToken.user == user) & ApiToken.revoked_at.is_null())
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))


def revoke_token(user, token_id):
    """Revoke one of ``user``'s tokens; False when there is no such live token of theirs."""
    return bool(ApiToken.update(revoked_at=utcnow())
                .where((ApiToken.id == token_id) & (ApiToken.user == user)
                       & ApiToken.revoked_at.is_null()).execute())


# -- passwords and access ---------------------------------------------------------------

def change_password(user, current, new, keep_session=None):
    """A user changes their own password; every other session of theirs ends."""
    if not verify_password(user.password_hash, current):
        raise UserError(_l("The current password is incorrect."), field="current_password",
                        code="wrong_password")
    _check_password(new, user.email, user.name)
    with database.atomic():
        User.update(password_hash=hash_password(new)).where(User.id == user.id).execute()
        end_all_sessions(user, keep=keep_session)


def reset_password(user, new, actor_id=None):
    """An administrator sets a new password; every session of the user ends."""
    _check_password(new, user.email, user.name)
    with database.atomic():
        User.update(password_hash=hash_password(new), updated_by_id=actor_id,
                    updated_at=utcnow()).where(User.id == user.id).execute()
        end_all_sessions(user)
        log_security("password_reset", actor_id=actor_id, subject=user.email)


def set_active(user, active, actor_id=None):
    """Enable or disable a user; disabling ends their sessions and API tokens at once."""
    with database.atomic():
        update_record(user, {"active": bool(active)}, actor_id=actor_id)
        log_security("user_enabled" if active else "user_disabled", actor_id=actor_id,
                     subject=user.email)
        if not active:
            end_all_sessions(user)
            (ApiToken.update(revoked_at=utcnow())
             .where((ApiToken.user == user) & ApiToken.revoked_at.is_null()).execute())
