"""Peer: the security envelope vs. the MCP SDK's own bearer-auth stack, in front of the same MCP
app, side by side in one run. Target: the envelope ≥ 1.0x the SDK stack's requests/s on MCP
`tools/call`, while doing more checks.

- sdk: `MCPServer(token_verifier=, auth=AuthSettings(...))`, the SDK's own resource-server
  wiring (starlette AuthenticationMiddleware with the SDK's BearerAuthBackend, its
  AuthContextMiddleware, RequireAuthMiddleware on /mcp), over a dict token verifier holding
  one AccessToken.
- envelope: the app inside the SecurityEnvelope as `mcpadmin serve` builds it: a SQLite key
  store with a key made by the lifecycle API (its verification cached after the first
  request), a per-key rate (too high ever to refuse), the Origin allowlist, scopes, sessions.

Both run the same tools/call (`validate_resource_tags`) on a stateful session, with the same
headers, an allowlisted Origin included (the SDK ignores it; the envelope checks it and adds
CORS headers). Each side runs in one uvicorn (plain HTTP), both started once; short wrk rounds
alternate between them, and which goes first alternates too. The ratio counted is the median
over rounds of envelope/sdk within a round (bench_envelope.py's method).

Then, in this process, each stack around the same no-op endpoint (no HTTP, no MCP app): the CPU
each stack itself costs per request, free of the noise of a shared 2-CPU machine, and the
ratio that difference predicts for the HTTP figures. The envelope does more work than the SDK
stack in front of the same app, so that ratio is just below 1.0: over HTTP the target holds
only within noise.

    python benchmarks/bench_peer.py [--seconds 2] [--rounds 15] [--connections 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import envelope_apps
from _common import alternate, machine, paired_ratios
from _servers import start_apps, stop_apps
from bench_envelope import CALL, HEADERS, _mcp_session, wrk_script

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.cors import add_origins
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.keys import KeyHasher
from finops_mcp_admin.server.run import ServeOptions, build
from finops_mcp_admin.store.sqlite import SqliteStore

ORIGIN = "https://console.example.com"
SIDES = ("sdk", "envelope")
CHECKS = {
    "sdk": "Bearer header parsed; token looked up in the dict; expiry; the required scope "
           "(tools:read, one for every request); user put in a contextvar",
    "envelope": "health/discovery/TLS routing; Origin allowlisted, CORS headers added; Bearer "
                "header parsed; keyed-BLAKE2b cache lookup, constant-time compare, expiry, store "
                "health; per-key rate (token bucket); body read, UTF-8, nesting bound, JSON-RPC "
                "parse (duplicate keys refused), scope per method and tool, deny by default; "
                "session cap and per-key request tracking (revocation ends open requests); "
                "last-use touch (once a minute)",
}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _field(pattern: str, out: str) -> str:
    """The first group of pattern in wrk's output (SystemExit when wrk printed no such line)."""
    match = re.search(pattern, out, re.M)
    if match is None:
        raise SystemExit(f"no {pattern!r} in wrk's output:\n{out}")
    return match.group(1)


def _ms(text: str) -> float:
    """A wrk latency ("870.12us", "1.23ms", "1.02s") in milliseconds."""
    return float(_field(r"^([\d.]+)(?:us|ms|s)$", text)) * _UNITS[text.lstrip("0123456789.")]


