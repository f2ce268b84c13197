"""A small stdio MCP server (raw line-delimited JSON-RPC, no SDK: it must also misbehave on
purpose) for the failure cases of `serve --stdio`: a crash, non-JSON on stdout, an oversized
line, a sampling request to the client, a slow tool with progress that honours cancellation,
and a tool reporting its own pid. Writes a line to stderr at start-up that quotes $FIXTURE_TOKEN
(the redaction test) and any mcpk_ key it was given (it should never be given one)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

_lock = threading.Lock()
_cancelled: set = set()
_answers: dict = {}
_answer_ready = threading.Condition(_lock)

TOOLS = [
    {"name": "echo", "description": "Echo text.", "annotations": {"readOnlyHint": True},
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "pid", "description": "The server's pid.", "annotations": {"readOnlyHint": True},
     "inputSchema": {"type": "object"}},
    {"name": "family", "description": "Start a helper.", "annotations": {"readOnlyHint": True},
     "inputSchema": {"type": "object"}},
    {"name": "write_note", "description": "A write tool.", "annotations": {"readOnlyHint": False},
     "inputSchema": {"type": "object"}},
    {"name": "crash", "description": "Exit at once.", "inputSchema": {"type": "object"}},
    {"name": "garbage", "description": "Print non-JSON.", "annotations": {"readOnlyHint": True},
     "inputSchema": {"type": "object"}},
    {"name": "big", "description": "A huge line.", "annotations": {"readOnlyHint": True},
     "inputSchema": {"type": "object", "properties": {"size": {"type": "integer"}}}},
    {"name": "sample", "description": "Ask the client's LLM.", "annotations": {"readOnlyHint": True},
     "inputSchema": {"type": "object"}},
    {"name": "slow", "description": "Sleep with progress.", "annotations": {"readOnlyHint": True},
     "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}}},
]


def send(message: dict) -> None:
    with _lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def result(rid, text: str) -> None:
    send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}})


def call_tool(rid, params: dict) -> None:
    name, args = params["name"], params.get("arguments") or {}
    token = (params.get("_meta") or {}).get("progressToken")
    if name == "echo":
        result(rid, args.get("text", ""))
    elif name == "pid":
        result(rid, str(os.getpid()))
    elif name == "family":  # a grandchild in our process group (stdio servers run helpers)
        import subprocess

        helper = subprocess.Popen(["sleep", "300"])
        result(rid, json.dumps({"pid": os.getpid(), "grandchild": helper.pid}))
    elif name == "write_note":
        result(rid, "written")
    elif name == "crash":
        os._exit(3)
    elif name == "garbage":
        with _lock:
            sys.stdout.write("this is not json\n")
            sys.stdout.flush()
    elif name == "big":
        result(rid, "x" * int(args.get("size", 10)))
    elif name == "sample":
        send({"jsonrpc": "2.0", "id": "s-1", "method": "sampling/createMessage",
              "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
                         "maxTokens": 5}})
        with _answer_ready:
            _answer_ready.wait_for(lambda: "s-1" in _answers, timeout=20)
            answer = _answers.pop("s-1", {})
        result(rid, "sampled: " + json.dumps(answer.get("result", answer.get("error"))))
    elif name == "slow":
        deadline = time.monotonic() + float(args.get("seconds", 1))
        step = 0
        while time.monotonic() < deadline:
            if rid in _cancelled:
                sys.stderr.write(f"cancelled {rid}\n")
                sys.stderr.flush()
                return  # a cancelled request gets no response
            if token is not None:
                step += 1
                send({"jsonrpc": "2.0", "method": "notifications/progress",
                      "params": {"progressToken": token, "progress": step}})
            time.sleep(0.1)
        result(rid, "slept")
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": f"no tool {name}"}})


def handle(message: dict) -> None:
    method, rid = message.get("method"), message.get("id")
    if method is None:  # a response to our sampling request
        with _answer_ready:
            _answers[rid] = message
            _answer_ready.notify_all()
    elif method == "initialize":
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}}, "serverInfo": {"name": "fixture", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        threading.Thread(target=call_tool, args=(rid, message["params"]), daemon=True).start()
    elif method == "notifications/cancelled":
        _cancelled.add(message["params"]["requestId"])
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    elif rid is not None:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no such method"}})


def main() -> None:
    keys = [v for v in os.environ.values() if v.startswith("mcpk_")]
    sys.stderr.write(f"fixture starting; token={os.environ.get('FIXTURE_TOKEN', '-')} keys={keys}\n")
    sys.stderr.write("x" * int(os.environ.get("FIXTURE_STDERR_BYTES", "0")))  # a chatty start
    sys.stderr.flush()
    if os.environ.get("FIXTURE_STUBBORN"):  # ignores SIGTERM and the end of its stdin
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for line in sys.stdin:
        if line.strip():
            handle(json.loads(line))
    while os.environ.get("FIXTURE_STUBBORN"):
        time.sleep(1)


if __name__ == "__main__":
    main()
