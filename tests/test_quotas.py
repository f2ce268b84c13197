"""Quota values as administrators write them, and the server's token bucket (a fake clock)."""

from __future__ import annotations

import pytest

from finops_mcp_admin.errors import InvalidInput
from finops_mcp_admin.quotas import Rate, canonical_rate, parse_max_sessions, parse_rate
from finops_mcp_admin.server.auth import Principal
from finops_mcp_admin.server.quotas import RateLimiter


@pytest.mark.parametrize(("text", "rate"), [("600/min", Rate(600, 60)), ("10/s", Rate(10, 1)),
                                            (" 5 / Hour ", Rate(5, 3600)), ("1/m", Rate(1, 60))])
def test_rates_parse_and_print_canonically(text, rate):
    assert parse_rate(text) == rate
    assert canonical_rate(text) == str(rate) and parse_rate(str(rate)) == rate


@pytest.mark.parametrize("text", ["0/min", "600", "600/day", "-1/s", "1e3/min", "", "10/s/s"])
def test_bad_rates_are_refused(text):
    with pytest.raises(InvalidInput):
        parse_rate(text)


@pytest.mark.parametrize("text", ["0", "100001", "x", "2.5"])
def test_bad_session_caps_are_refused(text):
    with pytest.raises(InvalidInput):
        parse_max_sessions(text)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_bursts_to_the_rate_then_refills_at_it():
    clock = Clock()
    limiter = RateLimiter(None, clock)
    key = Principal("k" * 12, "k", (), rate="6/min")
    assert [limiter.wait(key) for _ in range(6)] == [None] * 6
    assert limiter.wait(key) == 10  # one token every 10 s
    clock.now = 9.0
    assert limiter.wait(key) == 1
    clock.now = 10.0
    assert limiter.wait(key) is None and limiter.wait(key) is not None


def test_server_default_applies_only_to_keys_without_their_own_rate():
    limiter = RateLimiter(parse_rate("1/h"), Clock())
    plain, own = Principal("a" * 12, "a", ()), Principal("b" * 12, "b", (), rate="100/s")
    assert limiter.wait(plain) is None and limiter.wait(plain) == 3600
    assert all(limiter.wait(own) is None for _ in range(100))
    assert RateLimiter(None, Clock()).wait(plain) is None  # no rate anywhere: unlimited


def test_a_changed_rate_takes_effect_at_once():
    limiter = RateLimiter(None, Clock())
    before = Principal("c" * 12, "c", (), rate="1/h")
    assert limiter.wait(before) is None and limiter.wait(before) is not None
    after = Principal("c" * 12, "c", (), rate="5/s")
    assert limiter.wait(after) is None
