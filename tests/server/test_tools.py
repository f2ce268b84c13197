"""The built-in FinOps server (server/tools.py) answers each request POST with one JSON body: the
official client keeps its connection, the access trail still reads each call's outcome, the
session's GET event stream stays; and no built-in tool can say anything before its result, which
JSON mode would drop."""

from __future__ import annotations

import asyncio
import json
import time
import types
from typing import Any

import anyio

from finops_mcp_admin.server import tools
from finops_mcp_admin.server.tools import PolicyHolder, build_mcp_server
from tests.server.conftest import new_key
from tests.server.harness import connections_per_calls, http_client
from tests.server.test_e2e import HEADERS, INIT

PV = {"mcp-protocol-version": "2025-11-25"}
#: What whoami reads of its Context: the HTTP request (for the envelope's scope["user"]).
READS = {"request_context", "request"}


def _members(cls: type) -> set[str]:
    """The names the SDK class itself defines (not pydantic's or object's), fields included."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("mcp."):
            names |= set(vars(klass)) | set(getattr(klass, "__annotations__", {}))
    return {n for n in names if not n.startswith("__")}


def _names_used(code: types.CodeType) -> set[str]:
    """Attribute and global names a function's code uses, with its nested code (comprehensions,
    inner functions) and the functions of server/tools.py it calls by name."""
    names, seen, todo = set(), set(), [code]
    while todo:
        code = todo.pop()
        if code in seen:
            continue
        seen.add(code)
        names |= set(code.co_names)
        todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        todo += [f.__code__ for n in code.co_names if isinstance(f := getattr(tools, n, None),
                                                                 types.FunctionType)]
    return names


def _speaking_surface() -> set[str]:
    """What a tool could send through before its result: the members of the tool Context, the
    request context and the session (progress, log, elicit, sampling, notify_*, send_*...)."""
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import Context
    from mcp.server.session import ServerSession

    return (_members(Context) | _members(ServerRequestContext) | _members(ServerSession)) - READS


def call(id_: int, name: str, **args: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": "tools/call",
                       "params": {"name": name, "arguments": args}})


async def open_session(http, url: str) -> tuple[Any, dict[str, str], Any]:
    """initialize, then notifications/initialized: (the first answer, the session's headers,
    the second answer)."""
    init = await http.post(url, content=json.dumps(INIT))
    session = {"mcp-session-id": init.headers["mcp-session-id"], **PV}
    note = await http.post(url, headers=session, content=json.dumps(
        {"jsonrpc": "2.0", "method": "notifications/initialized"}))
    return init, session, note


def test_no_built_in_tool_can_send_anything_before_its_json_result():
    # JSON mode (build_mcp_app) drops a tool's progress and log notifications and refuses its
    # own requests: a tool that needs them must not be built in, or the server must stream.
    speaking = _speaking_surface()
    assert {"report_progress", "log", "info", "elicit", "session", "send_log_message",
            "create_message"} <= speaking

    async def reports_progress(ctx: Any) -> str:  # what the check must catch
        await ctx.report_progress(1, 2)
        return "done"

    assert _names_used(reports_progress.__code__) & speaking == {"report_progress"}
    found = build_mcp_server(PolicyHolder(None))._tool_manager.list_tools()  # the SDK's registry
    assert {t.name for t in found} == {*tools.READ_TOOLS, *tools.WRITE_TOOLS}
    assert {t.name for t in found if t.context_kwarg} == {"whoami"}  # so the check reads a Context
    for tool in found:
        used = _names_used(tool.fn.__code__) & speaking
        assert not used, f"{tool.name} uses {sorted(used)} of its Context, which JSON mode drops"


def test_a_call_is_answered_with_one_json_body_and_its_outcome_recorded(tls_server, certs, sqlite_env):
    key = new_key(sqlite_env, "json-reader", "--scope", "tools:read")

    async def go():
        async with http_client(certs, key, headers=HEADERS) as http:
            init, session, note = await open_session(http, tls_server.url)
            ok = await http.post(tls_server.url, headers=session, content=call(2, "whoami"))
            bad = await http.post(tls_server.url, headers=session,
                                  content=call(3, "validate_resource_tags", resource_type="ec2:instance"))
            async with http.stream("GET", tls_server.url,
                                   headers={**session, "accept": "text/event-stream"}) as stream:
                opened = stream.status_code, stream.headers["content-type"]
            return init, note, ok, bad, opened

    init, note, ok, bad, opened = anyio.run(go)
    for r in (init, ok, bad):
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content)
    assert note.status_code == 202
    assert ok.json()["result"]["structuredContent"]["key_id"] == key[5:17]
    assert bad.json()["id"] == 3 and bad.json()["result"]["isError"] is True  # `tags` is missing
    assert opened[0] == 200 and opened[1].startswith("text/event-stream")  # the GET stream stays
    tls_server.access_events(lambda e: e["event"] == "tool_call"
                                      and e.get("key_name") == "json-reader"
                                      and e.get("tool") == "validate_resource_tags")
    outcomes = {e["tool"]: (e["outcome"], e["status"]) for e in tls_server.events(access=True)
                if e["event"] == "tool_call" and e.get("key_name") == "json-reader"}
    assert outcomes == {"whoami": ("ok", 200), "validate_resource_tags": ("error", 200)}


def test_the_official_client_keeps_its_connection_across_ten_calls(tls_server, certs, sqlite_env):
    key = new_key(sqlite_env, "json-connections", "--scope", "tools:read")
    connects = anyio.run(connections_per_calls, tls_server.url, certs, key, "whoami", {})
    # Over SSE the client closed each answer before its end: a TCP + TLS connection per call.
    assert connects <= 1


def test_a_request_id_already_in_flight_in_the_session_is_refused_at_once(tls_server, certs, sqlite_env):
    # Eight requests with one id at once on warm connections. The SDK keys a request's answer
    # by its id: before, all but one answer were lost and those requests waited for ever,
    # holding their tasks and the session (any key holder could do it). Now the envelope
    # refuses an id already in flight in the session: every request is answered at once, the
    # refusals are bad_request events, and the trail records all eight.
    key = new_key(sqlite_env, "dup-ids", "--scope", "tools:read")
    answered: list[int] = []
    later: list[int] = []

    async def go():
        async with http_client(certs, key, headers=HEADERS) as http:
            _, session, _ = await open_session(http, tls_server.url)

            async def post(body: str, into: list[int]) -> None:
                with anyio.fail_after(10):
                    into.append((await http.post(tls_server.url, headers=session, content=body)).status_code)

            async with anyio.create_task_group() as tg:  # eight connections in the pool
                for i in range(8):
                    tg.start_soon(post, json.dumps({"jsonrpc": "2.0", "id": 100 + i, "method": "ping"}), [])
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(post, call(9, "whoami"), answered)
            await post(call(9, "whoami"), later)  # no longer in flight: the id may be used again

    anyio.run(go)
    assert len(answered) == 8 and set(answered) <= {200, 400}
    assert 200 in answered and 400 in answered  # else the requests did not overlap: no test
    assert later == [200]
    refused = [e for e in tls_server.events() if e["event"] == "bad_request" and e.get("key_id") == key[5:17]]
    assert len(refused) == answered.count(400) + later.count(400)
    assert {e["reason"] for e in refused} == {"JSON-RPC request id already in flight in this session"}
    deadline = time.monotonic() + 5  # the trail lands in batches, up to ~0.3 s late
    while True:
        ended = [e for e in tls_server.events(access=True)
                 if e["event"] == "tool_call" and e.get("key_name") == "dup-ids"]
        if len(ended) >= len(answered + later) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(e["status"] for e in ended) == sorted(answered + later)


def _asgi(app, *messages: dict) -> tuple[Any, list[dict]]:
    """Run an ASGI app on a POST whose receive channel gives `messages`, then waits forever:
    (what it raised or None, what it sent)."""
    sent: list[dict] = []
    queue = list(messages)

    async def receive() -> dict:
        if queue:
            return queue.pop(0)
        await anyio.sleep_forever()

    async def send(message: dict) -> None:
        sent.append(message)

    async def go():
        try:
            with anyio.fail_after(5):
                await app({"type": "http", "method": "POST"}, receive, send)
        except BaseException as exc:  # what the wrapper let through is the point
            return exc
        return None

    return anyio.run(go), sent


def test_a_disconnect_after_the_answer_cancels_nothing_after_it():
    after = []

    async def app(scope, receive, send):  # as the SDK's 202: answer, then hand over the message
        await receive()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        await anyio.sleep(0.05)  # the disconnect arrives meanwhile
        after.append("handed over")

    raised, sent = _asgi(tools.EndWhenClientLeaves(app), {"type": "http.request", "body": b"{}"},
                         {"type": "http.disconnect"})
    assert raised is None and after == ["handed over"] and sent[0]["status"] == 202


def test_a_disconnect_before_the_answer_ends_the_request():
    async def app(scope, receive, send):
        await receive()
        await anyio.sleep_forever()  # an answer that never comes

    raised, sent = _asgi(tools.EndWhenClientLeaves(app), {"type": "http.request", "body": b"{}"},
                         {"type": "http.disconnect"})
    assert raised is None and sent == []


def test_a_cancel_from_outside_still_reaches_the_caller():
    async def app(scope, receive, send):  # the envelope ends a revoked key's request so
        await receive()
        task = asyncio.current_task()
        asyncio.get_running_loop().call_later(0.05, task.cancel)
        await anyio.sleep_forever()

    raised, _ = _asgi(tools.EndWhenClientLeaves(app), {"type": "http.request", "body": b"{}"})
    assert isinstance(raised, asyncio.CancelledError)
