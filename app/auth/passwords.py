"""Argon2 password hashing, off the event loop (a hash costs tens of milliseconds of CPU)."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the email is unknown, so a login takes as long either way and its
    timing does not reveal which emails have accounts. Made on first use: it costs as
    much as a real hash, which start-up should not pay."""
    return _hasher.hash("insighthub-timing-equaliser")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(hashed: str | None, password: str) -> bool:
    if hashed is None:
        await asyncio.to_thread(lambda: _verify(_dummy_hash(), password))
        return False
    return await asyncio.to_thread(_verify, hashed, password)
