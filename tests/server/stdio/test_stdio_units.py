"""The parts of `serve --stdio` that decide without a process: the child's environment, the
spawn limits, the scope map and which POSTs the gateway answers itself."""

from __future__ import annotations

import mcp_types as types

from finops_mcp_admin.quotas import Rate
from finops_mcp_admin.server._asgi import Request
from finops_mcp_admin.server.stdio.limits import SpawnLimits
from finops_mcp_admin.server.stdio.options import child_env
from finops_mcp_admin.server.stdio.relay import stderr_redactor
from finops_mcp_admin.server.stdio.reply import single_message
from finops_mcp_admin.server.stdio.scope_map import ToolScope, scope_map

SOURCE = {"PATH": "/bin", "HOME": "/root", "AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "s3cr3t!",
          "MCPADMIN_REDIS_PASSWORD": "pw", "MCP_API_KEY": "mcpk_x", "API_KEYS": "a,b", "OTHER": "o"}


def test_child_env_is_the_base_plus_the_allowlist_never_the_gateways_secrets():
    assert child_env([], SOURCE) == {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    assert child_env(["AWS_*"], SOURCE) == {"PATH": "/bin", "HOME": "/root", "LANG": "C.UTF-8",
                                             "AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "s3cr3t!"}
    everything = child_env(["*"], SOURCE)
    assert "OTHER" in everything
    assert not {"MCPADMIN_REDIS_PASSWORD", "MCP_API_KEY", "API_KEYS"} & set(everything)


def test_child_env_without_path_gets_a_default_one():
    assert child_env([], {})["PATH"]


def test_spawn_limits_per_key_total_and_rate():
    now = [0.0]
    limits = SpawnLimits(per_key=2, total=3, rate=Rate(4, 60), clock=lambda: now[0])
    assert limits.reserve("a") is None and limits.reserve("a") is None
    assert limits.reserve("a") == ("stdio_children_per_key", 5)
    assert limits.reserve("b") is None
    assert limits.reserve("c") == ("stdio_children", 5)
    limits.release("a")
    assert limits.running() == 2 and limits.running("a") == 1
    assert limits.reserve("c") is None  # the fourth spawn of the minute
    limits.release("c")
    assert limits.reserve("c") == ("stdio_spawn_rate", 15)  # one token per 15 s
    now[0] = 15.0
    assert limits.reserve("c") is None


def test_scope_map_config_first_then_read_only_hint_else_write():
    tools = [{"name": "read", "annotations": {"readOnlyHint": True}},
             {"name": "hinted_false", "annotations": {"readOnlyHint": False}},
             {"name": "no_annotations"},
             {"name": "stringly", "annotations": {"readOnlyHint": "true"}},  # not a boolean: unsure
             {"name": "configured", "annotations": {"readOnlyHint": True}},
             {"noname": 1}]
    rows = scope_map(tools, {"configured": "admin:x", "absent_from_server": "tools:read"})
    assert rows == [ToolScope("absent_from_server", "tools:read", "config"),
                    ToolScope("configured", "admin:x", "config"),
                    ToolScope("hinted_false", "tools:write", "not read-only"),
                    ToolScope("no_annotations", "tools:write", "not read-only"),
                    ToolScope("read", "tools:read", "readOnlyHint"),
                    ToolScope("stringly", "tools:write", "not read-only")]


def test_stderr_redactor_removes_keys_and_secret_values():
    redact = stderr_redactor({"AWS_SECRET_ACCESS_KEY": "s3cr3t!", "AWS_REGION": "eu-west-1"})
    line = "boto: s3cr3t! in eu-west-1, got mcpk_ABCDEFGHIJKL_" + "x" * 44
    assert redact(line) == "boto: *** in eu-west-1, got mcpk_***"


def test_a_batch_line_from_the_child_is_its_messages_and_anything_else_fails():
    import pytest

    from finops_mcp_admin.server.stdio.relay import ChildFailed, _parse

    batch = _parse(b'[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"notifications/x"}]\n')
    assert [type(m).__name__ for m in batch] == ["JSONRPCResponse", "JSONRPCNotification"]
    for line in (b"[]\n", b"hello\n", b'{"jsonrpc":"1.0","id":1}\n', b"[1]\n"):
        with pytest.raises(ChildFailed):
            _parse(line)


def _post(body: bytes, content_type: str = "application/json",
          accept: str = "application/json, text/event-stream") -> tuple[Request, bytes]:
    scope = {"type": "http", "method": "POST", "path": "/mcp",
             "headers": [(b"content-type", content_type.encode()), (b"accept", accept.encode())]}
    return Request(scope), body


def test_single_message_takes_one_valid_message_and_leaves_the_rest_to_the_sdk():
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}'
    assert isinstance(single_message(*_post(call)), types.JSONRPCRequest)
    assert isinstance(single_message(*_post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')),
                      types.JSONRPCNotification)
    assert isinstance(single_message(*_post(call, accept="*/*")), types.JSONRPCRequest)
    # The SDK's transport answers these (406, 400, 415, the initialize's own handling).
    assert single_message(*_post(call, accept="application/json")) is None
    assert single_message(*_post(call, content_type="text/plain")) is None
    assert single_message(*_post(b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}')) is None
    assert single_message(*_post(b'{"jsonrpc":"2.0","id":1,')) is None
    assert single_message(*_post(b'{"jsonrpc":"1.0","id":1,"method":"ping"}')) is None
