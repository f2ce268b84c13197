"""CORS (R20): the allowlist really refuses — 403 and a logged event, never just missing
headers — for a corpus of hostile origins; preflight answers only what is allowed; edits made
with `mcpadmin cors` reach the running server; production mode refuses unsafe configs."""

from __future__ import annotations

import socket
import ssl
import time

import anyio
import pytest

from tests.redis_server import free_port
from tests.server.conftest import cli_in, new_key
from tests.server.harness import http_client
from tests.server.test_e2e import post

ALLOWED = "https://finops.example.com"

HOSTILE = [
    "null", "NULL", "*", "https://finops.example.com.evil.com", "https://evilfinops.example.com",
    "https://finops.example.com.", "http://finops.example.com", "https://finops.example.com:8443",
    "https://finops.example.com:443", "https://finops.example.com/", "https://finops.example.com/mcp",
    "https://user@finops.example.com", "https://finops.example.com@evil.com",
    "https://FINOPS.EXAMPLE.COM", "https://FinOps.example.com", "HTTPS://finops.example.com",
    "https://finops.example.com%2eevil.com", "https://finops.example.com#", "https://finops.example.com?",
    "https://xn--fnops-3ve.example.com", "https://finops.example.co", "https://finops.example.comm",
    "https://sub.finops.example.com", "wss://finops.example.com", "file://", "https://",
    "https://finops.example.com,https://evil.com",
    "https://finops.example.com https://evil.com", "https://[::1]", "https://127.0.0.1",
]
#: Not even legal header text: the HTTP parser must refuse them (4xx), never admit them.
ILLEGAL_BYTES = ["https://fin\u043eps.example.com".encode(), b"https://finops.example.com\x00",
                 "https://finops.example.com\u2024evil.com".encode()]


def test_allowed_origin_works_and_gets_cors_headers(tls_server, certs, sqlite_env):
    key = new_key(sqlite_env, "cors-ok", "--scope", "tools:read")
    r = post(tls_server, certs, key, headers={"Origin": ALLOWED})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "mcp-session-id" in r.headers["access-control-expose-headers"]
    assert r.headers["vary"] == "Origin"


def _options(server, certs, origin, method="POST", request_headers="authorization, content-type"):
    async def go():
        async with http_client(certs) as http:
            return await http.options(server.url, headers={
                "Origin": origin, "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": request_headers})

    return anyio.run(go)


