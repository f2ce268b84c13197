"""The failure throttle on its own: sliding windows per client IP and per key id."""

from __future__ import annotations

from finops_mcp_admin.server.throttle import FailureThrottle


def test_throttle_window_slides():
    now = [1000.0]
    throttle = FailureThrottle(2, 10, clock=lambda: now[0])
    throttle.record("1.2.3.4", None)
    throttle.record("1.2.3.4", None)
    assert throttle.retry_after("1.2.3.4", None) == 10
    now[0] += 10.5
    assert throttle.retry_after("1.2.3.4", None) is None


def test_failures_against_one_key_id_count_across_ips_and_only_against_that_id():
    now = [50.0]
    throttle = FailureThrottle(2, 30, clock=lambda: now[0])
    throttle.record("10.0.0.1", "AAAAAAAAAAAA")
    now[0] += 5
    throttle.record("10.0.0.2", "AAAAAAAAAAAA")
    assert throttle.key_wait("AAAAAAAAAAAA") == 25  # the oldest failure leaves the window first
    assert throttle.key_wait("BBBBBBBBBBBB") is None and throttle.key_wait(None) is None
    assert throttle.ip_wait("10.0.0.1") is None and throttle.ip_wait("10.0.0.2") is None
    assert throttle.retry_after("10.0.0.3", "AAAAAAAAAAAA") == 25


def test_a_full_table_forgets_only_stale_entries():
    now = [0.0]
    throttle = FailureThrottle(1, 10, max_tracked=2, clock=lambda: now[0])
    throttle.record("10.0.0.1", None)
    now[0] = 20.0  # the first failure has left its window
    throttle.record("10.0.0.2", None)
    throttle.record("10.0.0.3", None)  # table full: stale entries go, live ones stay
    assert throttle.ip_wait("10.0.0.2") == 10 and throttle.ip_wait("10.0.0.3") == 10
