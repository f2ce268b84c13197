"""rediss:// to a Redis that speaks plaintext: one line naming the mismatch, exit 5 (it was a
5.3 s "Timeout connecting to server")."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("extra", [[], ["--redis-server-name", "cache.example.com"]])
def test_rediss_to_a_plaintext_redis_says_so_and_exits_5(cli, redis_server, extra):
    r = cli("keys", "list", "--store", f"rediss://127.0.0.1:{redis_server.port}/0", *extra)
    assert r.code == 5, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "answers in plaintext, not TLS" in r.stderr and "redis://" in r.stderr
    assert "timeout" not in r.stderr.lower()
    assert r.stdout == ""


def test_the_plaintext_probe_does_not_mistake_a_silent_peer_for_redis(cli):
    """A port that accepts and never answers is unreachable, not "plaintext Redis"."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        r = cli("keys", "list", "--store", f"rediss://127.0.0.1:{silent.getsockname()[1]}/0")
    assert r.code == 5 and r.stderr.count("\n") == 1
    assert "plaintext" not in r.stderr and "cannot reach Redis" in r.stderr
