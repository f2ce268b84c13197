"""What the access trail costs the event loop: the full envelope (built as `mcpadmin serve`
builds it, around a trivial app) driven in-process, `--access-log all` vs `none`, side by side
in one run (alternating rounds, medians). Reports µs per request of the event loop's own thread
(time.thread_time: what the loop pays, the writer thread excluded) and of the whole process
(time.process_time: the writer thread included).

    python benchmarks/bench_access_log.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import machine

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.keys import KeyHasher
from finops_mcp_admin.server.run import ServeOptions, build
from finops_mcp_admin.store.sqlite import SqliteStore

CALL = (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"validate_resource_tags",'
        b'"arguments":{"resource_type":"ec2:instance","tags":{"CostCenter":"1234"}}}}')


async def _drive(app, key: str, count: int) -> tuple[float, float]:
    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json"),
               (b"accept", b"application/json, text/event-stream")]
    scope_base = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers,
                  "client": ("10.0.0.1", 5555), "scheme": "https", "query_string": b"",
                  "http_version": "1.1"}

    async def receive():
        return {"type": "http.request", "body": CALL, "more_body": False}

    async def send(_message):
        return None

    await app(dict(scope_base), receive, send)  # the key's first use runs argon2: not counted
    thread0, process0 = time.thread_time(), time.process_time()
    for _ in range(count):
        await app(dict(scope_base), receive, send)
    return time.thread_time() - thread0, time.process_time() - process0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    os.environ["MCPADMIN_STORE"] = f"sqlite:///{workdir / 'keys.db'}"
    store = SqliteStore(os.environ["MCPADMIN_STORE"])
    key = lifecycle.create_key(store, KeyHasher(), name="bench", actor="bench", now=utcnow(),
                               scopes=["tools:read"]).token.reveal()
    store.close()
    servers = {mode: build(load_settings(), ServeOptions(
        app_ref="benchmarks.envelope_apps:trivial", default_scope="tools:read", log_stdout=False,
        max_failures=10**9,
        log_file=str(workdir / f"events-{mode}.jsonl"), access_log=mode)) for mode in ("none", "all")}
    results: dict[str, list[tuple[float, float]]] = {"none": [], "all": []}

    async def rounds() -> None:
        for _ in range(args.rounds):
            for mode, server in servers.items():
                results[mode].append(await _drive(server.app, key, args.requests))

    asyncio.run(rounds())
    for server in servers.values():
        server.close()
    written = sum(1 for _ in (workdir / "events-all.jsonl").open())
    print(f"machine: {machine()}\n{args.requests} tools/call requests per round, {args.rounds} "
          f"alternating rounds, median; {written} access events written\n")
    print(f"{'':28s} {'none':>9s} {'all':>9s} {'ratio':>7s}")
    for index, label in ((0, "event-loop thread µs/req"), (1, "whole process µs/req")):
        none = statistics.median(r[index] for r in results["none"]) / args.requests * 1e6
        full = statistics.median(r[index] for r in results["all"]) / args.requests * 1e6
        print(f"{label:28s} {none:9.1f} {full:9.1f} {full / none:7.2f}")


if __name__ == "__main__":
    main()
