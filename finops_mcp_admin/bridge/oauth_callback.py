"""The two places a sign-in leaves the bridge: the browser it opens (through Python's
`webbrowser`, in a child process, never a shell) and the loopback listener on 127.0.0.1 that the
authorization server redirects back to (RFC 8252 §7.3: an ephemeral port, opened for one sign-in).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.abc import SocketStream
from mcp.shared.auth import AuthorizationCodeResult

from .oauth_policy import SignInRefused

CALLBACK_PATH = "/callback"
#: Loopback redirect URI registered with the authorization server: RFC 8252 §7.3 has it accept
#: any port at request time, so one registration serves every sign-in's ephemeral port.
REGISTERED_REDIRECT_URI = f"http://127.0.0.1{CALLBACK_PATH}"
MAX_REQUEST_BYTES = 16 * 1024
#: The child that opens the browser: the URL arrives on stdin (not argv), its stdout is not
#: ours (the bridge's stdout is the JSON-RPC channel), -I ignores PYTHON* variables.
_OPENER = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.stdin.readline().strip(), new=2) else 1)"
BROWSER_TIMEOUT = 15.0

_PAGE = ("<!doctype html><meta charset=utf-8><title>{title}</title><p>{title}. You can close this "
         "tab.</p>")


async def open_browser(url: str) -> bool:
    """Ask the desktop's browser to open an already checked URL; False when there is none."""
    try:
        with anyio.move_on_after(BROWSER_TIMEOUT) as scope:
            done = await anyio.run_process([sys.executable, "-I", "-c", _OPENER], input=url.encode() + b"\n",
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           check=False)
    except OSError:
        return False
    return not scope.cancelled_caught and done.returncode == 0


class LoopbackCallback:
    """One sign-in's redirect listener on 127.0.0.1:ephemeral. `expect(state)` arms it; `wait()`
    returns the first redirect to /callback. A redirect with another state ends the sign-in
    (fail closed: it is either a stale tab or a forged request, and never exchanged)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
        self._state: str | None = None
        self._result: AuthorizationCodeResult | SignInRefused | None = None
        self._done = anyio.Event()

    def expect(self, state: str) -> None:
        self._state = state

    async def wait(self) -> AuthorizationCodeResult:
        await self._done.wait()
        if isinstance(self._result, SignInRefused):
            raise self._result
        assert self._result is not None
        return self._result

    async def handle(self, stream: SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(10):
                head = await _read_head(stream)
                status, title = self._judge(head)
                body = _PAGE.format(title=title).encode()
                await stream.send(f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                                  f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                                  "Connection: close\r\n\r\n".encode() + body)

    def _judge(self, head: bytes | None) -> tuple[str, str]:
        line = head.split(b"\r\n", 1)[0].decode("latin-1") if head else ""
        method, _, rest = line.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        parts = urlsplit(target)
        if method != "GET" or parts.path != CALLBACK_PATH or self._done.is_set():
            return "404 Not Found", "Nothing here"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        state = query.get("state", "")
        if self._state is None or not secrets.compare_digest(state.encode(), self._state.encode()):
            self._finish(SignInRefused("the sign-in redirect carried the wrong state: possibly a forged "
                                       "request; sign-in abandoned, nothing was exchanged"))
            return "400 Bad Request", "Sign-in refused: wrong state"
        if "error" in query:
            error = "".join(c for c in query["error"][:64] if c.isalnum() or c in "_-")
            self._finish(SignInRefused(f"the authorization server refused the sign-in: {error}"))
            return "400 Bad Request", "Sign-in refused"
        if not query.get("code"):
            self._finish(SignInRefused("the sign-in redirect carried no authorization code"))
            return "400 Bad Request", "Sign-in failed"
        self._finish(AuthorizationCodeResult(code=query["code"], state=state, iss=query.get("iss")))
        return "200 OK", "Signed in to the MCP server"

    def _finish(self, result: AuthorizationCodeResult | SignInRefused) -> None:
        self._result = result
        self._done.set()


async def _read_head(stream: SocketStream) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = await stream.receive(4096)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return None
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            return None
    return data


@asynccontextmanager
async def loopback_callback() -> AsyncIterator[LoopbackCallback]:
    """Listen on 127.0.0.1 (never a wildcard address) on an ephemeral port for one sign-in."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    callback = LoopbackCallback(port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, callback.handle)
        try:
            yield callback
        finally:
            tg.cancel_scope.cancel()
