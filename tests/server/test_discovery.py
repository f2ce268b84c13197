"""OAuth discovery as real clients probe it (issue 11, point 6): RFC 9728 Protected Resource
Metadata, 404 for the rest, `resource_metadata` in challenges, and none of it an auth failure."""

from __future__ import annotations

import json

import anyio
import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.server.throttle import FailureThrottle
from finops_mcp_admin.store.sqlite import SqliteStore
from tests.server.asgi import CountingHasher, call, make_envelope
from tests.server.conftest import cli_in
from tests.server.harness import http_client

#: What mcp-remote 0.1.x probed before connecting: six auth failures per start until now.
PROBES = ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
          "/.well-known/oauth-authorization-server/mcp", "/.well-known/oauth-authorization-server",
          "/.well-known/openid-configuration/mcp", "/mcp/.well-known/openid-configuration",
          "/.well-known/openid-configuration", "/register"]
HOST = {"Host": "mcp.example.com:8443"}


@pytest.fixture
def envelope(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path / 'keys.db'}")
    key = lifecycle.create_key(store, CountingHasher(), name="disc", actor="t", now=utcnow(),
                               scopes=["tools:read"]).token.reveal()
    # Two failures and this client is throttled: discovery must not count.
    app, inner, _ = make_envelope(store, tmp_path, throttle=FailureThrottle(2, 60))
    yield app, inner, key, tmp_path / "events.jsonl"
    store.close()


def get(app, path, headers=None, method="GET"):
    return anyio.run(lambda: call(app, method=method, path=path, headers=headers, body=b""))


def test_protected_resource_metadata_at_both_well_known_urls(envelope):
    app, inner, _, _ = envelope
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        status, headers, body = get(app, path, HOST)
        assert status == 200 and headers["content-type"] == "application/json"
        doc = json.loads(body)
        # API-key mode names no authorization server (RFC 9728 §2: optional).
        assert set(doc) == {"resource", "bearer_methods_supported", "scopes_supported"}
        assert doc["resource"] == "https://mcp.example.com:8443/mcp"
        assert doc["bearer_methods_supported"] == ["header"]
        assert {"tools:read", "tools:write", "resources:read", "prompts:read"} <= set(doc["scopes_supported"])
    assert get(app, "/.well-known/oauth-protected-resource", HOST, "POST")[0] == 405
    assert inner.admitted == []


def test_other_discovery_paths_are_404_json_and_nothing_counts_as_a_failure(envelope):
    app, inner, key, events = envelope
    for _ in range(10):  # ten client starts
        for path in PROBES[2:]:
            status, _, body = get(app, path, HOST)
            assert status == 404 and json.loads(body) == {"error": "not_found"}, path
        assert get(app, "/register", HOST, "POST")[0] == 404
    assert inner.admitted == [] and (not events.exists() or events.read_text() == "")
    # Not throttled: the next real request goes through at once.
    assert anyio.run(lambda: call(app, headers={"Authorization": f"Bearer {key}"}))[0] == 200


def test_challenges_name_the_metadata_url(envelope):
    app, _, _, _ = envelope
    status, headers, _ = anyio.run(lambda: call(app, headers=HOST))
    assert status == 401 and headers["www-authenticate"] == (
        'Bearer realm="mcp", resource_metadata='
        '"https://mcp.example.com:8443/.well-known/oauth-protected-resource/mcp"')
    # A Host that could break out of the quoted parameter is never echoed.
    status, headers, _ = anyio.run(lambda: call(app, headers={"Host": 'evil", error="x'}))
    assert status == 401 and "evil" not in headers["www-authenticate"]


def test_resource_url_option_fixes_the_resource(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        app, _, _ = make_envelope(store, tmp_path, resource_url="https://finops.example.com/public/mcp")
        status, _, body = get(app, "/.well-known/oauth-protected-resource/public/mcp", HOST)
        assert status == 200 and json.loads(body)["resource"] == "https://finops.example.com/public/mcp"
        _, headers, _ = anyio.run(lambda: call(app, headers=HOST))
        assert ('resource_metadata="https://finops.example.com/.well-known/oauth-protected-resource/public/mcp"'
                in headers["www-authenticate"])
    finally:
        store.close()


def test_bad_resource_url_is_refused_at_start(sqlite_env, certs):
    for bad in ("ftp://x/mcp", "https://x/mcp?a=1", 'https://x/m"cp', "mcp.example.com"):
        r = cli_in(sqlite_env, "serve", "--resource-url", bad, "--tls-cert", str(certs.cert_file),
                   "--tls-key", str(certs.key_file), "--port", "1")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--resource-url" in r.stderr, r.stderr


def test_real_server_answers_every_probe_without_an_event(tls_server, certs):
    before = len(tls_server.events())

    async def probe():
        async with http_client(certs) as http:
            return [(p, (await http.get(tls_server.base + p))) for p in PROBES]

    for path, r in anyio.run(probe):
        if "oauth-protected-resource" in path:
            assert r.status_code == 200 and r.json()["resource"] == tls_server.url, path
        else:
            assert r.status_code == 404 and r.json() == {"error": "not_found"}, path
    assert tls_server.events()[before:] == []
