"""End to end: the official MCP client over HTTPS (trustme CA) against `mcpadmin serve` in a
subprocess. Exact RFC 6750 statuses and challenges for every kind of bad key."""

from __future__ import annotations

import json
import time

import anyio
import pytest

from tests.server.conftest import cli_in, events_since, new_key
from tests.server.harness import http_client, mcp_session

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def _post(server, certs, key, body=INIT, headers=None):
    async with http_client(certs, key, headers={**HEADERS, **(headers or {})}) as http:
        return await http.post(server.url, content=json.dumps(body))


def post(server, certs, key, body=INIT, headers=None):
    return anyio.run(_post, server, certs, key, body, headers)


def metadata_url(server):
    """RFC 9728 §3.1: the well-known URL of the resource `{base}/mcp`, path suffixed."""
    return f"{server.base}/.well-known/oauth-protected-resource/mcp"


def test_valid_key_lists_and_calls_tools(tls_server, certs, sqlite_env):
    key = new_key(sqlite_env, "e2e-reader", "--scope", "tools:read")

    async def session():
        async with mcp_session(tls_server.url, certs, key) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            me = (await s.call_tool("whoami", {})).structured_content
            check = (await s.call_tool("validate_resource_tags", {
                "resource_type": "ec2:instance",
                "tags": {"CostCenter": "1234", "Owner": "a@example.com",
                         "Environment": "production", "Application": "billing"}})).structured_content
            policy = (await s.call_tool("get_tagging_policy", {})).structured_content
            return names, me, check, policy

    names, me, check, policy = anyio.run(session)
    assert names == {"whoami", "get_tagging_policy", "validate_resource_tags", "update_tagging_policy"}
    assert me["key_id"] == key[5:17] and me["name"] == "e2e-reader" and me["scopes"] == ["tools:read"]
    assert check["compliant"] is True
    assert {t["key"] for t in policy["required_tags"]} >= {"CostCenter", "Owner"}


def test_missing_credentials_get_a_bare_challenge(tls_server, certs):
    before = len(tls_server.events())
    r = post(tls_server, certs, None)
    assert r.status_code == 401
    # RFC 6750 §3.1: no error code; MCP 2025-11-25: where the RFC 9728 metadata is.
    bare = f'Bearer realm="mcp", resource_metadata="{metadata_url(tls_server)}"'
    assert r.headers["www-authenticate"] == bare
    other_scheme = post(tls_server, certs, None, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert other_scheme.status_code == 401
    assert other_scheme.headers["www-authenticate"] == bare
    (event, _) = events_since(tls_server, before)
    assert event["event"] == "auth_failure" and event["reason"] == "missing_credentials"
    assert event["client_ip"] == "127.0.0.1" and event["path"] == "/mcp"


INVALID = 'Bearer realm="mcp", error="invalid_token", error_description="The access token is invalid"'


def test_wrong_revoked_expired_and_malformed_keys_get_invalid_token(tls_server, certs, sqlite_env):
    from finops_mcp_admin.keys import generate_token

    good = new_key(sqlite_env, "e2e-victim", "--scope", "tools:read")
    assert post(tls_server, certs, good).status_code == 200
    _, forged = generate_token(good[5:17])
    revoked = new_key(sqlite_env, "e2e-revoked", "--scope", "tools:read")
    assert post(tls_server, certs, revoked).status_code == 200  # cached as valid first
    assert cli_in(sqlite_env, "keys", "revoke", "e2e-revoked").returncode == 0
    expiring = new_key(sqlite_env, "e2e-expiring", "--scope", "tools:read", "--expires", "2s")
    assert post(tls_server, certs, expiring).status_code == 200
    time.sleep(2.2)
    time.sleep(0.3)  # the watcher's poll interval is 0.1 s
    cases = {"wrong": forged.reveal(), "revoked": revoked, "expired": expiring,
             "malformed": good[:-1] + ("x" if good[-1] != "x" else "y"), "legacy-unknown": "x" * 40,
             "short": "abc"}
    before = len(tls_server.events())
    for label, key in cases.items():
        r = post(tls_server, certs, key)
        assert r.status_code == 401, label
        assert r.headers["www-authenticate"] == (
            f'{INVALID}, resource_metadata="{metadata_url(tls_server)}"'), label
    reasons = [e["reason"] for e in events_since(tls_server, before)]
    assert reasons == ["wrong_secret", "revoked", "expired", "malformed_token", "unknown_key",
                       "malformed_token"]


def test_read_only_key_calling_a_write_tool_gets_insufficient_scope(tls_server, certs, sqlite_env):
    reader = new_key(sqlite_env, "e2e-ro", "--scope", "tools:read")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "update_tagging_policy", "arguments": {"new_policy": {"required_tags": []}}}}
    r = post(tls_server, certs, reader, call)
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == (
        'Bearer realm="mcp", error="insufficient_scope", scope="tools:write", '
        f'resource_metadata="{metadata_url(tls_server)}"')
    assert tls_server.events()[-1]["event"] == "insufficient_scope"

    writer = new_key(sqlite_env, "e2e-rw", "--scope", "tools:read", "--scope", "tools:write")

    async def write():
        async with mcp_session(tls_server.url, certs, writer) as s:
            policy = (await s.call_tool("get_tagging_policy", {})).structured_content
            result = await s.call_tool("update_tagging_policy", {"new_policy": policy})
            return result.structured_content

    assert anyio.run(write) == {"updated": True, "required_tags": ["CostCenter", "Owner",
                                                                   "Environment", "Application"]}


