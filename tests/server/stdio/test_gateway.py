"""`mcpadmin serve --stdio -- COMMAND` (issue 14) around the in-repo fixture server, through the
official MCP client over HTTPS: the envelope in front, one child per session, a faithful relay,
and children that end with their sessions."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.server.conftest import new_key
from tests.server.harness import Certs, ServerProcess, http_client
from tests.server.stdio.conftest import (
    FIXTURE_TOKEN,
    HEADERS,
    alive,
    proc_children,
    raw_pid,
    session,
    stdio_server,
    wait_gone,
)


@pytest.fixture(scope="module")
def keys(stdio_env) -> dict[str, str]:
    return {"reader": new_key(stdio_env, "stdio-reader", "--scope", "tools:read"),
            "writer": new_key(stdio_env, "stdio-writer", "--scope", "tools:read", "--scope", "tools:write")}


@pytest.fixture(scope="module")
def gateway(certs: Certs, stdio_env, keys, tmp_path_factory):
    # The gateway's own secrets are in its environment, and the allowlist even asks for MCP*:
    # none of them may reach a child.
    env = {**stdio_env, "MCP_API_KEY": keys["writer"], "MCPADMIN_CANARY": keys["reader"]}
    server = stdio_server(certs, env, tmp_path_factory.mktemp("gw") / "events.jsonl",
                          "--stdio-env", "FIXTURE_TOKEN", "--stdio-env", "MCP*",
                          "--stdio-memory-mb", "2048", "--stdio-cpu-seconds", "600").start()
    yield server
    server.stop()


async def pid_of(s) -> int:
    return int((await s.call_tool("pid", {})).content[0].text)


def test_lists_and_calls_tools_with_a_key(gateway, certs, keys):
    async def go():
        async with session(gateway, certs, keys["reader"]) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            echoed = (await s.call_tool("echo", {"text": "héllo"})).content[0].text
            return names, echoed

    names, echoed = anyio.run(go)
    assert {"echo", "pid", "write_note", "sample", "slow"} <= names
    assert echoed == "héllo"


def test_no_key_is_401_and_starts_no_child(gateway, certs):
    before = proc_children(gateway.proc.pid)

    async def go():
        async with httpx2.AsyncClient(verify=certs.client_context()) as http:
            return await http.post(gateway.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                                      "params": {}},
                                   headers={"Accept": "application/json, text/event-stream"})

    r = anyio.run(go)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert proc_children(gateway.proc.pid) <= before  # nothing new (earlier ones may be ending)


def test_a_key_without_the_tools_scope_is_refused(gateway, certs, keys):
    count = len(gateway.events())

    async def go():
        async with session(gateway, certs, keys["reader"]) as s:
            with pytest.raises(MCPError):
                await s.call_tool("write_note", {})
            with pytest.raises(MCPError):
                await s.call_tool("not_listed_at_start", {})

    anyio.run(go)
    reasons = [e["reason"] for e in gateway.events()[count:] if e["event"] == "insufficient_scope"]
    assert reasons == ["tool write_note needs tools:write",
                       "tool not_listed_at_start is not in the scope map"]

    async def as_writer():
        async with session(gateway, certs, keys["writer"]) as s:
            return (await s.call_tool("write_note", {})).content[0].text

    assert anyio.run(as_writer) == "written"


def test_two_sessions_two_children_each_ended_by_delete(gateway, certs, keys):
    async def go():
        async with session(gateway, certs, keys["reader"]) as a, session(gateway, certs, keys["reader"]) as b:
            pids = await pid_of(a), await pid_of(b)
            assert set(pids) <= proc_children(gateway.proc.pid)
            return pids

    first, second = anyio.run(go)
    assert first != second
    assert wait_gone(first) and wait_gone(second)  # the client's DELETE ended both, reaped


def test_a_killed_child_fails_its_session_cleanly_and_a_new_session_works(gateway, certs, keys):
    count = len(gateway.events())

    async def go():
        async with session(gateway, certs, keys["reader"]) as s:
            pid = await pid_of(s)
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(MCPError) as failed:
                for _ in range(50):  # until the gateway has seen the EOF: then 404 or the error
                    await s.call_tool("echo", {"text": "x"})
                    await anyio.sleep(0.1)
        async with session(gateway, certs, keys["reader"]) as s:
            return pid, failed.value, (await s.call_tool("echo", {"text": "again"})).content[0].text

    pid, failure, again = anyio.run(go)
    assert again == "again" and not alive(pid)
    assert "traceback" not in str(failure).lower()
    failed = [e for e in gateway.events()[count:] if e["event"] == "stdio_child_failed"]
    assert [e["reason"] for e in failed] == ["stdio server exited (status -9)"]
    assert failed[0]["key_id"] and failed[0]["session"]


@pytest.mark.parametrize(("tool", "reason"), [
    ("crash", "stdio server exited (status 3)"),
    ("garbage", "stdio server wrote something that is not JSON-RPC to stdout"),
])
def test_a_crash_or_non_json_answers_the_request_with_a_jsonrpc_error(gateway, certs, keys, tool, reason):
    count = len(gateway.events())

    async def go():
        async with session(gateway, certs, keys["writer"]) as s:
            pid = await pid_of(s)
            try:
                await s.call_tool(tool, {})
            except MCPError as exc:  # the SDK raises the JSON-RPC error
                return pid, exc
            raise AssertionError("no error")

    pid, exc = anyio.run(go)
    assert reason in str(exc)
    assert wait_gone(pid)
    assert [e["reason"] for e in gateway.events()[count:] if e["event"] == "stdio_child_failed"] == [reason]


def test_sampling_request_of_the_child_reaches_the_client_and_back(gateway, certs, keys):
    asked = []

    async def sample(context, params):
        asked.append(params.messages[0].content.text)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="42"),
                                         model="test-model")

    async def go():
        async with session(gateway, certs, keys["reader"], sampling_callback=sample) as s:
            return (await s.call_tool("sample", {})).content[0].text

    text = anyio.run(go)
    assert asked == ["hi"]
    assert json.loads(text.removeprefix("sampled: "))["model"] == "test-model"


def test_progress_notifications_reach_the_caller(gateway, certs, keys):
    seen = []

    async def progress(value, total, message):
        seen.append(value)

    async def go():
        async with session(gateway, certs, keys["reader"]) as s:
            return (await s.call_tool("slow", {"seconds": 0.5}, progress_callback=progress)).content[0].text

    assert anyio.run(go) == "slept"
    assert len(seen) >= 3 and seen == sorted(seen)


def test_cancellation_reaches_the_child_and_stderr_goes_to_the_log_redacted(gateway, certs, keys):
    async def go():
        async with session(gateway, certs, keys["reader"]) as s:
            with anyio.move_on_after(0.5):
                await s.call_tool("slow", {"seconds": 20})
            await anyio.sleep(0.5)  # the child notices within 0.1 s
            return await pid_of(s)

    pid = anyio.run(go)
    log = gateway.stderr_path.read_text()
    assert f"stdio server [{pid}]: fixture starting; token=*** keys=[]" in log
    assert "cancelled" in log
    assert FIXTURE_TOKEN not in gateway.all_output()


def test_child_environment_is_the_allowlist_and_limits_apply(gateway, certs, keys):
    async def go():
        async with session(gateway, certs, keys["reader"]) as s:
            pid = await pid_of(s)
            proc = Path(f"/proc/{pid}")
            environ = dict(item.split("=", 1) for item in
                           (proc / "environ").read_text().split("\0") if "=" in item)
            cmdline, limits = (proc / "cmdline").read_text(), (proc / "limits").read_text()
            return pid, environ, cmdline, limits, os.getpgid(pid)

    pid, environ, cmdline, limits, pgid = anyio.run(go)
    assert environ["FIXTURE_TOKEN"] == FIXTURE_TOKEN and "PATH" in environ
    assert not {"NOT_ALLOWED", "MCP_API_KEY", "MCPADMIN_CANARY", "MCPADMIN_STORE"} & set(environ)
    assert "fixture_server" in cmdline
    assert pgid == pid  # its own process group, ended as a whole
    address_space = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert address_space.split()[3] == str(2048 * 1024 * 1024)
    cpu = next(line for line in limits.splitlines() if line.startswith("Max cpu time"))
    assert cpu.split()[3:5] == ["600", "601"]


def test_canary_keys_reach_no_child_and_no_log(gateway, certs, keys):
    async def go():
        async with session(gateway, certs, keys["writer"]) as s:
            await s.call_tool("echo", {"text": "canary run"})
            pid = await pid_of(s)
            return Path(f"/proc/{pid}/environ").read_text(), Path(f"/proc/{pid}/cmdline").read_text()

    environ, cmdline = anyio.run(go)
    for key in keys.values():
        secret = key.split("_")[2]
        assert secret not in environ and secret not in cmdline
        assert secret not in gateway.all_output()


def test_print_scope_map_of_a_server_that_writes_a_lot_to_stderr(stdio_env):
    from tests.server.conftest import cli_in
    from tests.server.stdio.conftest import FIXTURE, REPO

    # Far over what asyncio buffers before it stops reading a pipe (2 x the 4 MiB line limit).
    env = {**stdio_env, "FIXTURE_STDERR_BYTES": str(20 << 20)}
    r = cli_in(env, "serve", "--stdio", "--stdio-cwd", str(REPO), "--stdio-env", "FIXTURE_*",
               "--print-scope-map", "--", *FIXTURE)
    assert r.returncode == 0, r.stderr
    assert "echo" in r.stdout


def test_print_scope_map(stdio_env):
    from tests.server.conftest import cli_in
    from tests.server.stdio.conftest import FIXTURE, REPO

    r = cli_in(stdio_env, "serve", "--stdio", "--stdio-cwd", str(REPO), "--tool-scope", "crash=admin:crash",
               "--print-scope-map", "--", *FIXTURE)
    assert r.returncode == 0, r.stderr
    table = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[2:]}
    assert table["echo"] == ["tools:read", "readOnlyHint"]
    assert table["write_note"] == ["tools:write", "not", "read-only"]
    assert table["crash"] == ["admin:crash", "config"]
    assert r.stdout.splitlines()[-1].split()[-2:] == ["refused", "default"]


@pytest.mark.parametrize(("args", "message"), [
    (["--stdio"], "--stdio needs a command after --"),
    (["--stdio", "--", "/no/such/server"], "stdio server command not found"),
    (["--", "python"], "a command needs --stdio"),
    (["--stdio", "--stdio-env", "A=B", "--", "python"], "invalid --stdio-env"),
    (["--stdio", "--", "python", "-c", "import sys; sys.exit(1)"], "cannot list the stdio server's tools"),
    (["--stdio", "--app", "tests.server.external_app:app", "--", "python"], "--stdio and --app"),
])
def test_bad_stdio_options_one_line_exit_2(stdio_env, args, message):
    from tests.server.conftest import cli_in

    r = cli_in(stdio_env, "serve", *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_child_is_not_spawned_before_initialize(gateway, certs, keys):
    before = proc_children(gateway.proc.pid)

    async def go():
        async with httpx2.AsyncClient(verify=certs.client_context(),
                                      headers={"Authorization": f"Bearer {keys['reader']}"}) as http:
            return await http.post(gateway.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                   headers={"Accept": "application/json, text/event-stream"})

    r = anyio.run(go)
    assert r.status_code == 400
    time.sleep(0.3)
    assert proc_children(gateway.proc.pid) <= before


def test_the_image_variables_alone_run_the_gateway(certs, stdio_env, tmp_path):
    """Dockerfile.stdio sets MCPADMIN_STDIO*; the stack's `serve` command has no --stdio."""
    import shlex

    from tests.server.stdio.conftest import FIXTURE, REPO

    env = {**stdio_env, "MCPADMIN_STDIO": "1", "MCPADMIN_STDIO_COMMAND": shlex.join(FIXTURE),
           "MCPADMIN_STDIO_ENV": "FIXTURE_*", "MCPADMIN_STDIO_CWD": str(REPO)}
    key = new_key(stdio_env, "stdio-image", "--scope", "tools:read")
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)], env,
                           tmp_path / "events.jsonl").start()
    try:
        async def go():
            async with session(server, certs, key) as s:
                pid = await pid_of(s)
                return Path(f"/proc/{pid}/environ").read_text(), Path(f"/proc/{pid}/cwd").resolve()

        environ, cwd = anyio.run(go)
        assert f"FIXTURE_TOKEN={FIXTURE_TOKEN}" in environ.split("\0")
        assert "MCPADMIN_STDIO_COMMAND" not in environ and cwd == REPO
    finally:
        server.stop()


