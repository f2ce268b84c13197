"""The bridge signs in with OAuth (issue 13, point 3) end to end, in real processes: the official
MCP stdio client starts `mcpadmin bridge` with no MCP_API_KEY; the server answers 401 with its
resource metadata; the bridge registers at the real oidc-provider, the user signs in at the URL
the bridge printed, and the tool call goes through with the token. Tokens never leak."""

from __future__ import annotations

import json
import os
import stat

import anyio
import httpx2

from tests.bridge.harness import bridged_session
from tests.bridge.oauth_harness import user_signs_in
from tests.oauth_provider.harness import sign_in


def oauth_env(certs, tmp_path, **extra: str) -> dict[str, str]:
    return {"MCP_CA_BUNDLE": str(certs.ca_file), "MCP_TIMEOUT": "20", "MCP_SIGNIN_TIMEOUT": "60",
            "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home"), **extra}


def state_file(tmp_path) -> tuple[os.stat_result, dict]:
    files = list((tmp_path / "state" / "mcpadmin" / "oauth").glob("*.json"))
    assert len(files) == 1, files
    return files[0].stat(), json.loads(files[0].read_text())


def test_bridge_signs_in_with_dcr_and_pkce_and_calls_a_tool(auth_server, sdk_resource_server, certs,
                                                            tmp_path):
    err = tmp_path / "bridge.err"

    async def go():
        async with bridged_session(sdk_resource_server.url, oauth_env(certs, tmp_path), err, "--allow-http",
                                   initialize=False) as session:
            async with anyio.create_task_group() as tg:
                tg.start_soon(session.initialize)
                landing = await user_signs_in(err)
            result = await session.call_tool("whoami", {})
            assert not result.is_error, result
            return landing, json.loads(result.content[0].text)

    landing, me = anyio.run(go)
    assert landing.status_code == 200 and "Signed in" in landing.text
    assert me["sub"] == "alice" and me["scopes"] == ["tools:read"]
    assert auth_server.grants() == ["authorization_code"]
    assert [e for e in auth_server.events() if e.get("event") == "registration"]
    info, record = state_file(tmp_path)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state" / "mcpadmin" / "oauth").stat().st_mode) == 0o700
    assert record["issuer"] == auth_server.issuer and record["resource"] == sdk_resource_server.url
    stderr = err.read_text()
    for secret in (record["tokens"]["access_token"], record["tokens"]["refresh_token"]):
        assert secret not in stderr and secret.split(".")[-1] not in stderr


def test_the_url_goes_to_the_desktop_browser_when_there_is_one(auth_server, sdk_resource_server, certs,
                                                              tmp_path):
    # $BROWSER is what Python's webbrowser runs; this one records the URL and, like a chatty
    # browser launcher, writes to its stdout, which must not reach the bridge's JSON-RPC channel.
    record = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "browser says hello"\nprintf "%s\\n" "$1" > "{record}"\n')
    browser.chmod(0o700)
    err = tmp_path / "bridge.err"
    env = oauth_env(certs, tmp_path, BROWSER=str(browser), PATH=os.environ["PATH"])

    async def go():
        async with bridged_session(sdk_resource_server.url, env, err, "--allow-http", initialize=False) as s:
            async with anyio.create_task_group() as tg:
                tg.start_soon(s.initialize)
                while not record.exists():
                    await anyio.sleep(0.1)
                back = await anyio.to_thread.run_sync(sign_in, record.read_text().strip())
                async with httpx2.AsyncClient() as http:
                    await http.get(back)
            result = await s.call_tool("whoami", {})
            return json.loads(result.content[0].text)

    assert anyio.run(go)["sub"] == "alice"
    stderr = err.read_text()
    assert f"opened a browser to sign in at {auth_server.issuer}" in stderr
    assert "open this URL" not in stderr and record.read_text().strip() not in stderr