def test_official_client_sees_the_401_challenge(tls_server, certs):
    from mcp.shared.exceptions import MCPError

    from finops_mcp_admin.keys import generate_token

    statuses: list = []

    async def attempt():
        # The SDK surfaces the 401 as an MCPError inside its task groups.
        with pytest.RaisesGroup(MCPError, flatten_subgroups=True):
            async with mcp_session(tls_server.url, certs, generate_token()[1].reveal(), statuses):
                pass

    anyio.run(attempt)
    assert (401, f'{INVALID}, resource_metadata="{metadata_url(tls_server)}"') in statuses


def test_sessions_are_bound_to_the_key_that_opened_them(tls_server, certs, sqlite_env):
    a = new_key(sqlite_env, "e2e-sess-a", "--scope", "tools:read")
    b = new_key(sqlite_env, "e2e-sess-b", "--scope", "tools:read")
    opened = post(tls_server, certs, a)
    session_id = opened.headers["mcp-session-id"]
    ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
    hijack = post(tls_server, certs, b, ping, {"mcp-session-id": session_id,
                                               "mcp-protocol-version": "2025-11-25"})
    assert hijack.status_code == 404


def test_health_needs_no_key_and_reveals_nothing(tls_server, certs):
    async def get():
        async with http_client(certs) as http:
            return await http.get(tls_server.base + "/health")

    r = anyio.run(get)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_canary_key_never_appears_in_logs_or_responses(tls_server, certs, sqlite_env):
    canary = new_key(sqlite_env, "e2e-canary", "--scope", "tools:read")
    bodies = [post(tls_server, certs, canary).text]
    bodies.append(post(tls_server, certs, canary, {
        "jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "update_tagging_policy", "arguments": {"new_policy": {}}}}).text)
    bodies.append(post(tls_server, certs, canary[:-2] + "zz").text)
    bodies.append(post(tls_server, certs, canary, headers={"Origin": "https://evil.example"}).text)
    cli_in(sqlite_env, "keys", "revoke", "e2e-canary")
    time.sleep(0.5)
    bodies.append(post(tls_server, certs, canary).text)
    secret = canary[18:]
    for text in [*bodies, tls_server.all_output()]:
        assert canary not in text and secret not in text
    assert any(e.get("key_id") == canary[5:17] for e in tls_server.events())  # the id is logged