def _wrk(url: str, headers: dict, body: dict, seconds: int, connections: int,
         workdir: Path) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of wrk posting body with headers."""
    script = workdir / "post.lua"
    script.write_text(wrk_script(headers, body))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                          str(script), url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses while benchmarking {url}:\n{out}")
    rps = float(_field(r"Requests/sec:\s+([\d.]+)", out))
    return rps, _ms(_field(r"^\s+50%\s+(\S+)", out)), _ms(_field(r"^\s+99%\s+(\S+)", out))


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


async def _asgi_post(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
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


async def _stack_costs(apps: dict[str, Any], headers: dict[str, dict[str, str]], batches: int,
                       per_batch: int) -> dict[str, float]:
    """CPU µs per tools/call request of each app (each with its own headers), in this process:
    200 warm-up requests each (the first verifies the credential), then alternating batches;
    medians."""
    raw = {name: [(k.lower().encode(), v.encode()) for k, v in h.items()] for name, h in headers.items()}
    body = json.dumps(CALL).encode()
    for name, app in apps.items():
        for _ in range(200):
            if (status := await _asgi_post(app, raw[name], body)) != 200:
                raise SystemExit(f"in-process {name}: {status}")
    times: dict[str, list[float]] = {name: [] for name in apps}
    for i in range(batches):
        for name in apps if i % 2 == 0 else list(apps)[::-1]:
            start_cpu = time.process_time()
            for _ in range(per_batch):
                await _asgi_post(apps[name], raw[name], body)
            times[name].append((time.process_time() - start_cpu) / per_batch * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def in_process(token: str, store_url: str, workdir: Path, batches: int = 15,
               per_batch: int = 1000) -> dict[str, float]:
    """CPU µs per tools/call request of each stack around the same no-op endpoint, in this
    process: no HTTP and no MCP app, so what each stack itself costs, free of the machine's
    noise. Batches alternate; medians."""
    opts = ServeOptions(app_ref="envelope_apps:routed_trivial", default_scope="tools:read",
                        log_stdout=False, log_file=str(workdir / "events-in-process.jsonl"),
                        max_failures=10**9)
    server = build(load_settings(store=store_url), opts)
    apps = {"bare": envelope_apps.routed_trivial,
            "sdk": envelope_apps.sdk_stack_around_trivial(token, "http://127.0.0.1:8000/mcp"),
            "envelope": server.app,
            # Reference: only read, parse and replay the body (envelope_apps.floor_parse).
            "floor": envelope_apps.floor_parse(envelope_apps.routed_trivial)}
    headers = {**HEADERS, "Authorization": f"Bearer {token}", "Origin": ORIGIN,
               "Host": "127.0.0.1:8000", "Mcp-Session-Id": "0" * 32, "Mcp-Protocol-Version": "2025-11-25"}
    try:
        return asyncio.run(_stack_costs(apps, dict.fromkeys(apps, headers), batches, per_batch))
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    store_url = f"sqlite:///{workdir / 'keys.db'}"
    store = SqliteStore(store_url)
    # Quotas on: the key has a rate of its own (high enough never to refuse), so every request
    # takes a token from its bucket; the session registry tracks every request.
    token = lifecycle.create_key(store, KeyHasher(), name="bench", actor="bench", now=utcnow(),
                                 scopes=["tools:read"], rate="100000000/s").token.reveal()
    add_origins(store, [ORIGIN])
    store.close()
    print(f"machine: {machine()}\nload average (1/5/15 min) at start: {_load()}\n"
          f"load: wrk -t1 -c{args.connections} -d{args.seconds}s --latency, MCP tools/call, "
          f"{args.rounds} rounds alternating sdk/envelope, median of the rounds' ratios\n")
    print(f"{'round':>5s} {'side':9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}  load before")
    running = start_apps(SIDES, lambda side, port: {
        "BENCH_MODE": side, "BENCH_INNER": "mcp", "MCPADMIN_STORE": store_url,
        "BENCH_LOG": str(workdir / "events.jsonl"), "BENCH_TOKEN": token,
        "BENCH_RESOURCE": f"http://127.0.0.1:{port}/mcp"})
    try:
        loads = {}
        for side, (_proc, port) in running.items():
            url = f"http://127.0.0.1:{port}/mcp"
            auth = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
            loads[side] = (url, {**HEADERS, **auth, **_mcp_session(url, auth)})  # verifies the key
            _wrk(*loads[side], CALL, 1, args.connections, workdir)  # warm-up

        def measure(side: str, i: int) -> tuple[float, float, float]:
            load = _load()
            rps, p50, p99 = _wrk(*loads[side], CALL, args.seconds, args.connections, workdir)
            print(f"{i + 1:5d} {side:9s} {rps:8.0f} {p50:8.2f} {p99:8.2f}  {load}", flush=True)
            return rps, p50, p99

        results = alternate(SIDES, args.rounds, measure)
    finally:
        stop_apps(running)
    print()
    print(f"{'side':9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}  (medians over rounds)")
    for side in SIDES:
        rps, p50, p99 = (statistics.median(r[j] for r in results[side]) for j in range(3))
        print(f"{side:9s} {rps:8.0f} {p50:8.2f} {p99:8.2f}")
    ratios = paired_ratios({side: [r[0] for r in results[side]] for side in SIDES}, "envelope", "sdk")
    ratio = statistics.median(ratios)
    print(f"\nenvelope/sdk req/s per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"median ratio envelope/sdk: {ratio:.3f}  target ≥ 1.0 {'OK' if ratio >= 1.0 else 'BELOW'}")
    print(f"load average at end: {_load()}\n")
    costs = in_process(token, store_url, workdir)
    extra = costs["envelope"] - costs["sdk"]
    sdk_request_us = 1e6 / statistics.median(r[0] for r in results["sdk"])
    print("in-process, each stack around the same no-op endpoint (CPU µs per tools/call request, "
          "median of 15 alternating batches):")
    print("  " + ", ".join(f"{side} {us:.1f}" for side, us in costs.items())
          + f"; own cost: sdk {costs['sdk'] - costs['bare']:.1f}, "
            f"envelope {costs['envelope'] - costs['bare']:.1f}; reference: a middleware that only "
            f"reads, parses and replays the body {costs['floor'] - costs['bare']:.1f}")
    print(f"  the envelope's {extra:.1f} µs more, on the {sdk_request_us:.0f} µs a request takes over "
          f"HTTP here (1 / sdk req/s): expected ratio {sdk_request_us / (sdk_request_us + extra):.3f}\n")
    for side in SIDES:
        print(f"checks, {side}: {CHECKS[side]}")


if __name__ == "__main__":
    main()
