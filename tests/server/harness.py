"""Start `mcpadmin serve` in a real subprocess and talk to it with the official MCP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from tests.redis_server import free_port


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


def make_certs(directory: Path, *names: str) -> Certs:
    ca = trustme.CA()
    cert = ca.issue_cert(*(names or ("localhost", "127.0.0.1")))
    directory.mkdir(parents=True, exist_ok=True)
    files = Certs(ca, directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(files.cert_file))
    cert.private_key_pem.write_to_path(str(files.key_file))
    return files


@dataclass
class ServerProcess:
    """One `mcpadmin serve` subprocess."""

    args: list[str]
    env: dict[str, str]
    log_file: Path
    port: int = 0
    tls: bool = True
    proc: subprocess.Popen | None = None
    stderr_path: Path | None = None
    stdout_path: Path | None = None
    extra_ports: dict[str, int] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/mcp"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.port = self.port or free_port()
        cmd = [sys.executable, "-m", "finops_mcp_admin", "serve", "--port", str(self.port),
               "--log-file", str(self.log_file), *self.args]
        self.stderr_path = self.log_file.with_suffix(f".{self.port}.stderr")
        self.stdout_path = self.log_file.with_suffix(f".{self.port}.stdout")
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.stdout_path.open("w"), stderr=self.stderr_path.open("w"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.stderr_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start: " + self.stderr_path.read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def events(self, access: bool = False) -> list[dict[str, Any]]:
        """The security events so far. The access trail (tool_call, method_call) only with
        access=True: it is written in batches, so it lands up to ~0.3 s after the response
        (server/access.py: BATCH_DELAY + WRITE_DELAY) and would make "the last event" or
        "nothing since" checks racy. To wait for an access event: access_events."""
        if not self.log_file.exists():
            return []
        events = [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]
        return events if access else [e for e in events if e["event"] not in ("tool_call", "method_call")]

    def access_events(self, predicate: Callable[[dict[str, Any]], bool],
                      limit: float = 5.0) -> list[dict[str, Any]]:
        """The events (access trail included) that satisfy predicate, once there is one."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = [e for e in self.events(access=True) if predicate(e)]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError("no such event in the log")

    def all_output(self) -> str:
        parts = [self.log_file.read_text() if self.log_file.exists() else ""]
        for path in (self.stderr_path, self.stdout_path):
            if path and path.exists():
                parts.append(path.read_text())
        return "\n".join(parts)


def http_client(certs: Certs | None, key: str | None = None, hooks: list | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0):
    import httpx2

    all_headers = dict(headers or {})
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    return httpx2.AsyncClient(headers=all_headers, verify=certs.client_context() if certs else True,
                              timeout=httpx2.Timeout(timeout, read=60.0),
                              event_hooks={"response": hooks or []})


@asynccontextmanager
async def mcp_session(url: str, certs: Certs | None, key: str | None, statuses: list | None = None):
    """An initialised official-SDK ClientSession over Streamable HTTP."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def record(response):
        if statuses is not None:
            statuses.append((response.status_code, response.headers.get("www-authenticate")))

    async with (http_client(certs, key, [record]) as http,
                streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session):
        await session.initialize()
        yield session


async def connections_per_calls(url: str, certs: Certs | None, key: str | None, tool: str,
                                args: dict[str, Any], calls: int = 10) -> int:
    """TCP connections the official client opens for `calls` tools/calls after a warm-up call
    (httpcore reports each new connection through a request's `trace` extension). An answer the
    client cannot read to its end (an SSE body it closes early) costs a connection each."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    connects = []

    async def trace(event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            connects.append(event)

    async def traced(request) -> None:
        request.extensions["trace"] = trace

    http = http_client(certs, key)
    http.event_hooks = {**http.event_hooks, "request": [traced]}
    async with (http, streamable_http_client(url, http_client=http) as (read, write),
                ClientSession(read, write) as session):
        await session.initialize()
        await session.call_tool(tool, args)
        before = len(connects)
        for _ in range(calls):
            await session.call_tool(tool, args)
        return len(connects) - before


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    env.update(extra or {})
    return env