def test_a_batch_is_relayed_and_answered_as_one_array(gateway, certs, keys):

    def call(id_, tool, **args):
        return {"jsonrpc": "2.0", "id": id_, "method": "tools/call",
                "params": {"name": tool, "arguments": args}}

    async def go():
        async with http_client(certs, keys["reader"]) as http:
            sid, _ = await raw_pid(http, gateway.url)
            headers = {**HEADERS, "mcp-session-id": sid}
            answered = await http.post(gateway.url, headers=headers, json=[
                call(10, "echo", text="a"), call(11, "echo", text="b"),
                {"jsonrpc": "2.0", "method": "notifications/progress",
                 "params": {"progressToken": "t", "progress": 1}}])
            only_notes = await http.post(gateway.url, headers=headers, json=[
                {"jsonrpc": "2.0", "method": "notifications/progress",
                 "params": {"progressToken": "t", "progress": 2}}])
            refused = await http.post(gateway.url, headers=headers, json=[
                call(12, "echo", text="c"), call(13, "write_note")])
            return answered, only_notes, refused

    answered, only_notes, refused = anyio.run(go)
    assert answered.status_code == 200, answered.text
    texts = {m["id"]: m["result"]["content"][0]["text"] for m in answered.json()}
    assert texts == {10: "a", 11: "b"}
    assert only_notes.status_code == 202
    assert refused.status_code == 403  # one message without its scope refuses the whole batch
