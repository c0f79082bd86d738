"""The sign-in throttle's counting, on a clock the test moves by hand."""

from __future__ import annotations

import pytest

from app.auth import sign_in_throttle
from app.auth.sign_in_throttle import SignInThrottle
from app.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, per_account: int = 3, per_address: int = 5) -> SignInThrottle:
    return SignInThrottle(
        per_account=per_account, per_address=per_address, window_s=60, clock=clock
    )


def refused_for(t: SignInThrottle, account: str, address: str | None) -> int:
    """Seconds the refusal says to wait."""
    with pytest.raises(RateLimited) as refused:
        t.admit(account, address)
    assert refused.value.error_type == "rate_limited"
    return refused.value.retry_after_s


def test_an_account_is_refused_at_its_limit_until_the_oldest_failure_ages_out() -> None:
    clock = Clock()
    t = throttle(clock)
    for _ in range(3):
        t.admit("a@x.io", "10.0.0.1")  # each one fails: nothing takes it back
        clock.now += 10  # failures at 1000, 1010, 1020
    assert refused_for(t, "a@x.io", "10.0.0.9") == 30  # any address: the first ages out at 1060
    clock.now = 1059.5
    assert refused_for(t, "a@x.io", None) == 1
    clock.now = 1060.0
    t.admit("a@x.io", "10.0.0.1")  # one failure aged out: under the limit again


def test_parallel_attempts_count_before_they_end() -> None:
    clock = Clock()
    t = throttle(clock)
    # Three guesses admitted together, none finished yet: a fourth is refused already.
    for _ in range(3):
        t.admit("a@x.io", "10.0.0.1")
    assert refused_for(t, "a@x.io", "10.0.0.1") == 60


def test_an_address_is_refused_across_accounts_but_other_addresses_are_not() -> None:
    clock = Clock()
    t = throttle(clock)
    for n in range(5):
        t.admit(f"user{n}@x.io", "10.0.0.1")
    assert refused_for(t, "fresh@x.io", "10.0.0.1") == 60
    t.admit("fresh@x.io", "10.0.0.2")


def test_a_success_clears_the_account_and_takes_back_only_its_own_attempt() -> None:
    clock = Clock()
    t = throttle(clock)
    for _ in range(2):
        t.admit("a@x.io", "10.0.0.1")
    t.succeeded(t.admit("a@x.io", "10.0.0.1"))
    for _ in range(2):
        t.admit("a@x.io", "10.0.0.1")
    t.admit("a@x.io", "10.0.0.3")  # the two since the success are under three
    assert refused_for(t, "a@x.io", "10.0.0.3") == 60
    # The first address kept a's four failures (not the success): one more reaches five.
    t.admit("c@x.io", "10.0.0.1")
    assert refused_for(t, "d@x.io", "10.0.0.1") == 60


def test_an_attempt_the_server_failed_is_withdrawn() -> None:
    clock = Clock()
    t = throttle(clock, per_account=1, per_address=1)
    t.withdraw(t.admit("a@x.io", "10.0.0.1"))
    t.admit("a@x.io", "10.0.0.1")
    assert refused_for(t, "a@x.io", "10.0.0.2") == 60


def test_a_limit_of_zero_counts_nothing() -> None:
    clock = Clock()
    t = throttle(clock, per_account=0, per_address=0)
    for _ in range(1000):
        t.admit("a@x.io", "10.0.0.1")
    assert len(t.accounts) == len(t.addresses) == 0


def test_a_spray_of_accounts_keeps_memory_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sign_in_throttle, "MAX_TRACKED_KEYS", 100)
    clock = Clock()
    t = throttle(clock, per_account=2, per_address=0)
    for n in range(1000):
        t.admit(f"spray{n}@x.io", None)
        assert len(t.accounts) <= 100
    # The newest keys survive a shrink (aged-out ones and the oldest go first) and count on.
    t.admit("spray999@x.io", None)
    assert refused_for(t, "spray999@x.io", None) == 60


def test_a_loopback_address_is_not_counted_but_its_accounts_are() -> None:
    clock = Clock()
    t = throttle(clock, per_account=3, per_address=2)
    for n in range(10):
        t.admit(f"user{n}@x.io", "127.0.0.1")
        t.admit(f"other{n}@x.io", "::1")
    assert len(t.addresses) == 0
    for _ in range(2):
        t.admit("user0@x.io", "127.0.0.1")
    assert refused_for(t, "user0@x.io", "127.0.0.1") == 60