def test_a_configured_client_id_skips_dynamic_registration(auth_server, sdk_resource_server, certs,
                                                           tmp_path):
    err = tmp_path / "bridge.err"
    env = oauth_env(certs, tmp_path, MCP_OAUTH_CLIENT_ID="preregistered-client")

    async def go():
        async with bridged_session(sdk_resource_server.url, env, err, "--allow-http", initialize=False) as s:
            async with anyio.create_task_group() as tg:
                tg.start_soon(s.initialize)
                await user_signs_in(err)
            result = await s.call_tool("whoami", {})
            return json.loads(result.content[0].text)

    me = anyio.run(go)
    assert me["sub"] == "alice" and me["client_id"] == "preregistered-client"
    assert [e for e in auth_server.events() if e.get("event") == "registration"] == []


def test_without_a_key_an_api_key_server_gets_the_advice_to_set_mcp_api_key(tls_server, certs, tmp_path):
    from tests.bridge.test_bridge import call_error

    async def go():
        async with bridged_session(tls_server.url, oauth_env(certs, tmp_path), tmp_path / "err") as s:
            await s.list_tools()

    _, message = call_error(go)
    assert "names no authorization server" in message and "set MCP_API_KEY" in message
    assert "Traceback" not in (tmp_path / "err").read_text()


def test_config_snippet_for_oauth_carries_no_key(tmp_path):
    import subprocess
    import sys

    from tests.bridge.harness import ROOT

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "finops_mcp_admin", "bridge", "config", *args], cwd=ROOT,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)

    r = cli("--url", "https://mcp.example.com/mcp", "--oauth")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mcpServers"]["finops"]["env"] == {"MCP_SERVER_URL": "https://mcp.example.com/mcp"}
    both = cli("--url", "https://mcp.example.com/mcp", "--oauth", "--key-from-stdin")
    assert both.returncode == 2 and both.stderr.count("\n") == 1 and "exclude" in both.stderr


def test_a_server_that_echoes_the_access_token_never_gets_it_to_the_desktop_client(
        auth_server, sdk_resource_server, certs, tmp_path):
    err = tmp_path / "bridge.err"

    async def go():
        async with bridged_session(sdk_resource_server.url, oauth_env(certs, tmp_path), err, "--allow-http",
                                   initialize=False) as s:
            async with anyio.create_task_group() as tg:
                tg.start_soon(s.initialize)
                await user_signs_in(err)
            return (await s.call_tool("echo_token", {})).content[0].text

    text = anyio.run(go)
    _, record = state_file(tmp_path)
    assert text == "your token is ***" and record["tokens"]["access_token"] not in err.read_text()


def test_when_the_server_moves_to_another_issuer_the_old_tokens_are_dropped_and_the_user_signs_in_there(
        auth_server, oidc_provider_dir, certs, tmp_path):
    from tests.oauth_provider.harness import AuthorizationServer, ResourceServer

    other = AuthorizationServer(oidc_provider_dir).start(tmp_path)
    first = ResourceServer(auth_server.issuer, certs.cert_file, certs.key_file).start(tmp_path)
    moved = ResourceServer(other.issuer, certs.cert_file, certs.key_file, port=first.port)
    err = tmp_path / "bridge.err"

    async def go():
        async with bridged_session(first.url, oauth_env(certs, tmp_path), err, "--allow-http",
                                   initialize=False) as s:
            async with anyio.create_task_group() as tg:
                tg.start_soon(s.initialize)
                await user_signs_in(err, login="alice")
            _, before = state_file(tmp_path)
            first.stop()
            moved.start(tmp_path)
            async with anyio.create_task_group() as tg:
                async def call():
                    nonlocal me
                    me = json.loads((await s.call_tool("whoami", {})).content[0].text)

                me = None
                tg.start_soon(call)
                await user_signs_in(err, login="bob", seen=1)
            return before, me

    try:
        before, me = anyio.run(go)
    finally:
        moved.stop()
        first.stop()
        other.stop()
    _, after = state_file(tmp_path)
    assert me is not None and me["sub"] == "bob"
    assert after["issuer"] == other.issuer and after["client"]["client_id"] != before["client"]["client_id"]
    assert before["tokens"]["access_token"] not in json.dumps(after)
    assert after["client"]["redirect_uris"] == ["http://127.0.0.1/callback"]  # not a past sign-in's port
    assert f"now names the authorization server {other.issuer}" in err.read_text()
    assert other.grants() == ["authorization_code"]
