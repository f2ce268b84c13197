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
HTTP cost that difference comes to (the same code costs several times more over HTTP than in a
warm loop: it runs cold between uvicorn's). The target needs the envelope's own cost at most the
SDK stack's, and reading and parsing the body, which checking each method's scope needs, already
takes most of that: the reference row.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import envelope_apps
from _common import alternate, machine, paired_ratios
from _inprocess import cpu_per_request
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
        return asyncio.run(cpu_per_request(apps, dict.fromkeys(apps, headers), json.dumps(CALL).encode(),
                                           batches, per_batch))
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
    own = {side: costs[side] - costs["bare"] for side in ("sdk", "envelope", "floor")}
    print("in-process, each stack around the same no-op endpoint (CPU µs per tools/call request, "
          "median of 15 rotating batches):")
    print("  " + ", ".join(f"{side} {us:.1f}" for side, us in costs.items())
          + f"; own cost: sdk {own['sdk']:.1f}, envelope {own['envelope']:.1f}; reference: a "
            f"middleware that only reads, parses and replays the body {own['floor']:.1f}")
    rps = {side: statistics.median(r[0] for r in results[side]) for side in SIDES}
    http_extra = 1e6 / rps["envelope"] - 1e6 / rps["sdk"]
    extra = own["envelope"] - own["sdk"]
    print(f"  over HTTP the envelope takes {http_extra:.0f} µs a request more than the SDK stack "
          f"(1 / median req/s) for {extra:.1f} µs more in-process"
          + (f" (x{http_extra / extra:.1f}: the same code runs cold between uvicorn's)" if extra > 0 else ""))
    print(f"  ≥ 1.0 needs the envelope's own cost at most the SDK stack's, {own['sdk']:.1f} µs; reading "
          f"and parsing the body (needed to check each method's scope) alone costs {own['floor']:.1f}\n")
    for side in SIDES:
        print(f"checks, {side}: {CHECKS[side]}")


if __name__ == "__main__":
    main()
