"""Whole-process wall time of `mcpadmin --help` and `mcpadmin keys list` on an empty (existing) store,
side by side with a bare interpreter start. Target: ≤ 0.25 s each.

    python benchmarks/bench_cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, summary, time_process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    script = shutil.which("mcpadmin")
    # Resolve pyenv-style shims (a shell script in front of Python) to the real console script.
    real = Path(sys.executable).parent / "mcpadmin"
    mcpadmin = str(real) if real.exists() else script
    if mcpadmin is None:
        raise SystemExit("mcpadmin is not installed (pip install -e .)")
    data = tempfile.mkdtemp()
    env = {**os.environ, "XDG_DATA_HOME": data, "XDG_CONFIG_HOME": data}
    env.pop("MCPADMIN_STORE", None)
    env.pop("MCPADMIN_PROFILE", None)
    # A read never creates the store (it would exit 3 on a missing one): make the empty store once.
    subprocess.run([mcpadmin, "cors", "add", "https://bench.example"], env=env, check=True,
                   capture_output=True)
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "mcpadmin --help": [mcpadmin, "--help"],
        "mcpadmin config show": [mcpadmin, "config", "show"],
        "mcpadmin keys list (empty sqlite)": [mcpadmin, "keys", "list"],
        "mcpadmin keys list -o json": [mcpadmin, "keys", "list", "-o", "json"],
    }
    print(f"machine: {machine()}\nruns: {args.runs} each (first run discarded)\n")
    medians = {}
    for label, cmd in cases.items():
        times = time_process(cmd, args.runs, env=env)
        medians[label] = statistics.median(times)
        print(f"{label:36s} {summary(times)}")
    floor = medians["python -c pass (floor)"]
    print()
    for label, value in medians.items():
        verdict = "" if "floor" in label else ("  OK (≤ 250 ms)" if value <= 0.25 else "  OVER 250 ms")
        print(f"{label:36s} {value / floor:5.2f}x interpreter start{verdict}")


if __name__ == "__main__":
    main()
