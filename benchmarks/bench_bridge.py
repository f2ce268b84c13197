"""Bridge overhead: `tools/call` round trips through the stdio bridge vs. the official MCP client
talking Streamable HTTP directly, side by side against the same `mcpadmin serve` over HTTPS on
loopback. Target: bridge overhead ≤ 2 ms per call at p50.

    python benchmarks/bench_bridge.py [--calls 300] [--blocks 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import anyio  # noqa: E402
from _common import machine  # noqa: E402

from finops_mcp_admin import lifecycle  # noqa: E402
from finops_mcp_admin.durations import utcnow  # noqa: E402
from finops_mcp_admin.keys import KeyHasher  # noqa: E402
from finops_mcp_admin.store.sqlite import SqliteStore  # noqa: E402
from tests.bridge.harness import bridged_session  # noqa: E402
from tests.server.harness import ServerProcess, base_env, make_certs, mcp_session  # noqa: E402

ARGS = {"resource_type": "ec2:instance", "tags": {"CostCenter": "1234", "Owner": "a@example.com",
                                                   "Environment": "production", "Application": "x"}}


async def timed_calls(session, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await session.call_tool("validate_resource_tags", ARGS)
        out.append(time.perf_counter() - start)
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    certs = make_certs(workdir)
    store_url = f"sqlite:///{workdir / 'keys.db'}"
    store = SqliteStore(store_url)
    key = lifecycle.create_key(store, KeyHasher(), name="bench", actor="bench", now=utcnow(),
                               scopes=["tools:read"]).token.reveal()
    store.close()
    env = base_env({"MCPADMIN_STORE": store_url})
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--no-log-stdout"], env, workdir / "events.jsonl").start()
    direct: list[float] = []
    bridged: list[float] = []

    async def run() -> None:
        bridge_env = {"MCP_API_KEY": key, "MCP_CA_BUNDLE": str(certs.ca_file)}
        async with mcp_session(server.url, certs, key) as d, \
                bridged_session(server.url, bridge_env, workdir / "bridge.err") as b:
            await timed_calls(d, 20)  # warm-up: caches, connections, JIT-free but page-cache warm
            await timed_calls(b, 20)
            for _ in range(args.blocks):  # alternate so both see the same machine state
                direct.extend(await timed_calls(d, args.calls // args.blocks))
                bridged.extend(await timed_calls(b, args.calls // args.blocks))

    try:
        anyio.run(run)
    finally:
        server.stop()
    print(f"machine: {machine()}\n{len(direct)} tools/call each, {args.blocks} alternating blocks, "
          "HTTPS on loopback\n")
    for label, values in (("direct (MCP client → HTTPS)", direct),
                          ("bridged (stdio → bridge → HTTPS)", bridged)):
        p50, p90 = statistics.median(values) * 1000, pct(values, 0.9) * 1000
        print(f"{label:34s} p50 {p50:6.2f} ms   p90 {p90:6.2f} ms"
              f"   p99 {pct(values, 0.99) * 1000:6.2f} ms")
    overhead = statistics.median(bridged) - statistics.median(direct)
    print(f"\nbridge overhead at p50: {overhead * 1000:.2f} ms per call "
          f"({'OK' if overhead <= 0.002 else 'OVER'} target ≤ 2 ms)")


if __name__ == "__main__":
    main()
