"""Transport (R18): TLS 1.0/1.1 refused and 1.2/1.3 accepted by the server (the client is made
willing to speak the old versions, and a permissive local server proves it can), the redirect
listener answers 308 and refuses /mcp, plaintext to the TLS port gets no HTTP answer, and
X-Forwarded-* are believed only from a trusted proxy."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.request

import pytest

from tests.server.conftest import new_key
from tests.server.harness import ServerProcess
from tests.server.test_e2e import HEADERS, INIT

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")

OLD = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1}
NEW = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _client_ctx(certs, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    certs.ca.configure_trust(ctx)
    ctx.minimum_version = ctx.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the *client* offer the old protocol
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> tuple[str, str]:
    with (socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
          ctx.wrap_socket(raw, server_hostname="localhost") as tls):
        return tls.version(), tls.cipher()[0]


@pytest.fixture(scope="module")
def permissive_tls_port(certs):
    """A deliberately weak local TLS server: proves our client can speak TLS 1.0/1.1 here, so
    a failed handshake with mcpadmin serve is the server's refusal, not the client's."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certs.cert_file), str(certs.key_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                if listener.fileno() == -1:
                    return

    threading.Thread(target=serve, daemon=True).start()
    yield port
    listener.close()


@pytest.mark.parametrize("name", sorted(OLD))
def test_tls_1_0_and_1_1_handshakes_fail(tls_server, certs, permissive_tls_port, name):
    ctx = _client_ctx(certs, OLD[name])
    assert _handshake(permissive_tls_port, ctx)[0] == name  # positive control
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _handshake(tls_server.port, _client_ctx(certs, OLD[name]))


@pytest.mark.parametrize("name", sorted(NEW))
def test_tls_1_2_and_1_3_succeed_with_strong_suites(tls_server, certs, name):
    version, cipher = _handshake(tls_server.port, _client_ctx(certs, NEW[name]))
    assert version == name
    if name == "TLSv1.2":
        assert cipher.startswith(("ECDHE-", "DHE-")) and ("GCM" in cipher or "CHACHA20" in cipher)


def test_weak_tls12_suites_are_refused(tls_server, certs):
    ctx = _client_ctx(certs, ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("AES128-SHA:AES256-SHA:DES-CBC3-SHA")  # no forward secrecy, CBC/SHA1
    with pytest.raises(ssl.SSLError):
        _handshake(tls_server.port, ctx)


def _plain_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except OSError:
            pass
        return data


def test_redirect_listener_answers_308_to_https(tls_server):
    port = tls_server.extra_ports["redirect"]
    reply = _plain_http(port, b"GET /health?probe=1 HTTP/1.1\r\nHost: localhost:9\r\n"
                              b"Connection: close\r\n\r\n")
    head = reply.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 308")
    assert f"location: https://localhost:{tls_server.port}/health?probe=1" in head.lower()


def test_plain_http_to_mcp_is_refused_not_redirected(tls_server, sqlite_env):
    key = new_key(sqlite_env, "plaintext-victim", "--scope", "tools:read")
    port = tls_server.extra_ports["redirect"]
    body = json.dumps(INIT).encode()
    reply = _plain_http(port, b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " +
                        key.encode() + b"\r\nContent-Length: " + str(len(body)).encode() +
                        b"\r\nConnection: close\r\n\r\n" + body)
    assert reply.startswith(b"HTTP/1.1 403")
    event = tls_server.events()[-1]
    assert event["event"] == "plaintext_refused" and event["path"] == "/mcp"
    assert key not in json.dumps(event)


def test_plaintext_to_the_tls_port_gets_no_http_answer(tls_server):
    reply = _plain_http(tls_server.port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert b"HTTP/1.1 200" not in reply and b"ok" not in reply


@pytest.fixture(scope="module")
def proxied_server(sqlite_env, tmp_path_factory):
    """Behind an 'ALB' on 127.0.0.1: plain HTTP here, X-Forwarded-* trusted from loopback."""
    log = tmp_path_factory.mktemp("proxied") / "events.jsonl"
    server = ServerProcess(["--behind-proxy", "--trusted-proxy", "127.0.0.1/32"], sqlite_env, log,
                           tls=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def direct_server(sqlite_env, tmp_path_factory):
    """No trusted proxy: X-Forwarded-* must be ignored."""
    log = tmp_path_factory.mktemp("direct") / "events.jsonl"
    server = ServerProcess([], sqlite_env, log, tls=False).start()
    yield server
    server.stop()


def _post_plain(server, headers):
    req = urllib.request.Request(server.url, data=json.dumps(INIT).encode(), method="POST",
                                 headers={**HEADERS, **headers})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_forwarded_headers_are_trusted_only_from_the_configured_proxy(proxied_server, direct_server):
    spoof = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    assert _post_plain(proxied_server, spoof) == 401
    assert proxied_server.events()[-1]["client_ip"] == "203.0.113.7"
    assert _post_plain(direct_server, spoof) == 401
    assert direct_server.events()[-1]["client_ip"] == "127.0.0.1"


def test_behind_proxy_plain_http_to_mcp_is_refused(proxied_server):
    assert _post_plain(proxied_server, {"X-Forwarded-For": "203.0.113.8", "X-Forwarded-Proto": "http"}) == 403
    event = proxied_server.events()[-1]
    assert event["event"] == "plaintext_refused" and event["client_ip"] == "203.0.113.8"
