"""Shared helpers for the benchmarks: timing whole processes and describing the machine."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {system}"


def time_process(cmd: list[str], runs: int, env: dict[str, str] | None = None,
                 stdin: str | None = None) -> list[float]:
    """Wall time of whole processes, seconds; the first (cold-cache) run is discarded."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        if i:
            times.append(elapsed)
    return times


def summary(times: list[float]) -> str:
    times = sorted(times)
    p90 = times[int(len(times) * 0.9) - 1] if len(times) >= 10 else times[-1]
    return f"median {statistics.median(times) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def rotated(modes: tuple[str, ...], round_no: int) -> tuple[str, ...]:
    """The configurations in the order of round `round_no`: the order rotates from round to
    round, so no configuration always runs first or last on a machine that drifts."""
    shift = round_no % len(modes)
    return modes[shift:] + modes[:shift]


def alternate(names: tuple[str, ...], rounds: int, measure: Callable[[str, int], T]) -> dict[str, list[T]]:
    """measure(name, round) for every configuration in every round, in `rotated` order."""
    results: dict[str, list[T]] = {name: [] for name in names}
    for i in range(rounds):
        for name in rotated(names, i):
            results[name].append(measure(name, i))
    return results


def paired_ratios(results: dict[str, list[float]], side: str, base: str) -> list[float]:
    """side / base within each round. A round's configurations run seconds apart, so the
    machine's drift from round to round (here 15 % and more) cancels out of each ratio; the
    median of these ratios is what the benchmarks count, not a ratio of medians."""
    return [s / b for s, b in zip(results[side], results[base], strict=True)]