def test_preflight_answers_only_allowed_origins_methods_and_headers(tls_server, certs):
    ok = _options(tls_server, certs, ALLOWED,
                  request_headers=("authorization, content-type, x-correlation-id, mcp-session-id, "
                                   "mcp-protocol-version"))
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert ok.headers["access-control-allow-methods"] == "POST, OPTIONS"
    allowed_headers = {h.strip() for h in ok.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-correlation-id", "mcp-session-id"} <= allowed_headers
    assert "access-control-allow-credentials" not in ok.headers
    assert _options(tls_server, certs, "https://evil.example").status_code == 403
    assert _options(tls_server, certs, ALLOWED, method="PUT").status_code == 403
    assert _options(tls_server, certs, ALLOWED, request_headers="x-evil").status_code == 403


def test_hostile_origins_are_refused_with_403_and_logged(tls_server, certs, sqlite_env):
    key = new_key(sqlite_env, "cors-hostile", "--scope", "tools:read")
    before = len(tls_server.events())
    for origin in HOSTILE:
        r = post(tls_server, certs, key, headers={"Origin": origin})
        assert r.status_code == 403, origin
        assert "access-control-allow-origin" not in r.headers, origin
    events = tls_server.events()[before:]
    assert [e["event"] for e in events] == ["cors_rejected"] * len(HOSTILE)
    assert [e["origin"] for e in events] == HOSTILE
    assert all(e["client_ip"] == "127.0.0.1" for e in events)


def _raw_request(server, certs, origin: bytes) -> bytes:
    ctx = certs.client_context()
    with (socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
          ctx.wrap_socket(raw, server_hostname="localhost") as tls):
        tls.sendall(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nOrigin: " + origin +
                    b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        data = b""
        try:
            while chunk := tls.recv(4096):
                data += chunk
        except (ssl.SSLError, OSError):
            pass
        return data


@pytest.mark.parametrize("origin", ILLEGAL_BYTES, ids=["cyrillic-o", "nul", "unicode-dot"])
def test_origins_that_are_not_legal_header_text_never_get_through(tls_server, certs, origin):
    response = _raw_request(tls_server, certs, origin)
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1") else 400
    assert 400 <= status < 500


def test_cors_edits_reach_the_running_server(tls_server, certs, sqlite_env):
    key = new_key(sqlite_env, "cors-live", "--scope", "tools:read")
    new = "https://dashboards.example.org"
    assert post(tls_server, certs, key, headers={"Origin": new}).status_code == 403
    assert cli_in(sqlite_env, "cors", "add", new).returncode == 0
    deadline = time.monotonic() + 1.0
    while post(tls_server, certs, key, headers={"Origin": new}).status_code != 200:
        assert time.monotonic() < deadline, "cors add did not reach the server within 1 s"
        time.sleep(0.05)
    assert cli_in(sqlite_env, "cors", "remove", new).returncode == 0
    deadline = time.monotonic() + 1.0
    while post(tls_server, certs, key, headers={"Origin": new}).status_code != 403:
        assert time.monotonic() < deadline, "cors remove did not reach the server within 1 s"
        time.sleep(0.05)


def test_cors_commands_validate_normalise_and_check(cli, backend):
    r = cli("cors", "add", "https://FinOps.Example.com:443/", "http://localhost:3000")
    assert r.code == 0, r.stderr
    listed = cli("cors", "list", "-o", "json").json()
    assert listed == [{"origin": "http://localhost:3000", "source": "store"},
                      {"origin": "https://finops.example.com", "source": "store"}]
    assert cli("cors", "check", "https://finops.example.com").code == 0
    assert cli("cors", "check", "https://FinOps.example.com").code == 1
    assert cli("cors", "check", "null").code == 1
    for bad in ("https://*.example.com", "null", "https://u:p@x.com", "https://x.com/path", "ftp://x.com",
                "https://x.com."):
        before = backend.dump()
        r = cli("cors", "add", bad)
        assert r.code == 2 and r.stderr.count("\n") == 1, bad
        assert backend.dump() == before
    assert cli("cors", "remove", "https://never.example.com").code == 3
    assert cli("cors", "remove", "https://finops.example.com").code == 0
    assert cli("cors", "check", "https://finops.example.com").code == 1
    env_listed = cli("cors", "list", "-o", "json", env={"CORS_ALLOWED_ORIGINS": "https://env.example.com"}).json()
    assert {"origin": "https://env.example.com", "source": "env"} in env_listed
    events = [e["action"] for e in cli("audit", "events", "-o", "json").json()]
    assert events == ["cors_add", "cors_add", "cors_remove"]


@pytest.mark.parametrize("args,env,message", [
    (["--production"], {"CORS_ALLOWED_ORIGINS": "https://a.example.com"}, "needs TLS"),
    (["--production", "--behind-proxy"], {}, "CORS allowlist"),
    (["--production", "--behind-proxy"], {"CORS_ALLOWED_ORIGINS": "*"}, "refuses"),
    (["--behind-proxy"], {"ENVIRONMENT": "production", "CORS_ALLOWED_ORIGINS": "*"}, "refuses"),
    (["--redirect-port", "1"], {}, "needs TLS"),
])
def test_production_mode_refuses_unsafe_configurations(cli, backend, args, env, message):
    r = cli("serve", "--port", str(free_port()), *args, env=env, timeout=30)  # 0 is refused (1-65535)
    assert r.code == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
