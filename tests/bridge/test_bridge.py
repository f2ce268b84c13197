"""The bridge in real processes: the official MCP stdio client launches `mcpadmin bridge`,
which talks to `mcpadmin serve` over verified HTTPS. The canary key never leaks on any path."""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time

import anyio
import pytest

from finops_mcp_admin.keys import generate_token
from tests.bridge.harness import ROOT, bridged_session
from tests.redis_server import free_port
from tests.server.conftest import new_key
from tests.server.harness import ServerProcess, make_certs


def bridge_env(key: str, ca: str | None = None, **extra: str) -> dict[str, str]:
    env = {"MCP_API_KEY": key, "MCP_TIMEOUT": "10", **extra}
    if ca:
        env["MCP_CA_BUNDLE"] = ca
    return env


def leaked(key: str, *texts: str) -> bool:
    secret = key[18:] if key.startswith("mcpk_") else key
    return any(key in t or secret in t for t in texts)


def call_error(session_coro_factory):
    """Run and return the MCPError text the client received."""
    from mcp.shared.exceptions import MCPError

    def find(exc):
        if isinstance(exc, MCPError):
            return exc
        for sub in getattr(exc, "exceptions", ()):
            if (found := find(sub)) is not None:
                return found
        return None

    async def go():
        try:
            await session_coro_factory()
        except BaseException as exc:
            found = find(exc)
            if found is None:
                raise
            return found.error.code, found.error.message
        pytest.fail("the call did not fail")

    return anyio.run(go)


def test_initialize_list_and_call_through_the_bridge(tls_server, certs, sqlite_env, tmp_path):
    key = new_key(sqlite_env, "bridge-user", "--scope", "tools:read")

    async def go():
        async with bridged_session(tls_server.url, bridge_env(key, str(certs.ca_file)),
                                   tmp_path / "err") as s:
            tools = {t.name for t in (await s.list_tools()).tools}
            me = (await s.call_tool("whoami", {})).structured_content
            return tools, me

    tools, me = anyio.run(go)
    assert "validate_resource_tags" in tools and me["key_id"] == key[5:17]
    assert not leaked(key, (tmp_path / "err").read_text())


def test_wrong_key_gets_an_authentication_failed_error_and_never_leaks(tls_server, certs, tmp_path):
    canary = generate_token()[1].reveal()

    async def go():
        async with bridged_session(tls_server.url, bridge_env(canary, str(certs.ca_file)),
                                   tmp_path / "err"):
            pass

    code, message = call_error(go)
    assert code == -32001 and "authentication failed" in message and "MCP_API_KEY" in message
    assert not leaked(canary, message, (tmp_path / "err").read_text())


def test_missing_scope_is_named(tls_server, certs, sqlite_env, tmp_path):
    key = new_key(sqlite_env, "bridge-ro", "--scope", "tools:read")

    async def go():
        env = bridge_env(key, str(certs.ca_file))
        async with bridged_session(tls_server.url, env, tmp_path / "err") as s:
            await s.call_tool("update_tagging_policy", {"new_policy": {}})

    code, message = call_error(go)
    assert code == -32003 and "'tools:write'" in message
    assert not leaked(key, message, (tmp_path / "err").read_text())


def test_default_trust_store_rejects_the_private_ca(tls_server, sqlite_env, tmp_path):
    key = new_key(sqlite_env, "bridge-notrust", "--scope", "tools:read")

    async def go():
        async with bridged_session(tls_server.url, bridge_env(key), tmp_path / "err"):
            pass

    _code, message = call_error(go)
    assert "TLS certificate verification failed" in message and "MCP_CA_BUNDLE" in message
    assert not leaked(key, message, (tmp_path / "err").read_text())


def test_certificate_for_another_hostname_is_rejected(certs, sqlite_env, tmp_path):
    other = make_certs(tmp_path / "other", "other.example.com")
    key = new_key(sqlite_env, "bridge-hostname", "--scope", "tools:read")
    server = ServerProcess(["--tls-cert", str(other.cert_file), "--tls-key", str(other.key_file)],
                           sqlite_env, tmp_path / "events.jsonl").start()
    try:
        async def go():
            async with bridged_session(server.url, bridge_env(key, str(other.ca_file)), tmp_path / "err"):
                pass

        _code, message = call_error(go)
        assert "TLS certificate verification failed" in message and "localhost" in message
        assert not leaked(key, message, (tmp_path / "err").read_text())
    finally:
        server.stop()


@pytest.mark.parametrize("url,allow", [("http://mcp.example.com/mcp", True),
                                       ("http://10.0.0.5:8080/mcp", True),
                                       ("http://127.0.0.1:9/mcp", False),
                                       ("ftp://127.0.0.1/mcp", True)])
