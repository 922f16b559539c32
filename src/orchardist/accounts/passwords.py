"""Console passwords: Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
setting), stored in the PHC string format, which carries its own parameters, so a later
change of parameters re-hashes each password at its next sign-in."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # hashing is deliberately slow; an endless password must not be
_hasher = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Verified against when the name is unknown, so that an unknown name takes as long as
    a wrong password and names cannot be probed by timing. Made at first use, not import:
    the hash is deliberately slow and most CLI commands never sign anyone in; the server
    makes it at start-up (web/app.py), so even the first sign-in is not a tell."""
    return _hasher.hash("orchardist: no such account")


class WeakPasswordError(ValueError):
    """str(err) says what a password needs."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"a password may have at most {MAX_LENGTH} characters")
    if password != password.strip():
        raise WeakPasswordError("a password may not start or end with spaces")


def hash_password(password: str) -> str:
    """The Argon2id hash of a password that passed check_strength."""
    check_strength(password)
    return _hasher.hash(password)


def rehash(password: str) -> str:
    """A fresh hash of a password that just verified (new parameters), whatever the
    strength rules have become since it was set."""
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the hash (None: no account, checked against a dummy)."""
    if len(password) > MAX_LENGTH:
        stored = None  # never hash an endless input; no stored password is that long
        password = ""
    try:
        return _hasher.verify(stored or dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
