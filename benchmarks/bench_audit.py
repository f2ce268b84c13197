"""`mcpadmin audit failures --since 24h --by ip` over a 1,000,000-line local log (≈ 250 MB):
wall time and peak RSS (targets ≤ 5 s, ≤ 100 MB), side by side with the pipeline a user would
otherwise reach for: `jq -c 'select(.event=="auth_failure")' | sort | uniq -c`.

    python benchmarks/bench_audit.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

EVENTS = ["auth_failure"] * 5 + ["cors_rejected", "rate_limited", "insufficient_scope"]
REASONS = ["wrong_secret", "unknown_key", "revoked", "expired", "missing_credentials", "malformed_token"]


def generate(path: Path, lines: int) -> None:
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=23)
    step = timedelta(hours=23) / lines
    ips = [f"203.0.{i // 250}.{i % 250}" for i in range(2000)]
    with path.open("w") as fh:
        for i in range(lines):
            ts = (start + step * i).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            fh.write(json.dumps({
                "ts": ts, "event": rng.choice(EVENTS), "reason": rng.choice(REASONS),
                "client_ip": rng.choice(ips), "method": "POST", "path": "/mcp",
                "key_id": f"{rng.randrange(10**11):012d}", "origin": None,
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) claude-desktop/1.2.3",
                "correlation_id": f"{rng.getrandbits(128):032x}"}, separators=(",", ":")) + "\n")


def run(cmd: str | list[str], shell: bool = False) -> tuple[float, float]:
    """(wall seconds, peak RSS MB of the child processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    log = workdir / "events.jsonl"
    generate(log, args.lines)
    size = log.stat().st_size / 1e6
    print(f"machine: {machine()}\nlog: {args.lines:,} lines, {size:.0f} MB\n")
    mcpadmin = [str(Path(sys.executable).parent / "mcpadmin"), "audit", "failures", "--since", "24h",
                "--by", "ip", "--log-file", str(log)]
    # Peak RSS is per child: run each measured command in its own fresh child process.
    measure = [sys.executable, "-c", "import resource,subprocess,sys,time;"
               "t=time.perf_counter();subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL,"
               "shell=len(sys.argv)==2);print(time.perf_counter()-t,"
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)"]
    rows = {}
    for label, cmd in [("mcpadmin audit failures --by ip", mcpadmin),
                       ("jq | sort | uniq -c (baseline)",
                        [f"jq -c 'select(.event==\"auth_failure\") | .client_ip' {log} | sort | uniq -c"])]:
        if label.startswith("jq") and not shutil.which("jq"):
            print(f"{label:36s} skipped: jq not installed")
            continue
        results = []
        for _ in range(3):
            out = subprocess.run(measure + cmd, capture_output=True, text=True, check=True).stdout.split()
            results.append((float(out[0]), float(out[1])))
        wall = sorted(r[0] for r in results)[1]
        rss = max(r[1] for r in results)
        rows[label] = wall
        print(f"{label:36s} wall {wall:6.2f} s (median of 3)   peak RSS {rss:6.1f} MB")
    if len(rows) == 2:
        a, b = rows.values()
        print(f"\nmcpadmin is {b / a:.1f}x faster than the jq pipeline")
    os.remove(log)


if __name__ == "__main__":
    main()
