"""The bridge under hostile or broken conditions (issue 11, point 8), in real processes: a
plaintext proxy in the environment, a first connection that fails under a burst of requests,
an oversized response, an event stream of keep-alives only, an upstream error that echoes the
key; and `--version` on both entry points."""

from __future__ import annotations

import http.server
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import anyio
import pytest

from finops_mcp_admin import __version__
from finops_mcp_admin.keys import generate_token
from tests.bridge.harness import ROOT, bridged_session
from tests.bridge.test_bridge import bridge_env, call_error, leaked
from tests.redis_server import free_port
from tests.server.conftest import new_key
from tests.server.harness import ServerProcess

INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}}


class _RecordingProxy:
    """A forward proxy that records every byte it is sent and answers 502."""

    def __init__(self) -> None:
        self.received = b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.received += conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()


def test_an_http_proxy_never_sees_the_key_of_an_http_url(sqlite_env, tmp_path):
    key = new_key(sqlite_env, "proxy-victim", "--scope", "tools:read")
    server = ServerProcess([], sqlite_env, tmp_path / "events.jsonl", tls=False).start()
    proxy = _RecordingProxy()
    try:
        async def go() -> set[str]:
            env = bridge_env(key, HTTP_PROXY=f"http://127.0.0.1:{proxy.port}",
                             ALL_PROXY=f"http://127.0.0.1:{proxy.port}")
            async with bridged_session(f"http://127.0.0.1:{server.port}/mcp", env, tmp_path / "err",
                                       "--allow-http") as s:
                return {t.name for t in (await s.list_tools()).tools}

        assert "whoami" in anyio.run(go)  # reached the server directly
        assert proxy.received == b""  # the proxy got nothing, the key least of all
        assert "ignoring HTTP_PROXY" in (tmp_path / "err").read_text()
    finally:
        proxy.close()
        server.stop()


def _bridge(url: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "finops_mcp_admin", "bridge", url, "--allow-http"],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **env})


_unread: dict[int, bytes] = {}  # pid -> bytes read from its stdout past the last whole line


def _read_messages(proc: subprocess.Popen, count: int, wait: float = 20.0) -> list[dict]:
    """The next `count` JSON lines on the bridge's stdout (fewer if `wait` runs out). It reads
    the pipe itself: select() sees only the pipe, so lines that a buffered readline() had
    already taken into Python's buffer were never seen (two answers in one chunk: the second
    "went missing" under load)."""
    out: list[dict] = []
    buffer = _unread.pop(proc.pid, b"")
    deadline = time.monotonic() + wait
    while len(out) < count:
        if b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            out.append(json.loads(line))
            continue
        if time.monotonic() >= deadline:
            break
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
    _unread[proc.pid] = buffer
    return out


@pytest.mark.parametrize("attempt", range(3))  # it crashed 3 times out of 4
def test_a_failed_first_connection_answers_every_pending_request_and_keeps_running(tmp_path, attempt):
    canary = generate_token()[1].reveal()
    proc = _bridge(f"http://127.0.0.1:{free_port()}/mcp", {"MCP_API_KEY": canary, "MCP_TIMEOUT": "10"})
    try:
        burst = [INIT] + [{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(1, 6)]
        proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in burst))
        proc.stdin.flush()
        first = _read_messages(proc, 6)
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "ping"}).encode() + b"\n")
        proc.stdin.flush()
        later = _read_messages(proc, 1)
        assert proc.poll() is None, "the bridge exited"
        assert sorted(m["id"] for m in first) == [0, 1, 2, 3, 4, 5]  # each answered exactly once
        assert [m["id"] for m in later] == [99]
        assert all("cannot connect" in m["error"]["message"] for m in first + later), first + later
    finally:
        proc.stdin.close()
        proc.wait(15)
    assert proc.returncode == 0
    assert not leaked(canary, proc.stderr.read().decode())


class _Hostile(http.server.BaseHTTPRequestHandler):
    """A fake MCP server: `mode` picks the misbehaviour."""

    mode = "big"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        if "id" not in request:
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if self.mode == "keepalive":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            try:
                for _ in range(600):  # a minute of ": ping" comments, never an event
                    self.wfile.write(b": ping\n\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return
            return
        if self.mode == "big":
            body = {"jsonrpc": "2.0", "id": request["id"], "result": {"padding": "x" * 2_000_000}}
        else:  # echo: an error whose data repeats the request headers, Authorization included
            body = {"jsonrpc": "2.0", "id": request["id"], "error": {
                "code": -32000, "message": f"denied {self.headers['authorization']}",
                "data": {"headers": dict(self.headers), "nested": [self.headers["authorization"]]}}}
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[type[_Hostile]]:
    handler = type("Handler", (_Hostile,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    handler.url = f"http://127.0.0.1:{httpd.server_address[1]}/mcp"  # type: ignore[attr-defined]
    yield handler
    httpd.shutdown()


def test_a_response_over_the_size_cap_is_an_error_and_the_bridge_keeps_running(hostile, tmp_path):
    hostile.mode = "big"
    proc = _bridge(hostile.url, {"MCP_API_KEY": generate_token()[1].reveal(),
                                 "MCP_MAX_RESPONSE_BYTES": "1000000"})
    try:
        for rid in (1, 2):
            proc.stdin.write(json.dumps({**INIT, "id": rid}).encode() + b"\n")
            proc.stdin.flush()
            [reply] = _read_messages(proc, 1)
            assert reply["id"] == rid and "MCP_MAX_RESPONSE_BYTES" in reply["error"]["message"]
        assert proc.poll() is None
    finally:
        proc.stdin.close()
        proc.wait(15)


def test_mcp_timeout_ends_a_stream_of_keep_alive_comments(hostile, tmp_path):
    hostile.mode = "keepalive"

    async def go() -> None:
        with anyio.fail_after(40):  # a guard: without the fix the stream runs for a minute
            async with bridged_session(hostile.url, bridge_env(generate_token()[1].reveal(),
                                                               MCP_TIMEOUT="1"),
                                       tmp_path / "err", "--allow-http"):
                pass

    _code, message = call_error(go)
    assert "within MCP_TIMEOUT (1 s)" in message


def test_the_key_is_redacted_from_every_field_of_an_upstream_error(hostile, tmp_path):
    hostile.mode = "echo"
    canary = generate_token()[1].reveal()
    proc = _bridge(hostile.url, {"MCP_API_KEY": canary})
    try:
        proc.stdin.write(json.dumps(INIT).encode() + b"\n")
        proc.stdin.flush()
        [reply] = _read_messages(proc, 1)
    finally:
        proc.stdin.close()
        proc.wait(15)
    error = reply["error"]
    assert error["message"] == "denied Bearer ***" and error["data"]["nested"] == ["Bearer ***"]
    assert not leaked(canary, json.dumps(reply), proc.stderr.read().decode())


STANDALONE = "from finops_mcp_admin.cli.bridge import main; main()"  # the finops-mcp-bridge script


@pytest.mark.parametrize("argv", [["-m", "finops_mcp_admin", "bridge", "--version"],
                                  ["-c", STANDALONE, "--version"]],
                         ids=["mcpadmin-bridge", "finops-mcp-bridge"])
def test_version_on_both_entry_points(argv):
    r = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0 and r.stdout == f"finops-mcp-bridge {__version__}\n" and r.stderr == ""
