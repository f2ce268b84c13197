"""Scopes on every MCP method, deny by default (issue 11, point 4).

In-process: every method of the protocol against the envelope with a recording app, so "refused"
also means "the app never saw it". Then `mcpadmin serve --app` around an existing MCP server with
tools, a resource and a prompt, through the official MCP client and raw HTTP."""

from __future__ import annotations

import json

import anyio
import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.server.scopes import METHOD_SCOPES, ScopePolicy
from finops_mcp_admin.store.sqlite import SqliteStore
from tests.server.asgi import CountingHasher, call, make_envelope
from tests.server.conftest import new_key
from tests.server.harness import ServerProcess, mcp_session
from tests.server.test_e2e import metadata_url, post

ALL = ("tools:read", "tools:write", "resources:read", "prompts:read", "logging:write")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("scopes")
    store = SqliteStore(f"sqlite:///{d / 'keys.db'}")

    def issue(name, *scopes):
        return lifecycle.create_key(store, CountingHasher(), name=name, actor="t", now=utcnow(),
                                    scopes=scopes).token.reveal()

    keys = {"none": issue("no-scopes"), "tools": issue("tools-only", "tools:read"),
            "all": issue("everything", *ALL)}
    policy = ScopePolicy({"write_tool": "tools:write"}, default_scope=None)
    app, inner, _ = make_envelope(store, d, scopes=policy)
    yield {"app": app, "inner": inner, "keys": keys, "events": d / "events.jsonl"}
    store.close()


def send(world, key, body):
    """POST a JSON-RPC body; (status, headers, whether the app saw it)."""
    seen = len(world["inner"].admitted)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, headers, _ = anyio.run(lambda: call(world["app"], body=raw,
                                                headers={"Authorization": f"Bearer {world['keys'][key]}"}))
    return status, headers, len(world["inner"].admitted) > seen


def rpc(method, params=None, id_=1):
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return message


PARAMS = {"tools/call": {"name": "write_tool", "arguments": {}}, "resources/read": {"uri": "x://y"},
          "prompts/get": {"name": "p"}, "logging/setLevel": {"level": "debug"}}


@pytest.mark.parametrize("method", sorted(set(METHOD_SCOPES) | {"tools/call"}))
def test_every_mapped_method_needs_its_scope_and_a_key_with_all_scopes_passes(world, method):
    needed = "tools:write" if method == "tools/call" else METHOD_SCOPES[method]
    message = rpc(method, PARAMS.get(method))
    status, headers, seen = send(world, "none", message)
    if needed is None:  # initialize, ping, server/discover: a valid key is enough
        assert status == 200 and seen
    else:
        assert (status, seen) == (403, False)
        assert f'error="insufficient_scope", scope="{needed}"' in headers["www-authenticate"]
    assert send(world, "all", message)[::2] == (200, True)


def test_unknown_methods_and_unmapped_tools_are_refused_even_with_every_scope(world):
    for message in (rpc("tools/call", {"name": "unmapped_tool"}), rpc("admin/shutdown"),
                    rpc("Tools/List"), rpc("sampling/createMessage", {}), rpc("roots/list"),
                    rpc("notifications/initialized")):  # a "notification" with an id is a request
        status, headers, seen = send(world, "all", message)
        assert (status, seen) == (403, False), message
        # Nothing would grant it, so the challenge names no scope (RFC 6750 §3.1).
        assert 'error="insufficient_scope"' in headers["www-authenticate"]
        assert "scope=" not in headers["www-authenticate"].replace("insufficient_scope", "")
    events = [json.loads(line) for line in world["events"].read_text().splitlines()]
    assert any(e["event"] == "insufficient_scope" and e["reason"] ==
               "tool unmapped_tool is not in the scope map" for e in events)
    assert any(e["reason"] == "method admin/shutdown is not in the scope map" for e in events)


def test_notifications_and_responses_need_only_a_valid_key(world):
    for message in ({"jsonrpc": "2.0", "method": "notifications/initialized"},
                    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
                    {"jsonrpc": "2.0", "id": 9, "result": {"roots": []}}):
        assert send(world, "none", message)[::2] == (200, True)


def test_completion_needs_the_scope_of_what_it_completes(world):
    prompt = rpc("completion/complete", {"ref": {"type": "ref/prompt", "name": "p"},
                                         "argument": {"name": "a", "value": ""}})
    resource = rpc("completion/complete", {"ref": {"type": "ref/resource", "uri": "x://{a}"},
                                           "argument": {"name": "a", "value": ""}})
    assert 'scope="prompts:read"' in send(world, "tools", prompt)[1]["www-authenticate"]
    assert 'scope="resources:read"' in send(world, "tools", resource)[1]["www-authenticate"]
    assert send(world, "all", prompt)[::2] == (200, True)
    odd = rpc("completion/complete", {"ref": {"type": "ref/other"}})
    assert send(world, "all", odd)[::2] == (403, False)


