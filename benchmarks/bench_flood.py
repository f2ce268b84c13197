"""A guessing flood at one key id vs. the clients who hold keys, unloaded and flooded side by
side in one run. Targets: an already-verified client's p99 ≤ 2 x its unloaded p99; a first-use
client (the holder of the very key id under attack, never used before) admitted within 1 s.

One `mcpadmin serve` (plain HTTP behind a pretend proxy, so each client has its own IP through
X-Forwarded-For; default argon2 parameters, about 30 ms a verification) on a SQLite store. The
flood is wrk with 200 connections, each sending wrong secrets for the victim's key id from one
IP as fast as the server answers. Rounds alternate unloaded/flooded on a fresh server each;
the median over rounds counts.

    python benchmarks/bench_flood.py [--rounds 3] [--requests 200] [--connections 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import machine  # noqa: E402
from _servers import free_port, start, wait_port  # noqa: E402

from finops_mcp_admin import lifecycle  # noqa: E402
from finops_mcp_admin.durations import utcnow  # noqa: E402
from finops_mcp_admin.keys import KeyHasher, generate_token  # noqa: E402
from finops_mcp_admin.store.sqlite import SqliteStore  # noqa: E402

PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
BASE = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "X-Forwarded-Proto": "https"}
FLOOD_IP, STEADY_IP, FIRST_USE_IP = "203.0.113.66", "198.51.100.10", "198.51.100.20"


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                              "clientInfo": {"name": "bench", "version": "1"}}})


def _request(conn: http.client.HTTPConnection, key: str, ip: str, body: str = INIT,
             extra: dict[str, str] | None = None) -> tuple[int, str | None, str | None]:
    conn.request("POST", "/mcp", body=body, headers={**BASE, "Authorization": f"Bearer {key}",
                                                     "X-Forwarded-For": ip, **(extra or {})})
    response = conn.getresponse()
    response.read()
    return response.status, response.getheader("retry-after"), response.getheader("mcp-session-id")


def session(port: int, key: str) -> dict[str, str]:
    """An initialised MCP session of the verified client (its first request verifies the key)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    status, _, session_id = _request(conn, key, STEADY_IP)
    if status != 200 or session_id is None:
        raise SystemExit(f"initialize got {status}")
    headers = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
    _request(conn, key, STEADY_IP, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
             headers)
    conn.close()
    return headers


def steady_p99(port: int, key: str, requests: int, headers: dict[str, str]) -> float:
    """p99 latency (ms) of an already-verified client's sequential pings in its session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(requests):
        start_t = time.perf_counter()
        status, _, _ = _request(conn, key, STEADY_IP, PING, headers)
        times.append(time.perf_counter() - start_t)
        if status != 200:
            raise SystemExit(f"the verified client got {status}")
    conn.close()
    return sorted(times)[int(len(times) * 0.99) - 1] * 1000


def first_use(port: int, key: str) -> float:
    """Seconds until a never-used key is admitted, honouring Retry-After like a real client."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    start_t = time.perf_counter()
    while True:
        status, retry, _ = _request(conn, key, FIRST_USE_IP)
        if status == 200:
            return time.perf_counter() - start_t
        if status != 429 or time.perf_counter() - start_t > 30:
            raise SystemExit(f"the first-use client got {status}")
        time.sleep(float(retry or 1))


def flood(port: int, victim_id: str, connections: int, seconds: int, workdir: Path) -> subprocess.Popen:
    script = workdir / "guess.lua"
    guess = generate_token(victim_id)[1].reveal()  # a wrong secret: the right id, well-formed
    headers = {**BASE, "Authorization": f"Bearer {guess}", "X-Forwarded-For": FLOOD_IP}
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(PING)!r}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                             f"http://127.0.0.1:{port}/mcp"], stdout=subprocess.PIPE, text=True)


def one_round(store_url: str, store: SqliteStore, flooded: bool, args: argparse.Namespace,
              workdir: Path, n: int) -> tuple[float, float, str]:
    hasher = KeyHasher()
    victim, steady = (lifecycle.create_key(store, hasher, name=f"{name}-{n}-{flooded}", actor="bench",
                                           now=utcnow(), scopes=["tools:read"]).token.reveal()
                      for name in ("victim", "steady"))
    port = free_port()
    proc = start(["-m", "finops_mcp_admin", "serve", "--port", str(port), "--no-log-stdout",
                  "--log-file", str(workdir / "events.jsonl"), "--behind-proxy",
                  "--trusted-proxy", "127.0.0.1"], {"MCPADMIN_STORE": store_url})
    wrk = None
    try:
        wait_port(port, proc)
        headers = session(port, steady)  # verified (and cached) before
        steady_p99(port, steady, 50, headers)  # warm-up
        if flooded:
            wrk = flood(port, victim[5:17], args.connections, 600, workdir)  # stopped below
            time.sleep(2.0)  # the flood is at full rate and the victim's id is throttled
        p99 = steady_p99(port, steady, args.requests, headers)
        admitted = first_use(port, victim)
        rate = ""
        if wrk is not None:
            wrk.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
            out = wrk.communicate()[0]
            rate = next((line.split()[-1] for line in out.splitlines() if "Requests/sec" in line), "")
        return p99, admitted, rate
    finally:
        if wrk is not None and wrk.poll() is None:
            wrk.kill()
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    store_url = f"sqlite:///{workdir / 'keys.db'}"
    store = SqliteStore(store_url)
    print(f"machine: {machine()}\nflood: wrk -t1 -c{args.connections}, wrong secrets for one key id "
          f"from one IP; {args.rounds} alternating rounds, median\n")
    results: dict[bool, list[tuple[float, float, str]]] = {False: [], True: []}
    for n in range(args.rounds):
        for flooded in (False, True):
            results[flooded].append(one_round(store_url, store, flooded, args, workdir, n))
    store.close()
    quiet_p99 = statistics.median(r[0] for r in results[False])
    flood_p99 = statistics.median(r[0] for r in results[True])
    quiet_first = statistics.median(r[1] for r in results[False])
    flood_first = statistics.median(r[1] for r in results[True])
    print(f"{'':34s} {'unloaded':>10s} {'flooded':>10s} {'ratio':>7s}  target")
    verdict = "OK" if flood_p99 <= 2 * quiet_p99 else "ABOVE"
    print(f"{'verified client p99 (ms)':34s} {quiet_p99:10.2f} {flood_p99:10.2f} "
          f"{flood_p99 / quiet_p99:7.2f}  ≤ 2.0 {verdict}")
    verdict = "OK" if flood_first <= 1.0 else "ABOVE"
    print(f"{'first use of the attacked key (s)':34s} {quiet_first:10.3f} {flood_first:10.3f} "
          f"{'':7s}  ≤ 1 s {verdict}")
    print("\nrounds (p99 ms, first use s, flood req/s):",
          {("flooded" if k else "unloaded"): [(round(a, 2), round(b, 3), c) for a, b, c in v]
           for k, v in results.items()})


if __name__ == "__main__":
    main()