def test_plain_http_is_refused_except_loopback_with_allow_http(url, allow, tmp_path):
    canary = generate_token()[1].reveal()
    r = subprocess.run([sys.executable, "-m", "finops_mcp_admin", "bridge", url,
                        *(["--allow-http"] if allow else [])], capture_output=True, text=True,
                       env={**os.environ, "MCP_API_KEY": canary}, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert not leaked(canary, r.stderr, r.stdout)


def test_connection_refused_is_reported_and_the_bridge_keeps_running(tmp_path):
    canary = generate_token()[1].reveal()
    url = f"http://127.0.0.1:{free_port()}/mcp"

    async def go():
        from mcp.shared.exceptions import MCPError

        messages = []
        async with bridged_session(url, bridge_env(canary), tmp_path / "err", "--allow-http",
                                   initialize=False) as s:
            for _ in range(2):  # the bridge survives the first failure
                with pytest.raises(MCPError) as info:
                    await s.initialize()
                messages.append(info.value.error.message)
        return messages

    messages = anyio.run(go)
    assert all("cannot connect" in m for m in messages)
    assert not leaked(canary, *messages, (tmp_path / "err").read_text())


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b"<html>definitely not JSON-RPC</html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_malformed_server_response_is_an_error_not_a_crash(certs, tmp_path):
    canary = generate_token()[1].reveal()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs.cert_file), str(certs.key_file))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"https://localhost:{httpd.server_address[1]}/mcp"
    try:
        async def go():
            async with bridged_session(url, bridge_env(canary, str(certs.ca_file)), tmp_path / "err"):
                pass

        _code, message = call_error(go)
        assert "content type" in message.lower()
        assert not leaked(canary, message, (tmp_path / "err").read_text())
    finally:
        httpd.shutdown()


@pytest.fixture
def slow_server(certs, sqlite_env, tmp_path):
    port = free_port()
    args = ["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
            "--app", "tests.server.external_app:app",
            # A wrapped app's tools are refused unless mapped (deny by default).
            "--tool-scope", "cost_report=tools:read", "--tool-scope", "slow_report=tools:read"]
    server = ServerProcess(args, sqlite_env, tmp_path / "events.jsonl", port=port).start()
    yield server
    server.stop()


def test_server_killed_mid_call_then_restarted(slow_server, certs, sqlite_env, tmp_path):
    key = new_key(sqlite_env, "bridge-restart", "--scope", "tools:read")
    from mcp.shared.exceptions import MCPError

    async def go():
        env = bridge_env(key, str(certs.ca_file))
        async with bridged_session(slow_server.url, env, tmp_path / "err") as s:
            assert (await s.call_tool("cost_report", {"month": "2026-10"})).content
            async def kill_soon():
                await anyio.sleep(1.0)
                slow_server.proc.kill()
            async with anyio.create_task_group() as tg:
                tg.start_soon(kill_soon)
                with pytest.raises(MCPError) as info:
                    await s.call_tool("slow_report", {"seconds": 10})
            failure = info.value.error.message
            slow_server.proc.wait()
            slow_server.start()  # same port, new process: the old session is gone
            after = await s.call_tool("cost_report", {"month": "2026-11"})
            slow_server.stop()
            slow_server.start()  # again, and now two calls are in flight when the session is gone
            results = []

            async def one(month):
                results.append(await s.call_tool("cost_report", {"month": month}))

            async with anyio.create_task_group() as tg:
                tg.start_soon(one, "2026-09")
                tg.start_soon(one, "2026-08")
            return failure, after, results

    failure, after, results = anyio.run(go)
    assert "1234.5" in after.content[0].text  # succeeded without restarting the bridge
    assert len(results) == 2 and all("1234.5" in r.content[0].text for r in results)
    assert not leaked(key, failure, (tmp_path / "err").read_text())


def test_bridge_exits_cleanly_when_stdin_closes(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "finops_mcp_admin", "bridge",
                             "https://localhost:9/mcp"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "MCP_API_KEY": "x" * 40})
    time.sleep(1.5)
    with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:  # the process title never holds the key
        assert b"x" * 40 not in fh.read()
    proc.stdin.close()
    assert proc.wait(timeout=15) == 0
    assert "Traceback" not in proc.stderr.read().decode()


def test_config_snippet_uses_a_placeholder_unless_asked(cli):
    r = cli("bridge", "config", "--url", "https://mcp.example.com/mcp", "--name", "finops")
    assert r.code == 0
    snippet = json.loads(r.stdout)["mcpServers"]["finops"]
    assert snippet["command"].endswith("finops-mcp-bridge") and snippet["args"] == []
    assert snippet["env"]["MCP_SERVER_URL"] == "https://mcp.example.com/mcp"
    assert snippet["env"]["MCP_API_KEY"].startswith("<")
    key = generate_token()[1].reveal()
    embedded = cli("bridge", "config", "--url", "https://mcp.example.com/mcp", "--key-from-stdin", stdin=key)
    assert json.loads(embedded.stdout)["mcpServers"]["finops"]["env"]["MCP_API_KEY"] == key
    assert cli("bridge", "config", "--url", "http://mcp.example.com/mcp").code == 2
