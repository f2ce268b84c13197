"""Hostile sign-ins (issue 13, point 3; the mcp-remote CVE-2025-6514 class): the bridge opens no
browser and runs nothing when the server or its authorization server is hostile, refuses a
redirect with the wrong state without exchanging its code, and tells the desktop client why in one
JSON-RPC error. The "browser" is a recording script named by $BROWSER (Python's webbrowser honours
it); a canary file shows that no command ran."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.bridge.harness import bridged_session
from tests.bridge.hostile_oauth import HostileServer
from tests.bridge.oauth_harness import printed_url, user_signs_in
from tests.bridge.test_bridge import call_error
from tests.oauth_provider.harness import sign_in


def recording_browser(tmp_path: Path) -> tuple[Path, Path]:
    """A $BROWSER that only writes down the URL it was asked to open."""
    script, record = tmp_path / "browser.sh", tmp_path / "opened.txt"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{record}"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


def hostile_env(tmp_path: Path, browser: Path) -> dict[str, str]:
    return {"MCP_TIMEOUT": "10", "MCP_SIGNIN_TIMEOUT": "3", "XDG_STATE_HOME": str(tmp_path / "state"),
            "HOME": str(tmp_path / "home"), "BROWSER": str(browser), "PATH": os.environ["PATH"]}


def initialize_error(url: str, env: dict[str, str], err: Path) -> tuple[int, str]:
    async def go():
        async with bridged_session(url, env, err, "--allow-http") as s:
            await s.list_tools()

    return call_error(go)


CANARY = "/tmp/mcpadmin-bridge-pwned"


@pytest.mark.parametrize("endpoint", [
    "{base}/authorize$(touch${{IFS}}" + CANARY + ")",
    "{base}/authorize;touch " + CANARY,
    "{base}/authorize|touch " + CANARY,
    "https://evil.example.com/authorize",
    "javascript:alert(1)",
    "file:///etc/passwd",
])
def test_a_hostile_authorization_endpoint_is_never_opened(endpoint, tmp_path):
    browser, opened = recording_browser(tmp_path)
    err = tmp_path / "bridge.err"
    with HostileServer() as hostile:
        hostile.as_metadata["authorization_endpoint"] = endpoint.format(base=hostile.base)
        _, message = initialize_error(hostile.url, hostile_env(tmp_path, browser), err)
    assert not opened.exists() and not Path(CANARY).exists()
    assert message.startswith("OAuth sign-in to the MCP server at 127.0.0.1 failed: "), message
    assert "Traceback" not in err.read_text()


def test_an_authorization_endpoint_with_spaces_and_backticks_is_opened_only_percent_encoded(tmp_path):
    # The SDK's metadata model percent-encodes ` and space: what reaches the browser is a plain
    # encoded URL on the issuer, which no URL handler reads as a command.
    browser, opened = recording_browser(tmp_path)
    with HostileServer() as hostile:
        hostile.as_metadata["authorization_endpoint"] = f"{hostile.base}/authorize`touch {CANARY}`"
        _, message = initialize_error(hostile.url, hostile_env(tmp_path, browser), tmp_path / "err")
        base = hostile.base
    (url,) = opened.read_text().split()
    assert url.startswith(f"{base}/authorize%60touch%20") and not set("`$;| '\"()") & set(url)
    assert "no sign-in completed within 3 s" in message and not Path(CANARY).exists()


def test_an_issuer_that_differs_from_the_metadata_is_refused_before_registration(tmp_path):
    browser, opened = recording_browser(tmp_path)
    with HostileServer() as hostile:
        hostile.as_metadata["issuer"] = "http://127.0.0.1:1/other-issuer"
        _, message = initialize_error(hostile.url, hostile_env(tmp_path, browser), tmp_path / "err")
        requests = list(hostile.requests)
    assert "issuer mismatch" in message and not opened.exists()
    assert not any("/register" in r for r in requests)


@pytest.mark.parametrize("issuer", ["http://idp.example.com", "ftp://127.0.0.1/"])
def test_an_authorization_server_on_plain_http_or_another_scheme_is_refused(issuer, tmp_path):
    browser, opened = recording_browser(tmp_path)
    with HostileServer() as hostile:
        hostile.prm["authorization_servers"] = [issuer]
        _, message = initialize_error(hostile.url, hostile_env(tmp_path, browser), tmp_path / "err")
    assert ("refusing the authorization server" in message or "names no authorization server" in message)
    assert not opened.exists(), message


def test_a_server_that_names_no_authorization_server_asks_for_an_api_key(tmp_path):
    browser, opened = recording_browser(tmp_path)
    with HostileServer() as hostile:
        hostile.prm.pop("authorization_servers")
        _, message = initialize_error(hostile.url, hostile_env(tmp_path, browser), tmp_path / "err")
        requests = list(hostile.requests)
    assert "set MCP_API_KEY" in message and not opened.exists()
    assert not any("/register" in r or "oauth-authorization-server" in r for r in requests)


def test_a_redirect_with_the_wrong_state_is_refused_and_its_code_never_exchanged(
        auth_server, sdk_resource_server, certs, tmp_path):
    from mcp.shared.exceptions import MCPError

    err = tmp_path / "bridge.err"
    env = {"MCP_CA_BUNDLE": str(certs.ca_file), "MCP_TIMEOUT": "20", "MCP_SIGNIN_TIMEOUT": "60",
           "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}
    refused: list[str] = []

    async def initialize_refused(session) -> None:
        try:
            await session.initialize()
        except MCPError as exc:
            refused.append(exc.error.message)

    async def go():
        async with bridged_session(sdk_resource_server.url, env, err, "--allow-http", initialize=False) as s:
            async with anyio.create_task_group() as tg:
                tg.start_soon(initialize_refused, s)
                back = await anyio.to_thread.run_sync(sign_in, await printed_url(err))
                async with httpx2.AsyncClient() as browser:
                    status = (await browser.get(back.replace("state=", "state=forged"))).status_code
            grants_after_forgery = auth_server.grants()
            # The next attempt starts a fresh sign-in, which the real user completes.
            async with anyio.create_task_group() as tg:
                tg.start_soon(s.initialize)
                await user_signs_in(err, seen=1)
            result = await s.call_tool("whoami", {})
            return status, grants_after_forgery, json.loads(result.content[0].text)

    status, grants_after_forgery, me = anyio.run(go)
    assert status == 400 and len(refused) == 1 and "wrong state" in refused[0], refused
    assert grants_after_forgery == []  # the forged redirect's code was never exchanged
    assert me["sub"] == "alice" and auth_server.grants() == ["authorization_code"]


def test_a_plaintext_endpoint_in_the_metadata_is_never_contacted(tmp_path):
    # The issuer is loopback (allowed in development), but its registration endpoint is plain
    # http on the network: the client's metadata would cross it in the clear. Refused unsent.
    browser, opened = recording_browser(tmp_path)
    with HostileServer() as hostile:
        hostile.as_metadata["registration_endpoint"] = "http://192.0.2.1/register"
        _, message = initialize_error(hostile.url, hostile_env(tmp_path, browser), tmp_path / "err")
    assert "refusing to contact 'http://192.0.2.1/register'" in message and not opened.exists()


@pytest.mark.parametrize("methods", [None, ["plain"]])
def test_an_authorization_server_without_pkce_s256_is_refused(methods, tmp_path):
    browser, opened = recording_browser(tmp_path)
    with HostileServer() as hostile:
        if methods is None:
            hostile.as_metadata.pop("code_challenge_methods_supported")
        else:
            hostile.as_metadata["code_challenge_methods_supported"] = methods
        _, message = initialize_error(hostile.url, hostile_env(tmp_path, browser), tmp_path / "err")
    assert "does not advertise PKCE S256" in message and not opened.exists()
