"""Refuse password guessing: too many failed sign-ins answer 429 ``rate_limited``.

Two counts, each over a sliding window: failures for one account (someone guessing one
user's password from many addresses) and failures from one client address (someone trying
many accounts). While either count is at its limit the next attempt is refused before the
password is hashed, with ``Retry-After`` saying when the oldest failure in the window ages
out. A successful sign-in clears the account's count, so the owner who mistypes a few times
is not locked out by their own typos; the address count is not cleared by it, or a guesser
could reset it with an account of their own.

A loopback address is not counted by address, and an IPv6 one counts as its /64 (see
``counted_address``). Keys are kept as 16-byte digests, aged-out ones go as new failures
come, and the table has a ceiling, so a client cannot grow it with long or made-up
usernames. The counts live in the process's memory: with several API nodes behind a proxy each node
counts for itself, so the effective limit is the per-node limit times the number of nodes.
That keeps sign-in free of a database write per failure; a shared store (the database or
a broker) would make it exact and is not needed at this scale. The client address is the
one uvicorn reports, which honours ``X-Forwarded-For`` from ``FORWARDED_ALLOW_IPS`` only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.errors import RateLimited

# Past this many tracked keys a new one first drops the keys whose failures have all aged
# out, then those under their limit (oldest first), and only then locked ones: a spray of
# made-up accounts cannot push a locked account out to reset it.
MAX_TRACKED_KEYS = 50_000
# Each failure also drops up to this many aged-out keys from the oldest end, so the table
# holds about one window's worth of keys without waiting for a shrink.
PRUNE_PER_ADD = 4


def _digest(key: str) -> bytes:
    """A fixed 16 bytes per key, however long the username a client sent."""
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


class FailureWindow:
    """Failure times per key within ``window_s``, at most ``limit`` kept per key.

    The dict is kept in order of each key's latest failure (a failure re-inserts its key
    last), so aged-out keys gather at its front.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[bytes, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None while it is under the limit."""
        if self.limit <= 0:
            return None
        digest = _digest(key)
        times = self._failures.get(digest)
        if times is None:
            return None
        now = self._clock()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[digest]
            return None
        if len(times) < self.limit:
            return None
        return times[0] + self.window_s - now

    def add(self, key: str, at: float) -> None:
        if self.limit <= 0:
            return
        digest = _digest(key)
        times = self._failures.pop(digest, None)
        if times is None:
            self._prune(PRUNE_PER_ADD)
            if len(self._failures) >= MAX_TRACKED_KEYS:
                self._shrink()
            times = deque(maxlen=self.limit)
        times.append(at)
        self._failures[digest] = times

    def discard(self, key: str, at: float) -> None:
        digest = _digest(key)
        times = self._failures.get(digest)
        if times is not None and at in times:
            times.remove(at)
            if not times:
                del self._failures[digest]

    def clear(self, key: str) -> None:
        self._failures.pop(_digest(key), None)

    def _prune(self, most: int) -> None:
        horizon = self._clock() - self.window_s
        for _ in range(most):
            oldest = next(iter(self._failures), None)
            if oldest is None or self._failures[oldest][-1] > horizon:
                return
            del self._failures[oldest]

    def _shrink(self) -> None:
        horizon = self._clock() - self.window_s
        for digest in [d for d, t in self._failures.items() if t[-1] <= horizon]:
            del self._failures[digest]
        excess = len(self._failures) - MAX_TRACKED_KEYS // 2
        if excess <= 0:
            return
        under = [d for d, t in self._failures.items() if len(t) < self.limit][:excess]
        for digest in under:
            del self._failures[digest]
        for digest in list(self._failures)[: max(excess - len(under), 0)]:
            del self._failures[digest]


def counted_address(address: str | None) -> str | None:
    """The address to count: None for a loopback one, an IPv6 address's /64.

    A loopback peer is this host: a local proxy that sent no ``X-Forwarded-For`` (then every
    client would share one count, and a hundred typos anywhere would lock everyone out) or
    a local tool or test suite. Failing open there keeps sign-in available; the account
    count still applies. An IPv6 client usually holds a whole /64, so that is what counts;
    an IPv4-mapped IPv6 address counts as its IPv4 one.
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a unix socket's name): count it as given
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sign-in attempt, counted as a failure from the moment it is admitted."""

    account: str
    address: str | None
    at: float


class SignInThrottle:
    """Admits attempts and counts them as failures at once, so that a burst of parallel
    guesses (each waiting on its password hash) cannot overshoot the limit; a success
    then takes its attempt back."""

    def __init__(
        self,
        *,
        per_account: int,
        per_address: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.accounts = FailureWindow(per_account, window_s, clock)
        self.addresses = FailureWindow(per_address, window_s, clock)

    def admit(self, account: str, address: str | None) -> Attempt:
        """Raise RateLimited if this account or address has failed too often of late."""
        address = counted_address(address)
        waits = [self.accounts.retry_after(account)]
        if address:
            waits.append(self.addresses.retry_after(address))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            raise RateLimited(
                "too many failed sign-ins: try again later", retry_after_s=math.ceil(wait)
            )
        attempt = Attempt(account, address, self._clock())
        self.accounts.add(account, attempt.at)
        if address:
            self.addresses.add(address, attempt.at)
        return attempt

    def succeeded(self, attempt: Attempt) -> None:
        """The right password: the account's failures are forgiven, the address's stay."""
        self.accounts.clear(attempt.account)
        self.withdraw(attempt)

    def withdraw(self, attempt: Attempt) -> None:
        """Not counted after all (the server, not the password, failed)."""
        self.accounts.discard(attempt.account, attempt.at)
        if attempt.address:
            self.addresses.discard(attempt.address, attempt.at)