def test_subscriptions_listen_needs_the_scope_of_each_notification_it_asks_for(world):
    tools = rpc("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    resources = rpc("subscriptions/listen", {"notifications": {"toolsListChanged": True,
                                                               "resourceSubscriptions": ["x://y"]}})
    assert send(world, "tools", tools)[::2] == (200, True)
    assert send(world, "tools", resources)[::2] == (403, False)
    # The SDK also accepts snake_case field names: anything not known is refused.
    snake = rpc("subscriptions/listen", {"notifications": {"resource_subscriptions": ["x://y"]}})
    assert send(world, "all", snake)[::2] == (403, False)


def test_a_batch_with_one_forbidden_element_is_refused_whole(world):
    batch = [rpc("ping", id_=1), rpc("tools/list", id_=2), rpc("resources/read", {"uri": "x://y"}, 3)]
    status, headers, seen = send(world, "tools", batch)
    assert (status, seen) == (403, False) and 'scope="resources:read"' in headers["www-authenticate"]
    assert send(world, "all", batch)[::2] == (200, True)


def test_duplicate_or_malformed_method_fields_are_bad_requests(world):
    for raw in (b'{"jsonrpc":"2.0","id":1,"method":"ping","method":"resources/read"}',
                b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{},"params":{"name":"x"}}',
                b'{"jsonrpc":"2.0","id":1,"method":"ping","metho\\u0064":"resources/read"}',
                b'{"jsonrpc":"2.0","id":1,"method":7}', b"[]", b"[1]", b'"ping"'):
        assert send(world, "all", raw)[::2] == (400, False), raw


def test_app_option_refuses_resources_prompts_and_unmapped_tools_without_their_scopes(
        certs, sqlite_env, tmp_path):
    reader = new_key(sqlite_env, "wrap-reader", "--scope", "tools:read")
    full = new_key(sqlite_env, "wrap-full", "--scope", "tools:read", "--scope", "resources:read",
                   "--scope", "prompts:read")
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--app", "tests.server.external_app:app",
                            "--tool-scope", "cost_report=tools:read"],
                           sqlite_env, tmp_path / "events.jsonl").start()
    try:
        async def as_reader():
            async with mcp_session(server.url, certs, reader) as s:
                assert "cost_report" in {t.name for t in (await s.list_tools()).tools}
                refused = []
                for attempt in (s.list_resources(), s.read_resource("budgets://current"),
                                s.list_prompts(), s.get_prompt("cost_review", {"team": "a"}),
                                s.call_tool("slow_report", {"seconds": 0})):
                    try:
                        await attempt
                    except Exception as exc:  # the SDK client raises on HTTP 403
                        refused.append(type(exc).__name__)
                return refused

        assert len(anyio.run(as_reader)) == 5
        assert [e["reason"] for e in server.events() if e["event"] == "insufficient_scope"] == [
            "method resources/list needs resources:read", "method resources/read needs resources:read",
            "method prompts/list needs prompts:read", "method prompts/get needs prompts:read",
            "tool slow_report is not in the scope map"]

        async def as_full():
            async with mcp_session(server.url, certs, full) as s:
                text = (await s.read_resource("budgets://current")).contents[0].text
                prompt = (await s.get_prompt("cost_review", {"team": "ops"})).messages[0].content.text
                return text, prompt

        text, prompt = anyio.run(as_full)
        assert "ops-confidential-budget" in text and "team ops" in prompt

        before = len(server.events())
        read = post(server, certs, reader, {"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                                            "params": {"uri": "budgets://current"}})
        assert read.status_code == 403 and "ops-confidential-budget" not in read.text
        assert read.headers["www-authenticate"] == (
            'Bearer realm="mcp", error="insufficient_scope", scope="resources:read", '
            f'resource_metadata="{metadata_url(server)}"')
        delete = {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                  "params": {"name": "delete_budget", "arguments": {"name": "b"}}}
        assert post(server, certs, full, delete).status_code == 403
        batch = post(server, certs, full, [{"jsonrpc": "2.0", "id": 5, "method": "ping"}, delete])
        assert batch.status_code == 403
        reasons = [(e["event"], e["reason"]) for e in server.events()[before:]]
        assert reasons == [("insufficient_scope", "method resources/read needs resources:read"),
                           ("insufficient_scope", "tool delete_budget is not in the scope map"),
                           ("insufficient_scope", "tool delete_budget is not in the scope map")]
    finally:
        server.stop()


def test_config_file_can_admit_unmapped_tools_and_map_extra_methods(certs, sqlite_env, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('default_tool_scope = "tools:read"\n'
                      '[method_scopes]\n"x-vendor/report" = "reports:read"\n')
    env = {**sqlite_env, "MCPADMIN_CONFIG": str(config)}
    reader = new_key(sqlite_env, "cfg-wrap-reader", "--scope", "tools:read")
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--app", "tests.server.external_app:app"], env, tmp_path / "events.jsonl").start()
    try:
        call_ = {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                 "params": {"name": "cost_report", "arguments": {"month": "2026-10"}}}
        assert post(server, certs, reader, call_).status_code != 403
        vendor = post(server, certs, reader, {"jsonrpc": "2.0", "id": 5, "method": "x-vendor/report"})
        assert vendor.status_code == 403 and 'scope="reports:read"' in vendor.headers["www-authenticate"]
    finally:
        server.stop()
