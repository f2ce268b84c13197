"""A JSON-RPC request id already in flight in a session is refused (400, a bad_request event)
before the app sees it. The MCP SDK keys a request's answer by `str(id)`: a second request with
the id took the first one's answer, and the first waited for ever, holding its task and its
session. The envelope runs in-process here around an app that holds requests until released,
so "in flight" is certain; tests/server/test_tools.py does it over HTTP with the SDK."""

from __future__ import annotations

import json

import anyio
import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.security_events.writer import SecurityEventLog
from finops_mcp_admin.server.auth import KeyVerifier
from finops_mcp_admin.server.scopes import request_ids
from finops_mcp_admin.server.sessions import SessionRegistry
from finops_mcp_admin.store.sqlite import SqliteStore
from tests.server.asgi import FAST, CountingHasher, call, make_envelope

SESSION = "s" * 32


class HoldingApp:
    """Opens a session on a POST without one; holds every other request until released."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.held = 0

    async def __call__(self, scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        headers = dict(scope["headers"])
        if b"mcp-session-id" not in headers:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"mcp-session-id", SESSION.encode())]})
        else:
            self.held += 1
            await self.release.wait()
            self.held -= 1
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def envelope(tmp_path):
    """The envelope with a session registry around HoldingApp (the envelope's own bookkeeping:
    one store is enough)."""
    store = SqliteStore(f"sqlite:///{tmp_path / 'keys.db'}")
    key = lifecycle.create_key(store, CountingHasher(), name="ids", actor="t", now=utcnow(),
                               scopes=["tools:read"]).token.reveal()
    registry = SessionRegistry(SecurityEventLog(to_stdout=False, path=str(tmp_path / "s.jsonl")),
                               KeyVerifier(store, CountingHasher(FAST)))
    app, _, _ = make_envelope(store, tmp_path, sessions=registry)
    app.app = HoldingApp()
    try:
        yield app, key, tmp_path / "events.jsonl"
    finally:
        registry.close()
        store.close()


def body(id_, method="ping"):
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method}).encode()


def test_ids_are_keyed_as_the_sdk_keys_answers():
    pings = [{"jsonrpc": "2.0", "id": id_, "method": "ping"} for id_ in (9, 9.0, "9", True, 9.5)]
    messages = [*pings, {"jsonrpc": "2.0", "method": "notifications/initialized"},  # not a request
                {"jsonrpc": "2.0", "id": 4, "result": {}}]  # a response to the server: not ours
    assert request_ids(messages) == ("9", "9", "9", "1", "9.5")


def test_an_id_in_flight_is_refused_and_free_again_once_answered(envelope):
    app, key, events_path = envelope
    auth = {"Authorization": f"Bearer {key}"}
    in_session = {**auth, "Mcp-Session-Id": SESSION}
    statuses: dict[str, int] = {}

    async def go():
        assert (await call(app, headers=auth, body=body(1, "initialize")))[0] == 200  # opens SESSION

        async def held(name, id_):
            statuses[name] = (await call(app, headers=in_session, body=body(id_)))[0]

        async with anyio.create_task_group() as tg:
            tg.start_soon(held, "first", 9)
            tg.start_soon(held, "other id", 10)
            while app.app.held < 2:
                await anyio.sleep(0.001)
            for spelling in (9, 9.0, "9"):  # the SDK keys answers by str(id); 9.0 is counted as 9
                assert (await call(app, headers=in_session, body=body(spelling)))[0] == 400
            batch = json.dumps([json.loads(body(11)), json.loads(body(11))]).encode()
            assert (await call(app, headers=in_session, body=batch))[0] == 400  # repeats itself
            assert app.app.held == 2  # the refused never reached the app
            app.app.release.set()
        statuses["again"] = (await call(app, headers=in_session, body=body(9)))[0]

    anyio.run(go)
    assert statuses == {"first": 200, "other id": 200, "again": 200}
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    refused = [e for e in events if e["event"] == "bad_request"]
    assert [e["reason"] for e in refused] == ["JSON-RPC request id already in flight in this session"] * 3 + [
        "JSON-RPC batch repeats a request id"]
    assert all(e["key_id"] == key[5:17] for e in refused)


def test_the_same_id_in_another_session_or_without_one_is_not_a_conflict(envelope):
    app, key, _ = envelope
    auth = {"Authorization": f"Bearer {key}"}

    async def go():
        assert (await call(app, headers=auth, body=body(1, "initialize")))[0] == 200
        statuses = []

        async def held(headers):
            statuses.append((await call(app, headers=headers, body=body(9)))[0])

        async with anyio.create_task_group() as tg:
            tg.start_soon(held, {**auth, "Mcp-Session-Id": SESSION})
            while app.app.held < 1:
                await anyio.sleep(0.001)
            # A session the registry does not know is the app's to refuse (404 from the SDK).
            tg.start_soon(held, {**auth, "Mcp-Session-Id": "t" * 32})
            while app.app.held < 2:
                await anyio.sleep(0.001)
            app.app.release.set()
        return statuses

    assert anyio.run(go) == [200, 200]
