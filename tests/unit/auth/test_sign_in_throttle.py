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


def test_a_spray_of_accounts_keeps_memory_bounded_and_cannot_unlock_an_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sign_in_throttle, "MAX_TRACKED_KEYS", 100)
    clock = Clock()
    t = throttle(clock, per_account=2, per_address=0)
    t.admit("victim@x.io", None)
    t.admit("victim@x.io", None)  # locked, and the oldest key of all
    for n in range(1000):
        t.admit(f"spray{n}@x.io", None)
        assert len(t.accounts) <= 100
    assert refused_for(t, "victim@x.io", None) == 60  # the shrinks dropped sprayed keys first


def test_keys_take_the_same_room_however_long_the_username() -> None:
    clock = Clock()
    t = throttle(clock)
    huge = "a" * 1_000_000 + "@x.io"
    for _ in range(3):
        t.admit(huge, None)
    assert refused_for(t, huge, None) == 60
    assert {len(key) for key in t.accounts._failures} == {16}


def test_aged_out_keys_go_as_new_failures_come() -> None:
    clock = Clock()
    t = throttle(clock)
    for n in range(4):
        t.admit(f"old{n}@x.io", "10.0.0.1")
    clock.now += 61  # all four aged out
    t.admit("new@x.io", "10.0.0.2")
    assert len(t.accounts) == 1 and len(t.addresses) == 1


def test_a_first_try_that_succeeds_leaves_nothing_behind() -> None:
    clock = Clock()
    t = throttle(clock)
    t.succeeded(t.admit("a@x.io", "10.0.0.1"))
    assert len(t.accounts) == len(t.addresses) == 0


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", None),
        ("127.8.9.10", None),
        ("::1", None),
        ("::ffff:127.0.0.1", None),
        ("unix:/run/insighthub.sock", "unix:/run/insighthub.sock"),
        (None, None),
        ("", None),
    ],
)
def test_the_address_that_counts(address: str | None, counted: str | None) -> None:
    assert sign_in_throttle.counted_address(address) == counted


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
