"""Helpers for server benchmarks: run ASGI apps under uvicorn in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import _wait_for_port, free_port  # noqa: E402

__all__ = ["free_port", "start", "start_apps", "stop_apps", "wait_port"]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Block until something listens on port (or the process died)."""
    _wait_for_port(port, proc, timeout)


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)


def start_apps(names: tuple[str, ...], env_for: Callable[[str, int], dict[str, str]],
               app: str = "benchmarks.envelope_apps:app") -> dict[str, tuple[subprocess.Popen, int]]:
    """One uvicorn per configuration (an app factory; env_for(name, port) its environment),
    all listening before this returns. The benchmarks start them once and alternate short wrk
    rounds among them: many rounds, each configuration's next to the others' in time, so the
    machine's drift (minutes long, 15 % and more here) cancels out of each round's ratios."""
    running: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for name in names:
            port = free_port()
            proc = start(["-m", "uvicorn", app, "--factory", "--port", str(port), "--log-level",
                          "warning", "--no-access-log"], env_for(name, port))
            running[name] = (proc, port)
            wait_port(port, proc)
    except BaseException:
        stop_apps(running)
        raise
    return running


def stop_apps(running: dict[str, tuple[subprocess.Popen, int]]) -> None:
    for proc, _port in running.values():
        proc.terminate()
    for proc, _port in running.values():
        proc.wait()
