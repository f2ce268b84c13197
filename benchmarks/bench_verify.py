"""Cached verification vs argon2, in-process: the server's hot path per request.
Target: cached ≤ 50 µs (vs ≈30-200 ms for an argon2 verify).

    python benchmarks/bench_verify.py [--n 100000]
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
from _common import machine

from finops_mcp_admin import lifecycle
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.keys import HashParams, KeyHasher, Secret
from finops_mcp_admin.server.auth import KeyVerifier
from finops_mcp_admin.store.sqlite import SqliteStore


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    store = SqliteStore(f"sqlite:///{workdir / 'keys.db'}")
    hasher = KeyHasher()  # default: OWASP minimum
    token = lifecycle.create_key(store, hasher, name="bench", actor="b", now=utcnow(),
                                 scopes=["tools:read"]).token.reveal()
    verifier = KeyVerifier(store, hasher)
    assert verifier.verify(token, utcnow()).principal is not None
    print(f"machine: {machine()}\n")
    cached = [per_call(lambda: verifier.cached(token), args.n) for _ in range(5)]
    c = statistics.median(cached)
    print(f"cached verification (hot path)         {c * 1e6:8.2f} µs  (median of 5 x {args.n})")
    rows = [("argon2id verify, OWASP minimum (m=19 MiB, t=2)", HashParams()),
            ("argon2id verify, argon2-cffi default (m=64 MiB, t=3, p=4)", HashParams(3, 65536, 4))]
    for label, params in rows:
        h = KeyHasher(params)
        phc = h.hash(Secret(token))
        t = statistics.median(per_call(lambda h=h, phc=phc: h.verify(phc, Secret(token)), 5)
                              for _ in range(3))
        print(f"{label:54s} {t * 1e3:8.2f} ms  = {t / c:,.0f}x the cached path")
    cold = statistics.median(per_call(lambda: (verifier.invalidate(), verifier.verify(token, utcnow())), 5)
                             for _ in range(3))
    print(f"{'cold path: store lookup + argon2 (OWASP minimum)':54s} {cold * 1e3:8.2f} ms")
    print(f"\ncached ≤ 50 µs target: {'OK' if c <= 50e-6 else 'OVER'}")


if __name__ == "__main__":
    main()
