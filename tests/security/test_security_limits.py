"""The rate limiters of signaling/limits.py, on a clock the test moves: exact bursts and rates,
with the defaults docs/security.md states ("Rate limits and other limits")."""

from __future__ import annotations

import pytest

from signaling.connection import MESSAGE_BUCKET
from signaling.errors import RateLimited
from signaling.limits import KeyedLimiter, ServerLimits, TokenBucket

from ..conftest import FakeClock, test_settings


def allowed_now(allow: object, attempts: int) -> int:
    """How many of ``attempts`` back-to-back calls of ``allow()`` succeed."""
    assert callable(allow)
    return sum(1 for _ in range(attempts) if allow())


def test_a_websockets_message_bucket_holds_60_and_refills_20_a_second() -> None:
    clock = FakeClock(1_000_000.0)
    bucket = TokenBucket(MESSAGE_BUCKET, clock)
    assert allowed_now(bucket.allow, 100) == 60
    clock.advance(0.25)
    assert allowed_now(bucket.allow, 100) == 5
    clock.advance(1.0)
    assert allowed_now(bucket.allow, 100) == 20
    # Sustained at exactly 20 a second for a minute: never refused; the 21st of a second is.
    for _ in range(60):
        clock.advance(1.0)
        assert allowed_now(bucket.allow, 21) == 20
    clock.advance(3600)
    assert allowed_now(bucket.allow, 100) == 60  # an idle hour refills the burst, no more


def test_a_half_token_is_not_a_message() -> None:
    clock = FakeClock(1_000_000.0)
    bucket = TokenBucket(MESSAGE_BUCKET, clock)
    allowed_now(bucket.allow, 60)
    clock.advance(0.025)  # half a token
    assert not bucket.allow()
    clock.advance(0.025)
    assert bucket.allow()
    assert not bucket.allow()


def test_each_key_has_its_own_bucket_and_the_oldest_keys_are_forgotten() -> None:
    clock = FakeClock(1_000_000.0)
    limiter = KeyedLimiter(MESSAGE_BUCKET, clock, max_keys=2)
    assert allowed_now(lambda: limiter.allow("a"), 100) == 60
    assert limiter.exhausted("a")
    assert allowed_now(lambda: limiter.allow("b"), 10) == 10
    assert not limiter.exhausted("b")
    limiter.allow("c")  # a third key: "a", the least recently used, is forgotten
    assert not limiter.exhausted("a")
    assert allowed_now(lambda: limiter.allow("a"), 100) == 60


@pytest.mark.parametrize(
    ("limit", "burst", "seconds_per_token"),
    [
        # (limiter, burst, then one more every N s) for the defaults in docs/security.md
        ("unknown_lookups", 20, 3.0),  # 20 at once, then 20 a minute
        ("rooms_per_ip", 20, 60.0),  # 20 at once, then 60 an hour
        ("rooms_per_user", 10, 120.0),  # 10 at once, then 30 an hour
        ("rooms_per_org", 100, 6.0),  # 100 at once, then 600 an hour
    ],
)
def test_the_default_server_limits_are_the_documented_ones(
    limit: str, burst: int, seconds_per_token: float
) -> None:
    clock = FakeClock(1_000_000.0)
    limits = ServerLimits.from_settings(test_settings(), clock)
    limiter: KeyedLimiter = getattr(limits, limit)
    assert allowed_now(lambda: limiter.allow("key"), 1000) == burst
    clock.advance(seconds_per_token / 2)
    assert not limiter.allow("key")
    clock.advance(seconds_per_token / 2)
    assert limiter.allow("key")
    assert not limiter.allow("key")


def test_a_chat_user_over_the_limit_does_not_use_up_the_workspaces_allowance() -> None:
    clock = FakeClock(1_000_000.0)
    limits = ServerLimits.from_settings(test_settings(), clock)
    for _ in range(10):
        limits.check_chat_creation("slack", "T1", "U1")
    with pytest.raises(RateLimited):
        limits.check_chat_creation("slack", "T1", "U1")
    # The refused attempt spent nothing of the workspace's 100: 90 more people get their rooms.
    for user in range(90):
        limits.check_chat_creation("slack", "T1", f"U{user + 2}")
    with pytest.raises(RateLimited):
        limits.check_chat_creation("slack", "T1", "U999")
