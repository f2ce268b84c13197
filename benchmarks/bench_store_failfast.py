"""Whole-process wall time of `mcpadmin keys list` when the store cannot be used, side by side
with a working store: a rediss:// URL to a plaintext Redis (the TLS mismatch, once 5.3 s and
"Timeout"), a rediss:// URL to a port that accepts and never answers, and a closed port.
Target: each failure exits 5 within the documented 2 s.

    python benchmarks/bench_store_failfast.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from _servers import free_port  # also puts the repository on sys.path

from tests.redis_server import RedisServer, server_binary


def _time(cmd: list[str], runs: int, expect: int) -> list[float]:
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        if proc.returncode != expect:
            raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}, expected {expect}: {proc.stderr}")
        if i:
            times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    redis = RedisServer(server_binary(), Path(tempfile.mkdtemp())).start()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    base = [sys.executable, "-m", "finops_mcp_admin", "keys", "list", "--store"]
    cases = {
        "redis:// working (reference)": (f"redis://127.0.0.1:{redis.port}/0", 0),
        "rediss:// to plaintext Redis": (f"rediss://127.0.0.1:{redis.port}/0", 5),
        "rediss:// to a silent port": (f"rediss://127.0.0.1:{silent.getsockname()[1]}/0", 5),
        "redis:// to a closed port": (f"redis://127.0.0.1:{free_port()}/0", 5),
    }
    print(f"machine: {machine()}\nruns: {args.runs} each (first run discarded)\n")
    try:
        medians = {}
        for label, (url, code) in cases.items():
            times = _time([*base, url], args.runs, code)
            medians[label] = statistics.median(times)
            print(f"{label:32s} median {medians[label] * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms")
        reference = medians["redis:// working (reference)"]
        print()
        for label, value in medians.items():
            verdict = "" if "reference" in label else ("  OK (≤ 2 s)" if value <= 2.0 else "  OVER 2 s")
            print(f"{label:32s} {value / reference:5.2f}x the working store{verdict}")
    finally:
        silent.close()
        redis.stop()


if __name__ == "__main__":
    os.environ.pop("MCPADMIN_STORE", None)
    main()
