"""The throttle on its own: failure windows per client IP and per (IP, key id), attempts
reserved on arrival, bounds on attempts in flight, and a table that stays cheap when full."""

from __future__ import annotations

from collections import OrderedDict

from finops_mcp_admin.server import throttle as th
from finops_mcp_admin.server.throttle import Attempt, FailureThrottle, Refusal

CLIENT_BUSY, SERVER_BUSY, TOO_MANY_FAILURES = th.CLIENT_BUSY, th.SERVER_BUSY, th.TOO_MANY_FAILURES

KEY = "AAAAAAAAAAAA"


def test_throttle_window_slides():
    now = [1000.0]
    throttle = FailureThrottle(2, 10, clock=lambda: now[0])
    throttle.record("1.2.3.4", None)
    throttle.record("1.2.3.4", None)
    assert throttle.retry_after("1.2.3.4", None) == 10
    now[0] += 10.5
    assert throttle.retry_after("1.2.3.4", None) is None


def test_failures_at_a_key_id_count_per_ip_never_across_ips():
    now = [50.0]
    throttle = FailureThrottle(2, 30, clock=lambda: now[0], max_verifying_per_ip=10)
    throttle.record("10.0.0.1", KEY)
    now[0] += 5
    throttle.record("10.0.0.1", KEY)
    assert throttle.retry_after("10.0.0.1", KEY) == 25  # the oldest failure leaves the window first
    assert throttle.retry_after("10.0.0.2", KEY) is None  # a public key id is no lever on others
    assert isinstance(throttle.reserve("10.0.0.2", KEY), Attempt)


def test_attempts_in_flight_count_as_failures_until_they_succeed():
    throttle = FailureThrottle(3, 60, max_verifying=100, max_verifying_per_ip=100)
    held = [throttle.reserve("10.0.0.1", KEY) for _ in range(3)]
    assert all(isinstance(a, Attempt) for a in held)
    refused = throttle.reserve("10.0.0.1", KEY)
    assert refused == Refusal(TOO_MANY_FAILURES, 1)  # nothing failed yet: retry when they finish
    throttle.finish(held[0], failed=False)  # success gives the reservation back
    assert isinstance(throttle.reserve("10.0.0.1", KEY), Attempt)
    throttle.finish(held[1], failed=True)
    throttle.finish(held[1], failed=True)  # twice is once
    assert throttle.retry_after("10.0.0.1", KEY) == 60  # 1 failed + 2 in flight: window full
    assert throttle.reserve("10.0.0.1", KEY) == Refusal(TOO_MANY_FAILURES, 60)


def test_attempts_in_flight_are_bounded_globally_and_per_ip():
    throttle = FailureThrottle(100, 60, max_verifying=3, max_verifying_per_ip=2)
    a, b = throttle.reserve("10.0.0.1", KEY), throttle.reserve("10.0.0.1", None)
    assert throttle.reserve("10.0.0.1", None) == Refusal(CLIENT_BUSY, 1)
    c = throttle.reserve("10.0.0.2", None)
    assert throttle.reserve("10.0.0.3", None) == Refusal(SERVER_BUSY, 1)
    assert throttle.in_flight() == 3
    for attempt in (a, b, c):
        assert isinstance(attempt, Attempt)
        throttle.finish(attempt, failed=False)
    assert throttle.in_flight() == 0 and isinstance(throttle.reserve("10.0.0.3", None), Attempt)


def test_known_tokens_have_their_own_lane_and_ignore_strangers_failures():
    throttle = FailureThrottle(2, 60, max_verifying=2, max_verifying_per_ip=1)
    for _ in range(2):
        throttle.record("10.0.0.1", KEY)  # a stranger behind the holder's NAT
    strangers = [throttle.reserve(f"10.1.0.{i}", None) for i in range(2)]
    assert all(isinstance(a, Attempt) for a in strangers)  # the strangers' lane is full
    assert isinstance(throttle.reserve("10.0.0.1", KEY), Refusal)
    first = throttle.reserve("10.0.0.1", KEY, known=True)
    second = throttle.reserve("10.0.0.1", KEY, known=True)  # the per-IP bound is for guesses
    assert isinstance(first, Attempt) and isinstance(second, Attempt)
    assert throttle.reserve("10.0.0.1", KEY, known=True) == Refusal(SERVER_BUSY, 1)  # still bounded


class CountingTable(OrderedDict):
    """The throttle's table, counting every entry a scan of it visits."""

    visited = 0

    def _count(self) -> None:
        type(self).visited += len(self)

    def __iter__(self):
        self._count()
        return super().__iter__()

    def items(self):
        self._count()
        return super().items()

    def values(self):
        self._count()
        return super().values()

    def keys(self):
        self._count()
        return super().keys()


def test_a_full_table_evicts_in_constant_time_without_scanning():
    now = [0.0]
    throttle = FailureThrottle(1, 10, max_tracked=1000, clock=lambda: now[0])
    table = CountingTable()
    throttle._failures = table
    for i in range(1000):
        throttle.record(f"10.0.{i // 256}.{i % 256}", None)
    now[0] = 5.0
    CountingTable.visited = 0
    for i in range(200):  # 200 new clients at capacity
        throttle.record(f"10.9.{i // 256}.{i % 256}", None)
    assert CountingTable.visited == 0  # not one entry visited, let alone the whole table
    assert len(throttle._failures) == 1000  # memory stays bounded
    assert throttle.retry_after("10.9.0.199") == 10  # the newest stay...
    assert throttle.retry_after("10.0.0.0") is None  # ...the least recently seen went first


def test_the_tarpit_holds_only_clients_that_ignore_retry_after():
    now = [100.2]
    tarpit = th.Tarpit(after=3, delay=(0.5, 1.0), max_held=2, clock=lambda: now[0])
    assert [tarpit.delay_for("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]  # answered at once
    assert 0.5 <= tarpit.delay_for("10.0.0.1") <= 1.0  # the 4th refusal within a second is held
    assert tarpit.delay_for("10.0.0.2") == 0.0  # per client
    now[0] = 101.0  # a new second: honouring Retry-After (≥ 1 s) never reaches the tarpit
    assert tarpit.delay_for("10.0.0.1") == 0.0
    tarpit.held = 2  # at most max_held answers wait; beyond that they go at once
    assert [tarpit.delay_for("10.0.0.1") for _ in range(5)][-1] == 0.0
