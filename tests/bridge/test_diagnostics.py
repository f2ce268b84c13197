"""The bridge's sentences for HTTP refusals name what to do, including deny-by-default 403s."""

from __future__ import annotations

from finops_mcp_admin.bridge.diagnostics import FORBIDDEN, http_error_message

METADATA = 'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'


def test_a_missing_scope_is_named():
    code, message = http_error_message(
        403, f'Bearer realm="mcp", error="insufficient_scope", scope="tools:write", {METADATA}', None)
    assert code == FORBIDDEN and "lacks the scope 'tools:write'" in message


def test_an_unmapped_method_says_no_key_would_do_rather_than_a_scope():
    code, message = http_error_message(
        403, f'Bearer realm="mcp", error="insufficient_scope", {METADATA}', None)
    assert code == FORBIDDEN and "not in the server's scope map" in message and "'?'" not in message
