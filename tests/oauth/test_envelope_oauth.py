"""The envelope's OAuth step in-process: failures never admit, never surface a traceback, and
count against the client in the failure window."""

from __future__ import annotations

import json

import anyio

from finops_mcp_admin.server.oauth.step import OAuthStep
from finops_mcp_admin.server.oauth.verifier import OAuthSettings, OAuthVerifier
from finops_mcp_admin.server.throttle import FailureThrottle
from tests.server.asgi import call, make_envelope

SETTINGS = OAuthSettings(issuer="https://login.example.com", audience="https://mcp.example.com/mcp",
                         server_scopes=frozenset({"tools:read"}))


class Exploding(OAuthVerifier):
    def verify(self, token):
        raise RuntimeError("a bug in verification")


def _events(tmp_path):
    return [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]


def test_an_unexpected_error_is_503_never_admitted(tmp_path):
    step = OAuthStep(Exploding(SETTINGS), "mcp", "tools:read", api_keys_too=False)
    app, inner, _ = make_envelope(None, tmp_path, oauth=step)
    status, headers, _ = anyio.run(lambda: call(app, headers={"Authorization": "Bearer abc.def.ghi"}))
    assert (status, headers["retry-after"], inner.admitted) == (503, "5", [])
    event = _events(tmp_path)[-1]
    assert (event["event"], event["reason"]) == ("auth_server_unavailable",
                                                 "verification error: RuntimeError")


def test_bad_tokens_count_against_the_client_ip(tmp_path):
    step = OAuthStep(OAuthVerifier(SETTINGS), "mcp", "tools:read", api_keys_too=False)
    app, inner, _ = make_envelope(None, tmp_path, oauth=step, throttle=FailureThrottle(3, 60))

    async def spray():
        return [(await call(app, headers={"Authorization": f"Bearer opaque-guess-{i}"}))[0]
                for i in range(5)]

    assert anyio.run(spray) == [401, 401, 401, 429, 429]
    assert inner.admitted == []


def test_both_mode_sends_mcpk_tokens_to_the_key_path(tmp_path):
    step = OAuthStep(OAuthVerifier(SETTINGS), "mcp", "tools:read", api_keys_too=True)
    app, _, _ = make_envelope(None, tmp_path, oauth=step)
    assert step.takes("mcpk_x") is False and step.takes("eyJ.x.y") and step.takes(None)
    status, headers, _ = anyio.run(lambda: call(app, headers={"Authorization": "Bearer mcpk_garbage"}))
    assert status == 401 and "scope=" not in headers["www-authenticate"]  # the API-key challenge
    assert _events(tmp_path)[-1]["reason"] == "malformed_token"
