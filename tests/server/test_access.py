"""The access trail and per-key IP allowlists, end to end: the official MCP client over HTTPS
against `mcpadmin serve` in a subprocess, the client's source address bound to 127.0.0.1 or
127.0.0.2 (the whole of 127/8 is local on Linux)."""

from __future__ import annotations

import json
import time
import uuid

import anyio
import pytest

from finops_mcp_admin.aws.rules._filter_pattern import matches
from tests.aws.template_variants import resource, shipped
from tests.server.conftest import cli_in, new_key
from tests.server.harness import ServerProcess
from tests.server.test_e2e import HEADERS, INIT


@pytest.fixture(scope="module")
def server(certs, sqlite_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("access") / "events.jsonl"
    proc = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                          "--max-failures", "1000", "--poll-interval", "0.1"], sqlite_env, log).start()
    yield proc
    proc.stop()


def ip_url(server) -> str:
    return f"https://127.0.0.1:{server.port}/mcp"  # the certificate names 127.0.0.1 too


def client_from(source: str, certs, key: str, timeout: float = 30.0):
    """An httpx client whose connections leave from `source`."""
    import httpx2

    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"},
                              verify=certs.client_context(), timeout=httpx2.Timeout(timeout, read=60.0),
                              transport=httpx2.AsyncHTTPTransport(verify=certs.client_context(),
                                                                  local_address=source))


def status_from(server, certs, key, source: str) -> int:
    async def go():
        async with client_from(source, certs, key, timeout=5) as http:
            return (await http.post(ip_url(server), content=json.dumps(INIT), headers=HEADERS)).status_code

    return anyio.run(go)


async def _tool_calls(server, certs, key, source, calls):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (client_from(source, certs, key) as http,
                streamable_http_client(ip_url(server), http_client=http) as (read, write),
                ClientSession(read, write) as session):
        await session.initialize()
        return [await session.call_tool(name, args) for name, args in calls]


def test_read_and_write_calls_leave_access_events_without_arguments_or_results(server, certs, sqlite_env):
    key = new_key(sqlite_env, "acc-writer", "--scope", "tools:read", "--scope", "tools:write")
    key_id = key.split("_")[1]
    canary_read, canary_write = f"canary-{uuid.uuid4().hex}", f"canary-{uuid.uuid4().hex}"
    canary_result = f"Canary{uuid.uuid4().hex}"  # a tag key: the tool's result repeats it
    results = anyio.run(_tool_calls, server, certs, key, "127.0.0.1", [
        ("validate_resource_tags", {"resource_type": "ec2:instance", "tags": {"Owner": canary_read}}),
        ("update_tagging_policy", {"new_policy": {"description": canary_write,
                                                  "required_tags": [{"key": canary_result}]}})])
    assert not any(r.is_error for r in results)
    assert canary_result in json.dumps([r.model_dump() for r in results])
    calls = server.access_events(lambda e: e["event"] == "tool_call" and e["key_id"] == key_id
                         and e["tool"] == "update_tagging_policy")
    calls = [e for e in server.events(access=True) if e["event"] == "tool_call" and e["key_id"] == key_id]
    by_tool = {e["tool"]: e for e in calls}
    assert set(by_tool) == {"validate_resource_tags", "update_tagging_policy"}
    for tool, scope in (("validate_resource_tags", "tools:read"), ("update_tagging_policy", "tools:write")):
        event = by_tool[tool]
        assert event["key_name"] == "acc-writer" and event["rpc_method"] == "tools/call"
        assert event["scope"] == scope and event["outcome"] == "ok" and event["status"] == 200
        assert event["client_ip"] == "127.0.0.1" and event["correlation_id"]
        assert event["duration_ms"] >= 0 and event["request_bytes"] > 0 and event["response_bytes"] > 0
    methods = {e["rpc_method"] for e in server.events(access=True)
               if e["event"] == "method_call" and e["key_id"] == key_id}
    assert "initialize" in methods
    # The stack's write-call metric filter counts this server's real write line, not the read one.
    lines = {json.loads(line).get("tool"): line for line in server.log_file.read_text().splitlines()
             if f'"{key_id}"' in line and '"tool_call"' in line}
    writes = resource(shipped(), "WriteToolCallsMetricFilter")["FilterPattern"]
    assert matches(writes, lines["update_tagging_policy"])
    assert not matches(writes, lines["validate_resource_tags"])
    everything = server.all_output()
    assert canary_read not in everything and canary_write not in everything
    assert canary_result not in everything
    assert key not in everything


def test_a_failing_tool_call_is_logged_as_an_error(server, certs, sqlite_env):
    key = new_key(sqlite_env, "acc-failing", "--scope", "tools:read", "--scope", "tools:write")
    key_id = key.split("_")[1]
    results = anyio.run(_tool_calls, server, certs, key, "127.0.0.1", [
        ("update_tagging_policy", {"new_policy": {"required_tags": "not a list"}})])
    assert results[0].is_error
    event = server.access_events(lambda e: e["event"] == "tool_call" and e["key_id"] == key_id)[0]
    assert event["outcome"] == "error"


def test_an_allowlisted_key_works_from_its_network_and_is_refused_elsewhere(server, certs, sqlite_env):
    key = new_key(sqlite_env, "acc-pinned", "--scope", "tools:read", "--allow-cidr", "127.0.0.2/32",
                  "--allow-cidr", "2001:db8::/32")
    key_id = key.split("_")[1]
    results = anyio.run(_tool_calls, server, certs, key, "127.0.0.2",
                        [("whoami", {})])
    assert not results[0].is_error
    assert status_from(server, certs, key, "127.0.0.1") == 403
    refused = server.access_events(lambda e: e["event"] == "ip_refused" and e["key_id"] == key_id)
    assert refused[0]["client_ip"] == "127.0.0.1"
    shown = json.loads(cli_in(sqlite_env, "keys", "show", "acc-pinned", "-o", "json").stdout)
    assert shown["allow_cidr"] == ["127.0.0.2/32", "2001:db8::/32"]


