"""Passwords, hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

from functools import lru_cache

MIN_LENGTH = 8


@lru_cache(maxsize=1)
def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


#: Compared against when the user does not exist, so a login takes as long either way.
def dummy_hash() -> str:
    return _dummy()


@lru_cache(maxsize=1)
def _dummy() -> str:
    return hash_password("not a password of anyone's")
