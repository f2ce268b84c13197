"""`serve --stdio` (issue 14), measured side by side in one run against the same stdio server
(the in-repo fixture server, a Python process; `--server time` uses mcp-server-time from the
test suite's cached venv, an SDK-based server):

1. per `tools/call`: the official MCP client over HTTPS through the gateway vs. the same client
   talking stdio to the server directly (target: overhead ≤ 2 ms at p50), alternating blocks;
2. session start through the gateway (spawn + initialize + initialized): p50 and p99;
3. memory per idle session: RSS of a child + the gateway's RSS growth, over N idle sessions;
4. 50 concurrent sessions (initialize, tools/list, tools/call each) without errors.

    python benchmarks/bench_stdio.py [--calls 300] [--blocks 5] [--starts 40] [--idle 20]
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
from tests.server.harness import ServerProcess, base_env, http_client, make_certs, mcp_session  # noqa: E402
from tests.server.stdio.conftest import proc_children, raw_call  # noqa: E402

FIXTURE = [sys.executable, "-m", "tests.server.stdio.fixture_server"]
TIME_VENV = ROOT / ".pytest_cache" / "d" / "stdio-servers"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def timed_calls(session, n: int, tool: str, args: dict) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await session.call_tool(tool, args)
        out.append(time.perf_counter() - start)
    return out


def server_command(which: str) -> tuple[list[str], str, dict]:
    if which == "time":
        exe = next(TIME_VENV.glob("mcp-server-time-*/bin/mcp-server-time"), None)
        if exe is None:
            raise SystemExit("run tests/server/stdio/test_third_party.py once: it builds the venv")
        return [str(exe), "--local-timezone", "UTC"], "get_current_time", {"timezone": "UTC"}
    return FIXTURE, "echo", {"text": "benchmark"}


async def per_call(server, plain, certs, key, command, tool, args, calls: int, blocks: int):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    direct: list[float] = []
    gateway: list[float] = []
    builtin: list[float] = []
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(ROOT))
    async with mcp_session(server.url, certs, key) as g, stdio_client(params) as (r, w), \
            ClientSession(r, w) as d, mcp_session(plain.url, certs, key) as b:
        await d.initialize()
        await timed_calls(d, 20, tool, args)
        await timed_calls(g, 20, tool, args)
        await timed_calls(b, 20, "whoami", {})
        for _ in range(blocks):  # alternate so all see the same machine state
            direct.extend(await timed_calls(d, calls // blocks, tool, args))
            gateway.extend(await timed_calls(g, calls // blocks, tool, args))
            builtin.extend(await timed_calls(b, calls // blocks, "whoami", {}))
    return direct, gateway, builtin


async def session_starts(server, certs, key, n: int) -> list[float]:
    out = []
    async with http_client(certs, key) as http:
        for _ in range(n):
            start = time.perf_counter()
            sid, _ = await raw_call(http, server.url, None, INIT)
            await raw_call(http, server.url, sid, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            out.append(time.perf_counter() - start)
            r = await http.delete(server.url, headers={"mcp-session-id": sid, **HEADERS})
            assert r.status_code in (200, 204), r.status_code
    return out


async def idle_memory(server, certs, key, n: int) -> tuple[float, float]:
    await anyio.sleep(3)  # the children of earlier phases are gone
    gw_before = rss_kib(server.proc.pid)
    async with http_client(certs, key) as http:
        for _ in range(n):  # initialize + initialized, then idle (no GET stream held)
            sid, _ = await raw_call(http, server.url, None, INIT)
            await raw_call(http, server.url, sid, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        await anyio.sleep(1)
        kids = proc_children(server.proc.pid)
        child_rss = [rss_kib(pid) for pid in kids]
        gw_after = rss_kib(server.proc.pid)
    return statistics.mean(child_rss) / 1024, (gw_after - gw_before) / n / 1024


async def concurrent(server, certs, key, n: int, tool: str, args: dict) -> tuple[int, list[str], float]:
    errors: list[str] = []
    ok = 0
    start = time.perf_counter()

    async def one() -> None:
        nonlocal ok
        try:
            async with mcp_session(server.url, certs, key) as s:
                await s.list_tools()
                await s.call_tool(tool, args)
                ok += 1
        except Exception as exc:  # counted, reported
            errors.append(f"{type(exc).__name__}: {exc}"[:200])

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return ok, errors, time.perf_counter() - start


from tests.server.stdio.conftest import HEADERS, INIT  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=["fixture", "time"], default="fixture")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--idle", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    command, tool, tool_args = server_command(args.server)
    workdir = Path(tempfile.mkdtemp())
    certs = make_certs(workdir)
    store_url = f"sqlite:///{workdir / 'keys.db'}"
    store = SqliteStore(store_url)
    key = lifecycle.create_key(store, KeyHasher(), name="bench", actor="bench", now=utcnow(),
                               scopes=["tools:read"]).token.reveal()
    store.close()
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--no-log-stdout", "--max-sessions-per-key", "200",
                            "--stdio", "--stdio-cwd", str(ROOT), "--stdio-max-children-per-key", "100",
                            "--stdio-max-children", "100", "--stdio-spawn-rate", "10000/min",
                            "--", *command], base_env({"MCPADMIN_STORE": store_url}),
                           workdir / "events.jsonl").start()
    # The HTTPS floor: plain `serve` (built-in whoami) with the same client, same envelope.
    plain = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                           "--no-log-stdout"], base_env({"MCPADMIN_STORE": store_url}),
                          workdir / "plain.jsonl").start()
    try:
        direct, gateway, builtin = anyio.run(per_call, server, plain, certs, key, command, tool,
                                             tool_args, args.calls, args.blocks)
        starts = anyio.run(session_starts, server, certs, key, args.starts)
        child_mib, gw_mib = anyio.run(idle_memory, server, certs, key, args.idle)
        ok, errors, took = anyio.run(concurrent, server, certs, key, args.concurrent, tool, tool_args)
    finally:
        server.stop()
        plain.stop()
    print(f"machine: {machine()}\nstdio server: {' '.join(Path(c).name for c in command)}\n")
    print(f"1. {len(direct)} tools/call {tool} each, {args.blocks} alternating blocks")
    for label, values in (("direct (MCP client → stdio)", direct),
                          ("gateway (MCP client → HTTPS → stdio)", gateway),
                          ("built-in server (MCP client → HTTPS)", builtin)):
        print(f"   {label:38s} p50 {statistics.median(values) * 1000:6.2f} ms"
              f"   p90 {pct(values, 0.9) * 1000:6.2f} ms   p99 {pct(values, 0.99) * 1000:6.2f} ms")
    overhead = statistics.median(gateway) - statistics.median(direct)
    print(f"   gateway overhead at p50: {overhead * 1000:.2f} ms per call "
          f"({'OK' if overhead <= 0.002 else 'OVER'} target ≤ 2 ms)")
    relay = statistics.median(gateway) - statistics.median(builtin)
    # Both answer a plain call with one JSON body, so the client keeps its connection (before,
    # the built-in server's SSE answers cost a TCP + TLS connection per call; tools.py says why):
    # the difference is the stdio relay and the child.
    print(f"   gateway minus built-in server (both JSON answers) over the same HTTPS: "
          f"{relay * 1000:.2f} ms")
    print(f"2. session start (spawn + initialize), {len(starts)} sessions: "
          f"p50 {statistics.median(starts) * 1000:.1f} ms   p99 {pct(starts, 0.99) * 1000:.1f} ms")
    print(f"3. idle session memory ({args.idle} sessions): child RSS {child_mib:.1f} MiB, "
          f"gateway +{gw_mib:.2f} MiB per session")
    print(f"4. {args.concurrent} concurrent sessions: {ok} ok, {len(errors)} errors in {took:.1f} s")
    for error in sorted(set(errors))[:5]:
        print(f"   {error}")


if __name__ == "__main__":
    main()
