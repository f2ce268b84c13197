"""CPU per request of ASGI apps in this process (no HTTP): what a stack itself costs, free of
the noise of a shared 2-CPU machine. bench_envelope, bench_peer and bench_oauth use it."""

from __future__ import annotations

import statistics
import time
from typing import Any

from _common import rotated


async def asgi_post(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """One POST /mcp through an ASGI app, in-process; the response status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8000)}
    sent, status = False, 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_request(apps: dict[str, Any], headers: dict[str, dict[str, str]], body: bytes,
                          batches: int, per_batch: int) -> dict[str, float]:
    """CPU µs per POST of `body` through each app (each with its own headers): 200 warm-up
    requests each (the first verifies the credential), then batches in an order that rotates
    from batch to batch; the median batch of each app. CPU time of the whole process, so the
    work an app leaves to a thread of its own (the access trail's writer) counts."""
    raw = {name: [(k.lower().encode(), v.encode()) for k, v in h.items()] for name, h in headers.items()}
    for name, app in apps.items():
        for _ in range(200):
            if (status := await asgi_post(app, raw[name], body)) != 200:
                raise SystemExit(f"in-process {name}: {status}")
    times: dict[str, list[float]] = {name: [] for name in apps}
    for i in range(batches):
        for name in rotated(tuple(apps), i):
            start_cpu = time.process_time()
            for _ in range(per_batch):
                await asgi_post(apps[name], raw[name], body)
            times[name].append((time.process_time() - start_cpu) / per_batch * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}
