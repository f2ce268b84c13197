"""The bridge signs in with OAuth (issue 13, point 3) end to end, in real processes: the official
MCP stdio client starts `mcpadmin bridge` with no MCP_API_KEY; the server answers 401 with its
resource metadata; the bridge registers at the real oidc-provider, the user signs in at the URL
the bridge printed, and the tool call goes through with the token. Tokens never leak."""

from __future__ import annotations

import json
import os
import stat

import anyio

from tests.bridge.harness import bridged_session
from tests.bridge.oauth_harness import user_signs_in


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
