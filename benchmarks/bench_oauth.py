"""OAuth resource-server costs (issue 13), side by side in one run:

- JWT access-token verification with the issuer's JWKS cached (signature, iss, aud, exp/nbf,
  scope map), in-process p50/p99 — target ≤ 100 µs p50;
- the verified-token cache hit (what every later request with the same token costs), and a
  cached introspection result — target ≤ 20 µs;
- requests/s on MCP `tools/call` through the envelope in OAuth mode vs the same app bare —
  target ≥ 0.9 — with the API-key envelope alongside for reference (one uvicorn subprocess
  each, started once, then short wrk rounds in an order that rotates each round; the median of
  the rounds' own ratios: bench_envelope.py's method);
- the CPU each envelope itself costs per tools/call request, in this process around the same
  no-op endpoint (bench_peer.py's method): OAuth vs API key, free of the shared machine's noise.

The issuer is tests/oauth/issuer.py on plain HTTP loopback (RS256, 2048-bit keys).

    python benchmarks/bench_oauth.py [--seconds 2] [--rounds 15] [--connections 8] [--samples 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import alternate, machine, paired_ratios
from _servers import start_apps, stop_apps
from bench_envelope import CALL, HEADERS, _mcp_session, _wrk

from finops_mcp_admin.server.oauth.verifier import OAuthSettings, OAuthVerifier
from tests.oauth.issuer import Issuer

AUD = "https://mcp.example.com/mcp"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def in_process(issuer: Issuer, n: int) -> dict[str, tuple[float, float]]:
    verifier = OAuthVerifier(OAuthSettings(
        issuer=issuer.url, audience=AUD, server_scopes=frozenset({"tools:read", "tools:write"}),
        scope_map={"mcp:tools": "tools:read"}, introspection_url=issuer.origin + "/introspect",
        client_id=issuer.client[0], client_secret=issuer.client[1]))
    tokens = [issuer.mint(AUD, jti=f"bench-{i}", scope="mcp:tools tools:write") for i in range(n)]
    assert verifier.verify(issuer.mint(AUD)).principal is not None  # JWKS fetched once, here
    cold, hot = [], []
    for token in tokens:
        t0 = time.perf_counter()
        ok = verifier.verify(token).principal is not None
        t1 = time.perf_counter()
        hit = verifier.cached(token) is not None
        t2 = time.perf_counter()
        assert ok and hit
        cold.append(t1 - t0)
        hot.append(t2 - t1)
    issuer.opaque["opaque-bench"] = {"active": True, "iss": issuer.url, "aud": AUD, "sub": "bench",
                                     "scope": "tools:read", "exp": int(time.time()) + 3600}
    assert verifier.verify("opaque-bench").principal is not None
    introspected = []
    for _ in range(n):
        t0 = time.perf_counter()
        hit = verifier.cached("opaque-bench") is not None
        introspected.append(time.perf_counter() - t0)
        assert hit
    return {"JWT verify, JWKS cached": _percentiles(cold),
            "verified-token cache hit": _percentiles(hot),
            "cached introspection": _percentiles(introspected)}


def envelope_ratio(issuer: Issuer, args: argparse.Namespace, workdir: Path) -> dict[str, list[float]]:
    from finops_mcp_admin import lifecycle
    from finops_mcp_admin.durations import utcnow
    from finops_mcp_admin.keys import KeyHasher
    from finops_mcp_admin.store.sqlite import SqliteStore

    store = SqliteStore(f"sqlite:///{workdir / 'keys.db'}")
    key = lifecycle.create_key(store, KeyHasher(), name="bench", actor="bench", now=utcnow(),
                               scopes=["tools:read"], rate="100000000/s").token.reveal()
    store.close()
    modes = ("bare", "oauth", "envelope")
    running = start_apps(modes, lambda mode, port: {
        "BENCH_MODE": mode, "BENCH_INNER": "mcp", "BENCH_ISSUER": issuer.url,
        "BENCH_RESOURCE": f"http://127.0.0.1:{port}/mcp", "BENCH_LOG": str(workdir / "events.jsonl"),
        "MCPADMIN_STORE": f"sqlite:///{workdir / 'keys.db'}"})
    try:
        loads = {}
        for mode, (_proc, port) in running.items():
            url = f"http://127.0.0.1:{port}/mcp"
            token = key if mode == "envelope" else issuer.mint(url, exp=int(time.time()) + 3600)
            auth = {"Authorization": f"Bearer {token}"}
            loads[mode] = (url, {**HEADERS, **auth, **_mcp_session(url, auth)})
            _wrk(*loads[mode], CALL, 1, args.connections, workdir)  # warm-up
        results = alternate(modes, args.rounds, lambda mode, _i: _wrk(
            *loads[mode], CALL, args.seconds, args.connections, workdir))
    finally:
        stop_apps(running)
    return results


def envelope_cpu(issuer: Issuer, workdir: Path, batches: int = 15,
                 per_batch: int = 1000) -> dict[str, float]:
    """CPU µs per tools/call request through each envelope around routed_trivial (in-process)."""
    import asyncio
    import json

    import envelope_apps
    from _inprocess import cpu_per_request
    from bench_envelope import CALL

    from finops_mcp_admin import lifecycle
    from finops_mcp_admin.config import load_settings
    from finops_mcp_admin.durations import utcnow
    from finops_mcp_admin.keys import KeyHasher
    from finops_mcp_admin.server.run import ServeOptions, build
    from finops_mcp_admin.store.sqlite import SqliteStore

    store_url = f"sqlite:///{workdir / 'cpu.db'}"
    store = SqliteStore(store_url)
    key = lifecycle.create_key(store, KeyHasher(), name="cpu", actor="bench", now=utcnow(),
                               scopes=["tools:read"], rate="100000000/s").token.reveal()
    store.close()
    resource = "http://127.0.0.1:8000/mcp"
    common = {"app_ref": "envelope_apps:routed_trivial", "default_scope": "tools:read",
              "log_stdout": False, "log_file": str(workdir / "cpu-events.jsonl"), "max_failures": 10**9}
    servers = {"API key": build(load_settings(store=store_url), ServeOptions(**common)),
               "OAuth JWT": build(load_settings(store=store_url), ServeOptions(
                   **common, auth="oauth", oauth_issuer=issuer.url, public_url=resource))}
    tokens = {"API key": key, "OAuth JWT": issuer.mint(resource, exp=int(time.time()) + 3600)}
    apps = {"bare": envelope_apps.routed_trivial, **{k: v.app for k, v in servers.items()}}

    def headers(name: str) -> dict[str, str]:
        h = {**HEADERS, "Host": "127.0.0.1:8000", "Mcp-Session-Id": "0" * 32,
             "Mcp-Protocol-Version": "2025-11-25"}
        if name in tokens:
            h["Authorization"] = f"Bearer {tokens[name]}"
        return h

    try:  # the first requests verify (argon2, JWKS fetch)
        return asyncio.run(cpu_per_request(apps, {name: headers(name) for name in apps},
                                           json.dumps(CALL).encode(), batches, per_batch))
    finally:
        for server in servers.values():
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    issuer = Issuer(None).start()
    print(f"machine: {machine()}\n")
    try:
        print(f"{'in-process':28s} {'p50 µs':>8s} {'p99 µs':>8s}  target")
        for label, (p50, p99) in in_process(issuer, args.samples).items():
            target = 100 if label.startswith("JWT") else 20
            verdict = "OK" if p50 <= target else "ABOVE"
            print(f"{label:28s} {p50:8.1f} {p99:8.1f}  p50 ≤ {target} µs {verdict}")
        cpu = envelope_cpu(issuer, workdir)
        print(f"\n{'in-process, CPU per tools/call':32s} {'µs':>7s}")
        for name, value in cpu.items():
            extra = "" if name == "bare" else f"  (+{value - cpu['bare']:.1f} µs over bare)"
            print(f"  {name:30s} {value:7.1f}{extra}")
        print(f"\nload: wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, the "
              "order rotating each round; the ratio is the median of the rounds' own ratios")
        results = envelope_ratio(issuer, args, workdir)
    finally:
        issuer.stop()
    bare = statistics.median(results["bare"])
    print(f"{'MCP tools/call':28s} {'req/s':>8s} {'ratio':>6s}  {'rounds min-max':>14s}")
    print(f"{'  bare':28s} {bare:8.0f}")
    for mode, label in (("oauth", "  envelope, OAuth JWT"), ("envelope", "  envelope, API key")):
        ratios = paired_ratios(results, mode, "bare")
        ratio = statistics.median(ratios)
        verdict = ("OK" if ratio >= 0.9 else "BELOW") if mode == "oauth" else "(reference)"
        print(f"{label:28s} {statistics.median(results[mode]):8.0f} {ratio:6.3f}  "
              f"{min(ratios):6.2f}-{max(ratios):<6.2f}  {'≥ 0.9 ' if mode == 'oauth' else ''}{verdict}")
    print("rounds:", {k: [round(v) for v in vals] for k, vals in results.items()})


if __name__ == "__main__":
    main()
