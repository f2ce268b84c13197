"""Drive the envelope in-process (fuzzing and unit tests): real store, real verifier, a
recording inner app instead of the MCP SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from finops_mcp_admin.cors import OriginPolicy
from finops_mcp_admin.keys import HashParams, KeyHasher
from finops_mcp_admin.security_events.writer import SecurityEventLog
from finops_mcp_admin.server.app import SecurityEnvelope
from finops_mcp_admin.server.auth import KeyVerifier
from finops_mcp_admin.server.cors import CorsState
from finops_mcp_admin.server.scopes import ScopePolicy
from finops_mcp_admin.server.throttle import FailureThrottle

FAST = HashParams(time_cost=1, memory_cost=1024)


class CountingHasher(KeyHasher):
    """A real argon2 hasher that counts verifications (to prove what never reaches argon2)."""

    def __init__(self, params: HashParams = FAST) -> None:
        super().__init__(params)
        self.verifications = 0

    def verify(self, phc, token):
        self.verifications += 1
        return super().verify(phc, token)


@dataclass
class Recorder:
    """The protected app: records who got through."""

    admitted: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.admitted.append({"user": scope.get("user"), "body": body})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def make_envelope(store, tmp_path, origins=("https://ok.example.com",), **kw):
    hasher = kw.pop("hasher", None) or CountingHasher()
    verifier = KeyVerifier(store, hasher, kw.pop("static", None))
    events = SecurityEventLog(to_stdout=False, path=str(tmp_path / "events.jsonl"))
    inner = Recorder()
    envelope = SecurityEnvelope(inner, verifier=verifier, events=events,
                                cors=CorsState(OriginPolicy(frozenset(origins))),
                                throttle=kw.pop("throttle", FailureThrottle(1_000_000, 60)),
                                scopes=kw.pop("scopes", ScopePolicy({"write_tool": "tools:write"})),
                                **kw)
    return envelope, inner, hasher


PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


async def call(app, method="POST", path="/mcp", headers=None, body=PING, client="10.0.0.1"):
    """One HTTP request through the ASGI app; returns (status, headers, body)."""
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1") if isinstance(v, str) else v)
                   for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw_headers,
             "client": (client, 5555), "scheme": "https", "query_string": b"", "http_version": "1.1"}
    sent = False
    out: dict[str, Any] = {"status": None, "headers": {}, "body": b""}

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode().lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
        else:
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"]
