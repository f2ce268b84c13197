"""Helpers for server benchmarks: run ASGI apps under uvicorn in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.redis_server import _wait_for_port, free_port  # noqa: E402

__all__ = ["free_port", "start", "wait_port"]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Block until something listens on port (or the process died)."""
    _wait_for_port(port, proc, timeout)


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
