"""One stdio server process: spawned without a shell in its own process group, under resource
limits, and ended as a whole group (the server's own children too), reaped, never a zombie.

Every live group is also kept in LIVE so that the gateway's last act on the way out
(`kill_all`, also registered with atexit) leaves no child behind, however the loop ended."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import resource
import signal
import subprocess
from collections.abc import Callable

from .options import StdioOptions, child_env

#: Seconds a child has to exit after SIGTERM before its group gets SIGKILL.
TERM_GRACE = 2.0
#: Process group ids of the children alive now (event-loop state; read by kill_all at exit).
LIVE: set[int] = set()


def _limits(memory_mb: int | None, cpu_seconds: int | None) -> Callable[[], None] | None:
    """A preexec function setting RLIMIT_AS / RLIMIT_CPU in the child, before it execs.

    It runs between fork and exec: only async-signal-safe work in there (two setrlimit calls on
    values computed here in the parent; no allocation-heavy Python, no locks)."""
    if memory_mb is None and cpu_seconds is None:
        return None
    as_bytes = None if memory_mb is None else memory_mb * 1024 * 1024
    cpu = cpu_seconds

    def apply() -> None:
        if as_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
        if cpu is not None:  # soft limit: SIGXCPU; one second later the hard limit: SIGKILL
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    return apply


async def spawn(opts: StdioOptions) -> asyncio.subprocess.Process:
    """Start the stdio server: argv as given (no shell), the allowlisted environment only, its
    own session and process group (so it can be ended as a whole and no terminal signal of
    ours reaches it)."""
    proc = await asyncio.create_subprocess_exec(
        *opts.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=child_env(opts.env_allow), cwd=opts.cwd, start_new_session=True, close_fds=True,
        preexec_fn=_limits(opts.memory_mb, opts.cpu_seconds),  # setrlimit only (see _limits)
        limit=opts.max_message_bytes)
    LIVE.add(proc.pid)
    return proc


async def end(proc: asyncio.subprocess.Process) -> int | None:
    """End the child's whole process group: close its stdin (a polite stdio server exits on
    EOF), SIGTERM, then SIGKILL after TERM_GRACE; reap it. Returns its exit status."""
    try:
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), TERM_GRACE)
        _signal_group(proc.pid, signal.SIGKILL)  # the group's other members too, even if it exited
        return await proc.wait()
    finally:
        LIVE.discard(proc.pid)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_all() -> None:
    """SIGKILL every child group still alive (the gateway is exiting). Synchronous: it also runs
    from atexit, after the event loop is gone; the kernel reaps them once we exit."""
    for pgid in list(LIVE):
        _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pgid, os.WNOHANG)
        LIVE.discard(pgid)


atexit.register(kill_all)
