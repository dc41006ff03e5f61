"""Creating and finding users."""

from __future__ import annotations

from crm_core.db import database
from crm_core.records import create_record
from crm_core.users.models import User
from crm_core.users.passwords import MAX_LENGTH, MIN_LENGTH, hash_password


class UserError(ValueError):
    pass


def normalize_email(email):
    email = (email or "").strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        raise UserError(f"{email!r} is not an email address")
    return f"{local}@{domain.lower()}"


def check_password(password):
    if len(password) < MIN_LENGTH:
        raise UserError(f"the password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UserError(f"the password may have at most {MAX_LENGTH} characters")


def find_by_email(email):
    return User.get_or_none(User.email == normalize_email(email))


def create_user(email, name, password=None, is_admin=False, locale=None, timezone=None,
                actor_id=None):
    email = normalize_email(email)
    if password is not None:
        check_password(password)
    with database.atomic():
        if User.select().where(User.email == email).exists():
            raise UserError(f"a user with the email {email} already exists")
        return create_record(
            User, actor_id=actor_id, email=email, name=name.strip() or email,
            password_hash=hash_password(password) if password is not None else None,
            is_admin=is_admin, locale=locale, timezone=timezone)


def administrators():
    return User.select().where(User.is_admin & User.active)
