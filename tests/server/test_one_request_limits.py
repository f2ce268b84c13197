"""No 5xx and no stall from one request (issue 11, point 7), each against a real `mcpadmin serve`:
a deeply nested body, a non-Latin-1 path on the redirect port, a backtracking regex in the
tagging policy, slow headers, a TLS connection that never says hello, and too many connections."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator

import anyio
import pytest

from tests.redis_server import free_port
from tests.server.conftest import new_key
from tests.server.harness import Certs, ServerProcess, mcp_session
from tests.server.test_e2e import INIT, post

EVIL = "(a+)+$"  # Python's re backtracks 2^n on "aaa…a!"


@pytest.fixture(scope="module")
def guarded_server(certs: Certs, sqlite_env: dict[str, str], tmp_path_factory) -> Iterator[ServerProcess]:
    """A TLS server with a redirect port and one-second head and handshake deadlines."""
    redirect = free_port()
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--redirect-port", str(redirect), "--max-failures", "1000",
                            "--header-timeout", "1", "--handshake-timeout", "1"],
                           sqlite_env, tmp_path_factory.mktemp("guarded") / "events.jsonl",
                           extra_ports={"redirect": redirect}).start()
    yield server
    server.stop()


def _deep(depth: int, call: bool) -> bytes:
    head = b'{"jsonrpc": "2.0", "id": 1, "method": "' + (b"tools/call" if call else b"ping")
    return head + b'", "params": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


@pytest.mark.parametrize("call", [True, False], ids=["tools-call", "other-method"])
def test_a_200k_deep_json_body_gets_400_not_500(guarded_server, certs, sqlite_env, call):
    key = new_key(sqlite_env, f"deep-{call}", "--scope", "tools:read")

    async def send() -> tuple[int, dict]:
        from tests.server.harness import http_client
        from tests.server.test_e2e import HEADERS

        async with http_client(certs, key, headers=HEADERS) as http:
            r = await http.post(guarded_server.url, content=_deep(200_000, call))
            return r.status_code, r.json()

    assert anyio.run(send) == (400, {"error": "invalid_request"})
    event = guarded_server.events()[-1]
    assert event["event"] == "bad_request" and "nested deeper than 128" in event["reason"]
    assert post(guarded_server, certs, key).status_code == 200  # and the server is fine


def test_nesting_within_the_bound_and_brackets_in_strings_still_pass(guarded_server, certs, sqlite_env):
    key = new_key(sqlite_env, "nested-ok", "--scope", "tools:read")
    init = json.loads(json.dumps(INIT))
    init["params"]["clientInfo"]["name"] = "[" * 5000 + "{" * 5000 + '\\"['  # scanned, not nesting
    init["params"]["capabilities"] = {"experimental": {"x": json.loads("[" * 120 + "]" * 120)}}
    assert post(guarded_server, certs, key, init).status_code == 200


def _raw(port: int, request: bytes, tls: ssl.SSLContext | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        s = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        s.sendall(request)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return data


def test_a_non_latin1_path_on_the_redirect_port_gets_400(guarded_server):
    port = guarded_server.extra_ports["redirect"]
    reply = _raw(port, b"GET /caf%C3%A9/%E2%82%AC HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400") and b"bad_path" in reply
    ok = _raw(port, b"GET /fine HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 308")


def test_a_backtracking_policy_pattern_matches_in_linear_time(guarded_server, certs, sqlite_env):
    writer = new_key(sqlite_env, "regex-writer", "--scope", "tools:read", "--scope", "tools:write")

    async def session() -> tuple[dict, bool, bool]:
        async with mcp_session(guarded_server.url, certs, writer) as s:
            original = (await s.call_tool("get_tagging_policy", {})).structured_content
            evil = {"required_tags": [{"key": "Team", "pattern": EVIL}]}
            backref = {"required_tags": [{"key": "Team", "pattern": r"(a)\1"}]}
            refused = await s.call_tool("update_tagging_policy", {"new_policy": backref})
            kept = (await s.call_tool("get_tagging_policy", {})).structured_content == original
            try:
                await s.call_tool("update_tagging_policy", {"new_policy": evil})
                # A guard only: Python's re takes hours on this value (2^40 paths), RE2 microseconds.
                with anyio.fail_after(30):
                    result = await s.call_tool("validate_resource_tags", {
                        "resource_type": "x", "tags": {"Team": "a" * 40 + "!"}})
            finally:
                await s.call_tool("update_tagging_policy", {"new_policy": original})
            return result.structured_content, refused.is_error, kept

    result, refused, kept = anyio.run(session)
    assert result["compliant"] is False
    assert result["violations"] == [{"tag": "Team", "problem": f"value does not match {EVIL}"}]
    assert refused and kept  # a backreference is not RE2: refused, the policy unchanged


@pytest.mark.parametrize("listener", ["https", "redirect"])
def test_a_client_sending_headers_a_byte_at_a_time_is_disconnected(guarded_server, certs, listener):
    tls = certs.client_context() if listener == "https" else None
    port = guarded_server.port if listener == "https" else guarded_server.extra_ports["redirect"]
    head = b"GET /health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: " + b"s" * 60 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        s = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        sent, closed = 0, False
        for sent in range(len(head) - 1):  # never the final byte: the head is never complete
            try:
                s.sendall(head[sent:sent + 1])
            except OSError:
                closed = True
                break
            time.sleep(0.25)
            s.settimeout(0.001)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except (TimeoutError, ssl.SSLWantReadError, BlockingIOError):
                pass
            except OSError:
                closed = True
                break
            finally:
                s.settimeout(10)
    assert closed and sent < len(head) - 2, "the server kept a never-finished request head open"


def test_a_tls_connection_that_never_handshakes_is_closed(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port), timeout=30) as s:
        # Without a deadline asyncio waits 60 s: this recv would time out (the test fails).
        assert s.recv(1) == b""


def test_connections_over_the_cap_get_503(sqlite_env, tmp_path):
    server = ServerProcess(["--max-connections", "2", "--header-timeout", "30"], sqlite_env,
                           tmp_path / "events.jsonl", tls=False).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as a:
            a.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert a.recv(4096).startswith(b"HTTP/1.1 200")  # kept alive
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as b:
                b.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert b.recv(4096).startswith(b"HTTP/1.1 200")  # both held open: the cap is full
                busy = _raw(server.port, b"")  # refused at connect, before any request is read
                assert busy.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in busy
        deadline = time.monotonic() + 10
        while not (reply := _raw(server.port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n"
                                              b"Connection: close\r\n\r\n")).startswith(b"HTTP/1.1 200"):
            assert time.monotonic() < deadline, reply  # the slots free when the two close
            time.sleep(0.05)
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {"status": "ok"}
    finally:
        server.stop()
