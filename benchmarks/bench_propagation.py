"""Revocation propagation across 3 replicas: p50 and p99 over 100 revocations, Redis and SQLite.
Targets: p99 ≤ 100 ms with Redis (pub/sub), ≤ 1 s with SQLite (version polling, 0.25 s).

Three `mcpadmin serve` processes share one store; each key is verified (cached) on all three
right before it is revoked in this process and all three servers are polled over
keep-alive connections until each answers 401. The time is from the revoking commit to the
server's first refusal.

    python benchmarks/bench_propagation.py [--revocations 100] [--backend redis|sqlite|both]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import machine  # noqa: E402
from _servers import free_port, start, wait_port  # noqa: E402

from finops_mcp_admin import lifecycle  # noqa: E402
from finops_mcp_admin.config import load_settings  # noqa: E402
from finops_mcp_admin.durations import utcnow  # noqa: E402
from finops_mcp_admin.keys import HashParams, KeyHasher  # noqa: E402
from tests.redis_server import RedisServer, server_binary  # noqa: E402

PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
FAST = {"MCPADMIN_ARGON2_TIME_COST": "1", "MCPADMIN_ARGON2_MEMORY_COST": "1024"}


def status(conn: http.client.HTTPConnection, key: str) -> int:
    conn.request("POST", "/mcp", body=PING, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"})
    response = conn.getresponse()
    response.read()
    return response.status


def measure(env: dict[str, str], revocations: int, workdir: Path) -> list[float]:
    os.environ.update(env)
    settings = load_settings()
    hasher = KeyHasher(HashParams(1, 1024))
    with settings.open_store() as store:
        keys = [lifecycle.create_key(store, hasher, name=f"p{i}", actor="bench", now=utcnow(),
                                     scopes=["tools:read"]).token.reveal() for i in range(revocations)]
        procs, conns = [], []
        try:
            for i in range(3):
                port = free_port()
                procs.append(start(["-m", "finops_mcp_admin", "serve", "--port", str(port),
                                    "--no-log-stdout", "--log-file", str(workdir / f"ev{i}.jsonl"),
                                    "--max-failures", "1000000000", "--app",
                                    "benchmarks.envelope_apps:trivial"], env))
                wait_port(port, procs[-1])
                conns.append(http.client.HTTPConnection("127.0.0.1", port, timeout=10))
            delays = []
            for key in keys:
                # Cache the key on all three first (every revocation drops whole caches, so
                # warming up front would leave later keys uncached and measure nothing).
                assert all(status(c, key) == 200 for c in conns)
                assert all(status(c, key) == 200 for c in conns)
                lifecycle.revoke_key(store, key[5:17], reason="bench", now=utcnow())
                t0 = time.perf_counter()
                pending = set(range(3))
                while pending:
                    for i in list(pending):
                        if status(conns[i], key) == 401:
                            delays.append(time.perf_counter() - t0)
                            pending.discard(i)
                    if time.perf_counter() - t0 > 5:
                        raise SystemExit("a server still admits a revoked key after 5 s")
            return delays
        finally:
            for p in procs:
                p.terminate()
                p.wait()


def report(label: str, delays: list[float], target: float) -> None:
    delays = sorted(delays)
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    verdict = "OK" if p99 <= target else "OVER"
    print(f"{label:8s} n={len(delays):4d}  p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
          f"max {delays[-1] * 1000:7.1f} ms   target p99 ≤ {target * 1000:.0f} ms {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--revocations", type=int, default=100)
    parser.add_argument("--backend", choices=["redis", "sqlite", "both"], default="both")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    print(f"machine: {machine()}\n3 replicas, {args.revocations} revocations each backend "
          "(3 x that many measurements)\n")
    base = {**FAST, "PYTHONPATH": str(ROOT)}
    if args.backend in ("redis", "both"):
        server = RedisServer(server_binary(), workdir).start()
        try:
            env = {**base, "MCPADMIN_STORE": server.url, "MCPADMIN_NAMESPACE": f"b{uuid.uuid4().hex[:6]}"}
            report("redis", measure(env, args.revocations, workdir), 0.100)
        finally:
            server.stop()
    if args.backend in ("sqlite", "both"):
        env = {**base, "MCPADMIN_STORE": f"sqlite:///{workdir / 'keys.db'}"}
        report("sqlite", measure(env, args.revocations, workdir), 1.0)


if __name__ == "__main__":
    main()
