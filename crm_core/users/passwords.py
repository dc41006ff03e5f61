"""Passwords: argon2id hashes (argon2-cffi, RFC 9106 defaults) and a strength check
(zxcvbn) that refuses common and easily guessed passwords."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

_hasher = PasswordHasher()
# Verified when the email is unknown, so a missing account costs the same time.
_DUMMY_HASH = _hasher.hash("not a real password, only spends the same time")

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_SCORE = 2  # zxcvbn: 0 too guessable ... 4 very unguessable
_CHECKED_PREFIX = 100  # zxcvbn's cost grows with length; a long tail only adds strength


class PasswordProblem(ValueError):
    """Why a new password is refused; ``code`` selects the translated message."""

    def __init__(self, code, **values):
        self.code, self.values = code, values
        super().__init__(code)


def hash_password(password):
    return _hasher.hash(password)


def verify_password(password_hash, password):
    if not password_hash:
        _spend(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _spend(password):
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except VerificationError:
        pass


def needs_rehash(password_hash):
    return _hasher.check_needs_rehash(password_hash)


def check_new_password(password, user_inputs=()):
    """Raise PasswordProblem unless ``password`` is long enough and hard to guess."""
    if len(password) < MIN_LENGTH:
        raise PasswordProblem("too_short", min=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise PasswordProblem("too_long", max=MAX_LENGTH)
    inputs = [part for value in user_inputs if value for part in str(value).replace("@", " ").split()]
    if zxcvbn(password[:_CHECKED_PREFIX], user_inputs=inputs)["score"] < MIN_SCORE:
        raise PasswordProblem("too_common")
