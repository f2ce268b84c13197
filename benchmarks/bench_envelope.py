"""Envelope overhead: requests/s through the full security envelope vs. the same app bare,
side by side in one run, for a trivial protected route and for MCP `tools/call`.
Targets: ≥ 0.9 of bare on tools/call, ≥ 0.8 on the trivial route, with the access trail on
(`--access-log all`, the default: one event per request, written off the event loop); the
envelope with `--access-log none` runs alongside, so the trail's own cost shows.

Each configuration runs under uvicorn (one process each, plain HTTP: TLS costs the same either
way), all started once; short wrk rounds alternate among them, in an order that rotates each
round, and the median of the rounds' own ratios (envelope / bare within a round) counts: the
machine drifts by 15 % and more over minutes, and that drift cancels out of each round's ratio.

Two reference rows on the trivial route bound what any such envelope can reach: a middleware
that only awaits the app, and one that only reads, parses and replays the body and watches the
response (envelope_apps.floor_pass / floor_parse). No key, Origin, quota, scope, session or
trail check is in them.

Then the budget of the trivial route's target, in-process (no HTTP): the CPU each configuration
costs per request, the whole envelope and the envelope without each part that can be switched
off (session tracking, the key's rate, the trail), so each part's cost shows; and how many µs
over HTTP the 0.8 target allows, and what one µs in-process weighs over HTTP (the same code runs
cold between uvicorn's, so several times its warm cost).

    python benchmarks/bench_envelope.py [--seconds 2] [--rounds 15] [--connections 8] [--no-floors]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import alternate, machine, paired_ratios
from _servers import start_apps, stop_apps

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.keys import KeyHasher
from finops_mcp_admin.server.run import ServeOptions, build
from finops_mcp_admin.store.sqlite import SqliteStore

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "validate_resource_tags",
                   "arguments": {"resource_type": "ec2:instance",
                                 "tags": {"CostCenter": "1234", "Owner": "a@example.com",
                                          "Environment": "production", "Application": "x"}}}}


#: The trivial route's request: a JSON-RPC ping (the envelope reads and checks it as any other).
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def _post(url: str, body: dict, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        return r.status, dict(r.headers)


def _mcp_session(url: str, auth: dict) -> dict:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "bench", "version": "1"}}}
    _, headers = _post(url, init, {**HEADERS, **auth})
    session = {"mcp-session-id": headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    _post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, {**HEADERS, **auth, **session})
    return session


def wrk_script(headers: dict, body: dict) -> str:
    """A wrk script POSTing `body` with a JSON-RPC id of its own on every request. One fixed id
    on all connections is not a load a client can make: JSON-RPC ids must be unique among a
    session's requests in flight, and the SDK keys each answer by its id, so same-id requests
    overlapping on 8 connections left all but about one of them waiting for an answer that had
    gone to another (the figures before 2026-11-30, session 4, were measured that way)."""
    template = json.dumps({**body, "id": 0}).replace("%", "%%").replace('"id": 0', '"id": %d', 1)
    lines = ['wrk.method = "POST"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines += ["local n = 0", "request = function()", "  n = n + 1",
              f"  return wrk.format(nil, nil, nil, string.format({json.dumps(template)}, n))", "end"]
    return "\n".join(lines) + "\n"


def _wrk(url: str, headers: dict, body: dict, seconds: int, connections: int, workdir: Path) -> float:
    script = workdir / "post.lua"
    script.write_text(wrk_script(headers, body))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses while benchmarking {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


MODES = ("bare", "envelope", "envelope-noaccess")
#: Reference rows on the trivial route (envelope_apps.floor_pass / floor_parse): a middleware that
#: only awaits the app, and one that only reads, parses and replays the body and watches the
#: response. They bound from below what any envelope that decides by the JSON-RPC method costs.
FLOORS = ("floor-pass", "floor-parse")
TARGETS = {"trivial": 0.8, "mcp": 0.9}
LABELS = {"envelope": "envelope (trail on)", "envelope-noaccess": "envelope, --access-log none",
          "floor-pass": "floor: one await", "floor-parse": "floor: body parsed"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--no-floors", action="store_true", help="leave out the reference rows")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    store_url = f"sqlite:///{workdir / 'keys.db'}"
    store = SqliteStore(store_url)
    # Quotas on: the key has a rate of its own (high enough never to refuse), so every request
    # takes a token from its bucket, and the session registry tracks every request.
    key = lifecycle.create_key(store, KeyHasher(), name="bench", actor="bench", now=utcnow(),
                               scopes=["tools:read"], rate="100000000/s").token.reveal()
    store.close()
    auth = {"Authorization": f"Bearer {key}"}
    print(f"machine: {machine()}\nload: wrk -t1 -c{args.connections} -d{args.seconds}s, "
          f"{args.rounds} rounds, the order rotating each round; the ratio is the median of the "
          "rounds' own ratios\n")
    results: dict[str, dict[str, list[float]]] = {}
    for inner in ("trivial", "mcp"):
        modes = MODES + (FLOORS if inner == "trivial" and not args.no_floors else ())
        body = CALL if inner == "mcp" else PING
        running = start_apps(modes, lambda mode, _port, inner=inner: {
            "BENCH_MODE": mode, "BENCH_INNER": inner, "MCPADMIN_STORE": store_url,
            "BENCH_LOG": str(workdir / "events.jsonl")})
        try:
            loads = {}
            for mode, (_proc, port) in running.items():
                url = f"http://127.0.0.1:{port}/mcp"
                headers = {**HEADERS, **auth}
                if inner == "mcp":
                    headers.update(_mcp_session(url, auth))
                else:
                    # The key's first use verifies it (argon2): keep that out of the figures.
                    _post(url, body, headers)
                _wrk(url, headers, body, 1, args.connections, workdir)  # warm-up
                loads[mode] = (url, headers)
            results[inner] = alternate(modes, args.rounds, lambda mode, _i, body=body, loads=loads: _wrk(
                *loads[mode], body, args.seconds, args.connections, workdir))
        finally:
            stop_apps(running)
    for inner, runs in results.items():
        label = "trivial protected route" if inner == "trivial" else "MCP tools/call"
        print(f"{label}: bare {statistics.median(runs['bare']):.0f} req/s (median)")
        print(f"  {'configuration':30s} {'req/s':>7s} {'ratio':>6s}  {'rounds min-max':>14s}")
        for mode in runs:
            if mode == "bare":
                continue
            ratios = paired_ratios(runs, mode, "bare")
            ratio = statistics.median(ratios)
            verdict = ""
            if mode == "envelope":
                verdict = f"≥ {TARGETS[inner]} {'OK' if ratio >= TARGETS[inner] else 'BELOW'}"
            print(f"  {LABELS[mode]:30s} {statistics.median(runs[mode]):7.0f} {ratio:6.3f}  "
                  f"{min(ratios):6.2f}-{max(ratios):<6.2f}  {verdict}")
        print("  rounds:", {mode: [round(v) for v in vals] for mode, vals in runs.items()})
    budget(results["trivial"], store_url, key, workdir)


#: In-process variants of the envelope on the trivial route: each leaves out one part, so the
#: difference to the whole envelope is what that part costs.
WITHOUT = {"no-sessions": "without session tracking", "no-rate": "without the key's rate"}
PARTS = {"no-sessions": "session tracking", "no-rate": "the key's rate",
         "envelope-noaccess": "the access trail"}


def in_process(store_url: str, key: str, workdir: Path, batches: int = 15,
               per_batch: int = 2000) -> dict[str, float]:
    """CPU µs per trivial-route request (the `ping` wrk sends, the same headers) of each
    configuration, in this process: bare, the two floors, the whole envelope, and the envelope
    without each of its parts that can be switched off."""
    import asyncio

    import envelope_apps
    from _inprocess import cpu_per_request

    servers = []

    def envelope(**options: object) -> object:
        opts = ServeOptions(app_ref="envelope_apps:trivial", log_stdout=False,
                            log_file=str(workdir / "events-in-process.jsonl"), max_failures=10**9,
                            **options)  # type: ignore[arg-type]
        servers.append(build(load_settings(store=store_url), opts))
        return servers[-1].app

    apps = {"bare": envelope_apps.trivial, "floor-pass": envelope_apps.floor_pass(envelope_apps.trivial),
            "floor-parse": envelope_apps.floor_parse(envelope_apps.trivial), "envelope": envelope(),
            "envelope-noaccess": envelope(access_log="none")}
    apps["no-sessions"] = envelope()
    apps["no-sessions"].sessions = None  # type: ignore[attr-defined]
    apps["no-rate"] = envelope()
    apps["no-rate"].rates = None  # type: ignore[attr-defined]
    headers = {**HEADERS, "Authorization": f"Bearer {key}"}
    try:
        return asyncio.run(cpu_per_request(apps, dict.fromkeys(apps, headers), json.dumps(PING).encode(),
                                           batches, per_batch))
    finally:
        for server in servers:
            server.close()


def budget(http: dict[str, list[float]], store_url: str, key: str, workdir: Path) -> None:
    """What the 0.8 target leaves the envelope on the trivial route, in the µs its parts cost:
    the HTTP figures say how many µs a request the target allows and how much one µs of own
    cost in-process weighs over HTTP (the same code runs cold between uvicorn's); the
    in-process rows say what each part costs."""
    cpu = in_process(store_url, key, workdir)
    own = {mode: us - cpu["bare"] for mode, us in cpu.items()}
    bare_us = 1e6 / statistics.median(http["bare"])
    allowed = bare_us * (1 / TARGETS["trivial"] - 1)
    print("\nin-process, the trivial route: CPU µs per request of each configuration's own "
          f"work (bare {cpu['bare']:.1f} µs; median of 15 rotating batches of 2000):")
    print("  " + ", ".join(f"{LABELS.get(mode, WITHOUT.get(mode, mode))} {us:.1f}"
                           for mode, us in own.items() if mode != "bare"))
    print("  parts of the envelope (the whole minus the row without the part): "
          + ", ".join(f"{PARTS[mode]} {own['envelope'] - own[mode]:.1f}" for mode in PARTS))
    print(f"budget: over HTTP a bare request takes {bare_us:.0f} µs (1 / median bare req/s); a ratio "
          f"of {TARGETS['trivial']} allows {allowed:.0f} µs more")
    factors = {}
    for mode in ("floor-parse", "envelope", "envelope-noaccess"):
        if mode not in http:
            continue
        added = 1e6 / statistics.median(http[mode]) - bare_us
        inproc = own[mode]
        factors[mode] = added / inproc
        print(f"  {LABELS[mode]}: {added:.0f} µs more over HTTP for {inproc:.1f} µs in-process "
              f"(x{factors[mode]:.1f})")
    factor = factors["envelope"]
    print(f"  at the envelope's x{factor:.1f}, {allowed:.0f} µs over HTTP is {allowed / factor:.1f} µs "
          f"of own cost in-process; the envelope's is {own['envelope']:.1f}")


if __name__ == "__main__":
    main()
