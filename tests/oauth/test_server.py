"""`mcpadmin serve --auth oauth|both` as a real HTTPS subprocess, against the in-suite issuer,
through the official MCP client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import httpx2
import pytest

from tests.conftest import FAST_ARGON2
from tests.oauth.issuer import Issuer
from tests.redis_server import free_port
from tests.server.harness import Certs, ServerProcess, base_env, mcp_session


@pytest.fixture(scope="module")
def module_issuer(certs: Certs) -> Iterator[Issuer]:
    server = Issuer(certs).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory, certs: Certs) -> dict[str, str]:
    d = tmp_path_factory.mktemp("store")
    # SSL_CERT_FILE: the server trusts the test CA for the issuer's HTTPS (as it would a real CA).
    return base_env({"MCPADMIN_STORE": f"sqlite:///{d / 'keys.db'}", "MCPADMIN_ACTOR": "tester",
                     "XDG_CONFIG_HOME": str(d), "SSL_CERT_FILE": str(certs.ca_file), **FAST_ARGON2})


def start(certs: Certs, env: dict[str, str], log, *args: str, mode: str = "oauth",
          issuer: Issuer | None = None) -> ServerProcess:
    port = free_port()
    extra = ["--oauth-issuer", issuer.url] if issuer else []
    return ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                          "--auth", mode, *extra, "--public-url", f"https://localhost:{port}/mcp",
                          "--oauth-jwks-min-refetch", "0.2", *args], env, log, port=port).start()


@pytest.fixture(scope="module")
def server(certs, env, module_issuer, tmp_path_factory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("logs") / "events.jsonl"
    proc = start(certs, env, log, issuer=module_issuer)
    yield proc
    proc.stop()


def request(server: ServerProcess, certs: Certs, path: str, token: str | None = None,
            method: str = "GET", body: dict | None = None) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers |= {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    with httpx2.Client(verify=certs.client_context(), timeout=20) as http:
        return http.request(method, server.base + path, headers=headers,
                            content=json.dumps(body) if body is not None else None)


def test_protected_resource_metadata_names_the_issuer_at_both_paths(server, certs, module_issuer):
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        doc = request(server, certs, path).json()
        assert doc["resource"] == server.url
        assert doc["authorization_servers"] == [module_issuer.url]
        assert "tools:write" in doc["scopes_supported"] and doc["bearer_methods_supported"] == ["header"]


def test_no_token_gets_a_challenge_with_metadata_and_scope(server, certs):
    r = request(server, certs, "/mcp", method="POST", body={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert 'scope="tools:read"' in challenge and "error=" not in challenge
    assert f'resource_metadata="{server.base}/.well-known/oauth-protected-resource/mcp"' in challenge


def test_token_for_another_audience_is_401_invalid_token(server, certs, module_issuer):
    token = module_issuer.mint("https://other.example.com/mcp")
    r = request(server, certs, "/mcp", token, "POST", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert server.events()[-1]["reason"] == "wrong_audience"


def test_official_client_lists_and_calls_tools_with_a_token(server, certs, module_issuer):
    token = module_issuer.mint(server.url, scope="tools:read tools:write", sub="carol",
                               client_id="claude-desktop")

    async def run():
        async with mcp_session(server.url, certs, token) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            me = await session.call_tool("whoami", {})
            return names, me.structured_content

    names, me = anyio.run(run)
    assert {"whoami", "update_tagging_policy"} <= names
    assert (me["key_id"], me["sub"], me["client_id"]) == (
        "oauth:claude-desktop/carol", "carol", "claude-desktop")
    assert me["scopes"] == ["tools:read", "tools:write"]
    opened = [e for e in server.events() if e["event"] == "session_opened"]
    assert opened and opened[-1]["key_id"] == "oauth:claude-desktop/carol"


def test_missing_write_scope_is_403_insufficient_scope_step_up(server, certs, module_issuer):
    token = module_issuer.mint(server.url, scope="tools:read", client_id="reader-app")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "update_tagging_policy", "arguments": {"new_policy": {}}}}
    r = request(server, certs, "/mcp", token, "POST", call)
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="tools:write"' in challenge
    assert "resource_metadata=" in challenge
    event = server.events()[-1]
    assert (event["event"], event["key_id"], event["client_id"]) == (
        "insufficient_scope", "oauth:reader-app/alice", "reader-app")


def test_tokens_never_appear_in_events_or_server_output(server, certs, module_issuer):
    good = module_issuer.mint(server.url, jti="canary-good-0001")
    bad = module_issuer.mint("https://elsewhere.example/mcp", jti="canary-bad-0002")
    opaque = "canary-opaque-token-0003"
    for token in (good, bad, opaque):
        request(server, certs, "/mcp", token, "POST", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    output = server.all_output()
    for token in (good, bad, opaque):
        assert token not in output
        for part in token.split("."):  # not even the signature or the payload
            assert len(part) < 16 or part not in output


def test_wrapped_app_never_sees_the_token(certs, env, module_issuer, tmp_path):
    proc = start(certs, env, tmp_path / "e.jsonl", "--app", "tests.oauth.echo_app:app",
                 issuer=module_issuer)
    try:
        token = module_issuer.mint(proc.url, sub="dave")
        r = request(proc, certs, "/mcp", token)
        assert r.status_code == 200, r.text
        seen = r.json()
        assert "authorization" not in seen["headers"] and seen["user"] == ["desktop-app", "dave"]
    finally:
        proc.stop()


def test_both_mode_takes_api_keys_and_tokens(certs, env, module_issuer, tmp_path):
    from tests.server.conftest import new_key

    key = new_key(env, "both-mode-key")
    proc = start(certs, env, tmp_path / "e.jsonl", mode="both", issuer=module_issuer)
    try:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}
        token = module_issuer.mint(proc.url)
        assert request(proc, certs, "/mcp", key, "POST", ping).status_code == 200
        assert request(proc, certs, "/mcp", token, "POST", ping).status_code == 200
        assert request(proc, certs, "/mcp", key[:-2] + "xx", "POST", ping).status_code == 401
        reasons = [e["reason"] for e in proc.events() if e["event"] == "auth_failure"]
        assert reasons[-1] in ("wrong_secret", "malformed_token")  # the API-key path judged it
    finally:
        proc.stop()


def test_unreachable_issuer_is_503_retry_after_never_admitted(certs, env, tmp_path):
    issuer = Issuer(certs).start()
    issuer.down = True
    proc = start(certs, env, tmp_path / "e.jsonl", issuer=issuer)
    try:
        token = issuer.mint(proc.url)
        r = request(proc, certs, "/mcp", token, "POST", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert proc.events()[-1]["event"] == "auth_server_unavailable"
        assert "Traceback" not in proc.all_output()
    finally:
        proc.stop()
        issuer.stop()


def test_a_session_is_bound_to_its_user_and_client(server, certs, module_issuer):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    owner = module_issuer.mint(server.url, sub="erin", client_id="app-a")
    r = request(server, certs, "/mcp", owner, "POST", init)
    session = r.headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

    def use(token: str) -> int:
        headers = {"authorization": f"Bearer {token}", "mcp-session-id": session,
                   "mcp-protocol-version": "2025-11-25", "content-type": "application/json",
                   "accept": "application/json, text/event-stream"}
        with httpx2.Client(verify=certs.client_context(), timeout=20) as http:
            return http.post(server.url, headers=headers, content=json.dumps(listing)).status_code

    assert use(module_issuer.mint(server.url, sub="erin", client_id="app-b")) == 404  # other client
    assert use(module_issuer.mint(server.url, sub="frank", client_id="app-a")) == 404  # other user
    assert use(module_issuer.mint(server.url, sub="erin", client_id="app-a", jti="refreshed")) == 200
