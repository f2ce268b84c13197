"""How `serve --stdio` answers a single request POST (server/stdio/reply.py): one JSON body when
the child's response is its first word about the request, so the official client keeps its
connection; an event stream as before when the child says anything else first, or is slow."""

from __future__ import annotations

import json

import anyio
import pytest

from finops_mcp_admin.server.stdio.reply import JSON_WINDOW
from tests.server.conftest import new_key
from tests.server.harness import Certs, connections_per_calls, http_client
from tests.server.stdio.conftest import HEADERS, raw_pid, stdio_server


@pytest.fixture(scope="module")
def key(stdio_env) -> str:
    return new_key(stdio_env, "stdio-reply", "--scope", "tools:read")


@pytest.fixture(scope="module")
def gateway(certs: Certs, stdio_env, tmp_path_factory):
    server = stdio_server(certs, stdio_env, tmp_path_factory.mktemp("reply") / "events.jsonl").start()
    yield server
    server.stop()


def call(id_, tool: str, meta: dict | None = None, **args) -> dict:
    params: dict = {"name": tool, "arguments": args}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


def sse_messages(text: str) -> list[dict]:
    return [json.loads(line[5:]) for line in text.splitlines()
            if line.startswith("data:") and line[5:].strip()]


def test_a_plain_call_is_answered_with_one_json_body_and_recorded(gateway, certs, key):
    async def go():
        async with http_client(certs, key) as http:
            sid, _ = await raw_pid(http, gateway.url)
            return await http.post(gateway.url, json=call(7, "echo", text="json"),
                                   headers={**HEADERS, "mcp-session-id": sid})

    r = anyio.run(go)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.json() == {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "json"}]}}
    echo = gateway.access_events(lambda e: e["event"] == "tool_call" and e.get("tool") == "echo")
    assert echo and echo[-1]["outcome"] == "ok" and echo[-1]["status"] == 200


def test_the_official_client_keeps_its_connection_across_calls(gateway, certs, key):
    connects = anyio.run(connections_per_calls, gateway.url, certs, key, "echo", {"text": "again"})
    # Over SSE the client closed each answer before its end: a TCP + TLS connection per call.
    assert connects <= 1


def test_progress_before_the_response_still_streams_events(gateway, certs, key):
    async def go():
        async with http_client(certs, key) as http:
            sid, _ = await raw_pid(http, gateway.url)
            return await http.post(gateway.url, json=call(8, "slow", {"progressToken": "p8"}, seconds=0.35),
                                   headers={**HEADERS, "mcp-session-id": sid})

    r = anyio.run(go)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    messages = sse_messages(r.text)
    progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
    assert len(progress) >= 2 and progress == sorted(progress)
    assert messages[-1] == {"jsonrpc": "2.0", "id": 8,
                            "result": {"content": [{"type": "text", "text": "slept"}]}}


def test_a_request_of_the_child_mid_call_streams_and_the_clients_answer_reaches_it(gateway, certs, key):
    async def go():
        async with http_client(certs, key) as http:
            sid, _ = await raw_pid(http, gateway.url)
            headers = {**HEADERS, "mcp-session-id": sid}
            async with http.stream("POST", gateway.url, json=call(9, "sample"), headers=headers) as r:
                kind = r.headers["content-type"]
                lines = r.aiter_lines()
                asked = None
                async for line in lines:
                    if line.startswith("data:"):
                        asked = json.loads(line[5:])
                        break
                assert asked is not None and asked["method"] == "sampling/createMessage"
                answered = await http.post(gateway.url, headers=headers, json={
                    "jsonrpc": "2.0", "id": asked["id"], "result": {
                        "role": "assistant", "content": {"type": "text", "text": "42"}, "model": "m"}})
                rest = [json.loads(line[5:]) async for line in lines if line.startswith("data:")]
            return kind, answered.status_code, rest

    kind, answered, rest = anyio.run(go)
    assert kind.startswith("text/event-stream")
    assert answered == 202
    assert rest[-1]["id"] == 9 and json.loads(rest[-1]["result"]["content"][0]["text"].removeprefix(
        "sampled: "))["model"] == "m"


def test_a_call_slower_than_the_json_window_gets_an_event_stream(gateway, certs, key):
    async def go():
        async with http_client(certs, key) as http:
            sid, _ = await raw_pid(http, gateway.url)
            return await http.post(gateway.url, json=call(10, "slow", seconds=JSON_WINDOW + 0.5),
                                   headers={**HEADERS, "mcp-session-id": sid})

    r = anyio.run(go)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert sse_messages(r.text) == [{"jsonrpc": "2.0", "id": 10,
                                     "result": {"content": [{"type": "text", "text": "slept"}]}}]


def test_a_session_deleted_mid_call_ends_the_calls_post(gateway, certs, key):
    async def go():
        async with http_client(certs, key) as http:
            sid, _ = await raw_pid(http, gateway.url)
            headers = {**HEADERS, "mcp-session-id": sid}
            ended = {}

            async def slow_call():
                r = await http.post(gateway.url, json=call(11, "slow", seconds=20), headers=headers)
                ended["status"], ended["text"] = r.status_code, r.text

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)
                await anyio.sleep(0.3)
                deleted = await http.delete(gateway.url, headers=headers)
                with anyio.fail_after(5):  # not the 20 s of the call
                    while not ended:
                        await anyio.sleep(0.05)
            return deleted.status_code, ended

    deleted, ended = anyio.run(go)
    assert deleted in (200, 204)
    assert ended["status"] == 200 and sse_messages(ended["text"]) == []
