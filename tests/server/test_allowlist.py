"""Per-key IP allowlists and the access log, in-process: the real envelope over both real
stores, behind uvicorn's ProxyHeadersMiddleware as `--trusted-proxy` builds it."""

from __future__ import annotations

import json

import anyio
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from finops_mcp_admin import lifecycle
from finops_mcp_admin.allowlist import allows, canonical_cidrs
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.errors import InvalidInput
from finops_mcp_admin.server.access import AccessLog, AccessMode, response_outcome
from finops_mcp_admin.server.scopes import ScopePolicy
from tests.server.asgi import CountingHasher, call, make_envelope


@pytest.fixture
def store(backend):
    with load_settings().open_store() as s:
        yield s


def issue(store, name, allow=(), scopes=("tools:read", "tools:write")):
    return lifecycle.create_key(store, CountingHasher(), name=name, actor="t", now=utcnow(),
                                scopes=scopes, allow_cidr=allow).token.reveal()


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def events(tmp_path):
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_allowlists_match_ipv4_ipv6_and_mapped_addresses_and_refuse_what_they_cannot_read():
    cidrs = canonical_cidrs(["10.1.0.0/16", "2001:db8::/32", "192.0.2.7"])
    assert cidrs == ("10.1.0.0/16", "2001:db8::/32", "192.0.2.7/32")
    assert allows(cidrs, "10.1.200.3") and allows(cidrs, "2001:db8::1") and allows(cidrs, "192.0.2.7")
    assert allows(cidrs, "::ffff:10.1.0.9")  # a dual-stack listener's view of an IPv4 client
    for outside in ("10.2.0.1", "2001:db9::1", "192.0.2.8", "unknown", "", "10.1.0.0/16"):
        assert not allows(cidrs, outside), outside
    assert allows((), "anything")  # no list: any address


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "10.0.0.0/33", "example.com", "", "::/129"])
def test_a_bad_cidr_is_refused_before_anything_is_stored(bad):
    with pytest.raises(InvalidInput):
        canonical_cidrs([bad])


def test_the_allowlist_is_checked_on_the_address_the_trusted_proxy_resolved(store, tmp_path):
    envelope, inner, _ = make_envelope(store, tmp_path)
    app = ProxyHeadersMiddleware(envelope, trusted_hosts=["10.0.0.0/24"])
    key = issue(store, "behind-alb", allow=["203.0.113.0/24"])

    def status(client, forwarded=None):
        headers = {**bearer(key), **({"X-Forwarded-For": forwarded} if forwarded else {})}
        return anyio.run(lambda: call(app, headers=headers, client=client))[0]

    assert status("10.0.0.5", "203.0.113.9") == 200  # the ALB says who the client is
    assert status("10.0.0.5", "198.51.100.1") == 403
    assert status("198.51.100.1", "203.0.113.9") == 403  # an untrusted peer's header is ignored
    assert status("203.0.113.9") == 200
    refused = [e for e in events(tmp_path) if e["event"] == "ip_refused"]
    assert [e["client_ip"] for e in refused] == ["198.51.100.1", "198.51.100.1"]
    assert len(inner.admitted) == 2


def test_access_log_writes_records_only_write_tool_calls(store, tmp_path):
    scopes = ScopePolicy({"write_tool": "tools:write"})
    envelope, _, _ = make_envelope(store, tmp_path, scopes=scopes)
    envelope.access = AccessLog(envelope.events, AccessMode.writes, scopes)
    key = issue(store, "writer")
    for name in ("read_tool", "write_tool"):
        body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                           "params": {"name": name, "arguments": {"x": "secret-argument"}}}).encode()
        assert anyio.run(lambda b=body: call(envelope, headers=bearer(key), body=b))[0] == 200
    anyio.run(lambda: call(envelope, headers=bearer(key)))  # a ping
    envelope.access.close()
    trail = [e for e in events(tmp_path) if e["event"] in ("tool_call", "method_call")]
    assert [(e["event"], e["tool"], e["scope"]) for e in trail] == [
        ("tool_call", "write_tool", "tools:write")]
    assert "secret-argument" not in (tmp_path / "events.jsonl").read_text()


def test_access_log_none_writes_nothing_and_all_writes_every_request(store, tmp_path):
    scopes = ScopePolicy({"write_tool": "tools:write"})
    key = issue(store, "counted")
    for mode, expected in ((AccessMode.none, []), (AccessMode.all, ["ping", "ping"])):
        envelope, _, _ = make_envelope(store, tmp_path / mode.value, scopes=scopes)
        envelope.access = AccessLog(envelope.events, mode, scopes)
        for _ in range(2):
            anyio.run(lambda e=envelope: call(e, headers=bearer(key)))
        envelope.access.close()
        trail = [e for e in events(tmp_path / mode.value) if e["event"] == "method_call"]
        assert [e["rpc_method"] for e in trail] == expected


def test_the_outcome_is_read_from_the_first_json_rpc_response():
    assert response_outcome(b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}') == "ok"
    assert response_outcome(b'{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}') == "error"
    assert response_outcome(b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}}') == "error"
    # tool output spelling the keys is inside a JSON string, so its quotes are escaped
    assert response_outcome(b'{"jsonrpc":"2.0","id":1,"result":{"text":"\\"error\\": 1"}}') == "ok"
    assert response_outcome(b"event: message\ndata: \n\n") is None


def test_an_allowlist_survives_the_store_and_rotation(store):
    issue(store, "kept", allow=["10.0.0.0/8", "fd00::/8"])
    _, new = lifecycle.rotate_key(store, CountingHasher(), "kept", grace=utcnow() - utcnow(),
                                  actor="t", now=utcnow())
    assert new.key.allow_cidr == ("10.0.0.0/8", "fd00::/8")
    assert lifecycle.resolve(store, "kept").key.allow_cidr == ("10.0.0.0/8", "fd00::/8")


def test_a_stalled_log_sink_does_not_hold_up_requests(store, tmp_path):
    """The access trail is written by its own thread: while the sink is stuck (a full stdout
    pipe), requests are still answered, and every record is written once it moves again."""
    import threading

    from finops_mcp_admin.security_events.writer import SecurityEventLog

    release = threading.Event()

    class StuckLog(SecurityEventLog):
        def write_lines(self, lines):
            if any('"method_call"' in line for line in lines):
                assert release.wait(30)
            super().write_lines(lines)

    scopes = ScopePolicy({"write_tool": "tools:write"})
    envelope, inner, _ = make_envelope(store, tmp_path, scopes=scopes)
    stuck = StuckLog(to_stdout=False, path=str(tmp_path / "events.jsonl"))
    envelope.access = AccessLog(stuck, AccessMode.all, scopes)
    key = issue(store, "stalled")
    for _ in range(5):
        assert anyio.run(lambda: call(envelope, headers=bearer(key)))[0] == 200
    assert len(inner.admitted) == 5 and events(tmp_path) == []  # answered, nothing written yet
    release.set()
    envelope.access.close()
    assert [e["event"] for e in events(tmp_path)] == ["method_call"] * 5
