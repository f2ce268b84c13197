"""Issue 13, point 4: against a real authorization server (oidc-provider) and `mcpadmin serve
--auth oauth`, both the official MCP Python SDK client's OAuth flow and the bridge sign in end to
end and call a tool; the bridge's tokens outlive it, and an expired one is refreshed, not
re-authorized."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest

from tests.bridge.harness import bridged_session
from tests.bridge.oauth_harness import URL_LINE, user_signs_in
from tests.oauth_provider.harness import AuthorizationServer, sign_in
from tests.redis_server import free_port
from tests.server.harness import Certs, ServerProcess


@pytest.fixture
def oauth_serve(auth_server: AuthorizationServer, certs: Certs, sqlite_env,
                tmp_path) -> Iterator[ServerProcess]:
    """`mcpadmin serve --auth oauth` trusting the oidc-provider's tokens for its canonical URL."""
    port = free_port()
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--auth", "oauth", "--oauth-issuer", auth_server.issuer,
                            "--public-url", f"https://localhost:{port}/mcp"],
                           sqlite_env, tmp_path / "events.jsonl", port=port).start()
    yield server
    server.stop()


def bridge_env(certs: Certs, tmp_path) -> dict[str, str]:
    return {"MCP_CA_BUNDLE": str(certs.ca_file), "MCP_TIMEOUT": "20", "MCP_SIGNIN_TIMEOUT": "60",
            "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}


async def whoami(session) -> dict:
    result = await session.call_tool("whoami", {})
    assert not result.is_error, result
    return json.loads(result.content[0].text)


def test_the_official_sdk_client_signs_in_and_calls_a_tool(auth_server, oauth_serve, certs):
    from mcp import ClientSession
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

    class Memory:
        tokens = client = None

        async def get_tokens(self):
            return self.tokens

        async def set_tokens(self, tokens):
            self.tokens = tokens

        async def get_client_info(self):
            return self.client

        async def set_client_info(self, info):
            self.client = info

    opened: list[str] = []

    async def redirect(url: str) -> None:
        opened.append(url)

    async def callback() -> AuthorizationCodeResult:
        back = await anyio.to_thread.run_sync(sign_in, opened[-1])
        query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
        return AuthorizationCodeResult(code=query["code"], state=query["state"], iss=query.get("iss"))

    provider = OAuthClientProvider(
        oauth_serve.url, OAuthClientMetadata(client_name="sdk-test", redirect_uris=["http://127.0.0.1/callback"],
                                             grant_types=["authorization_code", "refresh_token"]),
        Memory(), redirect_handler=redirect, callback_handler=callback)

    async def go():
        async with (httpx2.AsyncClient(auth=provider, verify=certs.client_context(), timeout=30) as http,
                    streamable_http_client(oauth_serve.url, http_client=http) as (read, write),
                    ClientSession(read, write) as session):
            await session.initialize()
            return await whoami(session)

    me = anyio.run(go)
    assert me["sub"] == "alice" and "tools:read" in me["scopes"]
    assert f"resource={httpx2.URL(oauth_serve.url)}".replace(":", "%3A").replace("/", "%2F") in opened[0]
    assert auth_server.grants() == ["authorization_code"]


@pytest.mark.parametrize("access_token_ttl", [4])
def test_the_bridge_signs_in_calls_a_tool_and_after_a_restart_refreshes_instead_of_asking_again(
        auth_server, oauth_serve, certs, tmp_path):
    err = tmp_path / "bridge.err"

    async def first():
        async with bridged_session(oauth_serve.url, bridge_env(certs, tmp_path), err, "--allow-http",
                                   initialize=False) as session:
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.initialize)
                await user_signs_in(err)
            return await whoami(session)

    async def after_restart():
        async with bridged_session(oauth_serve.url, bridge_env(certs, tmp_path), err,
                                   "--allow-http") as session:
            return await whoami(session)

    me = anyio.run(first)
    assert me["sub"] == "alice" and me["client_id"]
    time.sleep(5)  # the 4 s access token has expired
    again = anyio.run(after_restart)
    assert again["sub"] == "alice"
    assert auth_server.grants() == ["authorization_code", "refresh_token"]
    assert len(URL_LINE.findall(err.read_text())) == 1  # signed in once
    (state,) = (tmp_path / "state" / "mcpadmin" / "oauth").glob("*.json")
    tokens = json.loads(state.read_text())["tokens"]
    seen = err.read_text() + oauth_serve.all_output()
    for secret in (tokens["access_token"], tokens["refresh_token"]):
        assert secret not in seen and secret.split(".")[-1] not in seen


def test_the_bridge_steps_up_when_a_tool_needs_a_scope_it_was_not_granted(auth_server, oauth_serve, certs,
                                                                         tmp_path):
    err = tmp_path / "bridge.err"

    async def go():
        async with bridged_session(oauth_serve.url, bridge_env(certs, tmp_path), err, "--allow-http",
                                   initialize=False) as session:
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.initialize)
                await user_signs_in(err)
            before = await whoami(session)
            policy = json.loads((await session.call_tool("get_tagging_policy", {})).content[0].text)
            async with anyio.create_task_group() as tg:
                async def update():
                    nonlocal updated
                    updated = await session.call_tool("update_tagging_policy", {"new_policy": policy})

                updated = None
                tg.start_soon(update)
                await user_signs_in(err, seen=1)  # the second sign-in asks for tools:write
            return before, updated, await whoami(session)

    before, updated, after = anyio.run(go)
    assert "tools:write" not in before["scopes"]
    assert updated is not None and not updated.is_error, updated
    assert {"tools:read", "tools:write"} <= set(after["scopes"])
    assert auth_server.grants() == ["authorization_code", "authorization_code"]


def test_a_server_that_refuses_the_fresh_token_ends_in_one_clear_error_not_a_sign_in_loop(
        auth_server, certs, sqlite_env, tmp_path):
    # A misconfigured server: its metadata names this resource, but it checks another audience.
    port = free_port()
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--auth", "oauth", "--oauth-issuer", auth_server.issuer,
                            "--public-url", f"https://localhost:{port}/mcp",
                            "--oauth-audience", "https://elsewhere.example.com/mcp"],
                           sqlite_env, tmp_path / "events.jsonl", port=port).start()
    err = tmp_path / "bridge.err"
    errors: list[str] = []

    async def go():
        from mcp.shared.exceptions import MCPError

        async with bridged_session(server.url, bridge_env(certs, tmp_path), err, "--allow-http",
                                   initialize=False) as session:
            async def initialize():
                try:
                    await session.initialize()
                except MCPError as exc:
                    errors.append(exc.error.message)

            async with anyio.create_task_group() as tg:
                tg.start_soon(initialize)
                await user_signs_in(err)

    try:
        anyio.run(go)
    finally:
        server.stop()
    assert len(errors) == 1 and "rejected the OAuth access token even after a fresh sign-in" in errors[0]
    assert "MCP_API_KEY" not in errors[0]
    assert len(URL_LINE.findall(err.read_text())) == 1