def test_an_allowlist_edit_reaches_the_running_server_within_the_poll_bound(server, certs, sqlite_env):
    key = new_key(sqlite_env, "acc-live", "--scope", "tools:read")
    assert status_from(server, certs, key, "127.0.0.1") == 200  # verified and cached
    assert cli_in(sqlite_env, "keys", "update", "acc-live", "--allow-cidr", "127.0.0.2").returncode == 0
    start = time.monotonic()
    while status_from(server, certs, key, "127.0.0.1") != 403:
        assert time.monotonic() - start < 1.0, "allowlist edit not seen within 1 s (poll 0.1 s)"
    assert status_from(server, certs, key, "127.0.0.2") == 200
    assert cli_in(sqlite_env, "keys", "update", "acc-live", "--allow-cidr", "none").returncode == 0
    start = time.monotonic()
    while status_from(server, certs, key, "127.0.0.1") != 200:
        assert time.monotonic() - start < 1.0, "allowlist removal not seen within 1 s"
    trail = json.loads(cli_in(sqlite_env, "audit", "events", "-o", "json").stdout)
    updates = [e["detail"] for e in trail if e["action"] == "update" and e["name"] == "acc-live"]
    assert updates == [{"before": {"allow_cidr": []}, "after": {"allow_cidr": ["127.0.0.2/32"]}},
                       {"before": {"allow_cidr": ["127.0.0.2/32"]}, "after": {"allow_cidr": []}}]


def test_audit_access_groups_the_trail_by_key_tool_and_ip(server, certs, sqlite_env):
    key = new_key(sqlite_env, "acc-audited", "--scope", "tools:read")
    key_id = key.split("_")[1]
    anyio.run(_tool_calls, server, certs, key, "127.0.0.1",
              [("whoami", {}), ("whoami", {}), ("get_tagging_policy", {})])
    server.access_events(lambda e: e.get("tool") == "get_tagging_policy" and e["key_id"] == key_id)
    log = str(server.log_file)

    def groups(by):
        r = cli_in(sqlite_env, "audit", "access", "--since", "1d", "--log-file", log, "--by", by,
                   "-o", "json")
        assert r.returncode == 0, r.stderr
        return {g[by]: g["count"] for g in json.loads(r.stdout)}  # the column is named by --by

    assert groups("key")[key_id] >= 4  # initialize + three tool calls
    tools = groups("tool")
    assert tools["whoami"] >= 2 and tools["get_tagging_policy"] >= 1
    assert "127.0.0.1" in groups("ip")
    listed = cli_in(sqlite_env, "audit", "access", "--since", "1d", "--log-file", log, "--by", "none",
                    "-o", "json")
    rows = [e for e in json.loads(listed.stdout) if e["key_id"] == key_id]
    assert {e["tool"] for e in rows} >= {"whoami", "get_tagging_policy"}


async def _hold_stream(server, certs, key, source, ended: dict) -> None:
    """Initialize a session from `source`, then hold its GET event stream until it ends."""
    pv = {"mcp-protocol-version": "2025-11-25"}
    async with client_from(source, certs, key) as http:
        r = await http.post(ip_url(server), content=json.dumps(INIT), headers=HEADERS)
        sid = r.headers["mcp-session-id"]
        await http.post(ip_url(server), headers={**HEADERS, "mcp-session-id": sid, **pv},
                        content=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        async with http.stream("GET", ip_url(server), headers={"mcp-session-id": sid, **pv,
                                                               "accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            ended["opened"] = time.monotonic()
            try:
                async for _ in stream.aiter_bytes():
                    pass
            except Exception as exc:  # a cut connection also ends it
                ended["error"] = repr(exc)
        ended["at"] = time.monotonic()


def test_an_allowlist_edit_ends_open_streams_from_addresses_it_no_longer_admits(server, certs, sqlite_env):
    key = new_key(sqlite_env, "acc-streaming", "--scope", "tools:read")
    key_id = key.split("_")[1]
    ended: dict = {}

    async def scenario():
        async with anyio.create_task_group() as tg:
            tg.start_soon(_hold_stream, server, certs, key, "127.0.0.1", ended)
            while "opened" not in ended:
                await anyio.sleep(0.01)
            await anyio.sleep(0.3)  # the stream is established and idle
            r = await anyio.to_thread.run_sync(
                lambda: cli_in(sqlite_env, "keys", "update", "acc-streaming", "--allow-cidr", "127.0.0.2"))
            assert r.returncode == 0, r.stderr
            ended["changed"] = time.monotonic()
            with anyio.fail_after(5):
                while "at" not in ended:
                    await anyio.sleep(0.01)

    anyio.run(scenario)
    assert ended["at"] - ended["changed"] < 1.0, ended  # poll interval 0.1 s, plus slack
    refused = server.access_events(lambda e: e["event"] == "ip_refused" and e["key_id"] == key_id)
    assert refused[0]["reason"] == "allowlist changed: open request ended"


def test_a_bad_access_log_mode_is_one_line_and_exit_2(sqlite_env):
    r = cli_in(sqlite_env, "serve", "--access-log", "sometimes", "--port", "1")
    assert r.returncode == 2 and "invalid --access-log 'sometimes'" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
