"""What the bridge's user reads: one actionable sentence per transport failure, the JSON-RPC
error for each HTTP refusal of the secured server, and the redactor that keeps the key out of
all of it (stderr included).

Imports neither `mcp` nor `anyio`.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any, TextIO, cast
from urllib.parse import urlsplit

from ..keys import Secret

AUTH_FAILED = -32001  # implementation-defined server-error range of JSON-RPC
FORBIDDEN = -32003
UNAVAILABLE = -32002


class Redactor:
    """Removes secrets from text; wraps a stream so nothing written to it can leak one."""

    def __init__(self, *secrets: Secret | None) -> None:
        raw = {s.reveal() for s in secrets if s is not None and len(s.reveal()) >= 4}
        # Also as it appears inside a JSON string (a key with a quote or backslash is escaped).
        self._values = sorted(raw | {json.dumps(v)[1:-1] for v in raw}, key=len, reverse=True)

    def add(self, value: str) -> None:
        """Remove `value` too from now on: a token the bridge obtained while running."""
        if len(value) >= 4 and value not in self._values:
            self._values = sorted({*self._values, value, json.dumps(value)[1:-1]}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
        return text

    def wrap(self, stream: IO[str]) -> TextIO:
        """A stream whose writes are redacted (used for the process's stderr)."""
        # A proxy, not a TextIO subclass: every attribute but write() must be the wrapped
        # stream's own (fileno, flush, encoding...), which subclassing would shadow.
        return cast(TextIO, _RedactingStream(stream, self))


class _RedactingStream:
    def __init__(self, stream: IO[str], redact: Redactor) -> None:
        self._stream = stream
        self._redact = redact

    def write(self, text: str) -> int:
        return self._stream.write(self._redact(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def describe_failure(exc: BaseException, url: str) -> str:
    """One actionable sentence for a transport failure (certificate, connection, timeout)."""
    leaves = _leaves(exc)
    text = " | ".join(f"{type(e).__name__}: {e}" for e in leaves)
    host = urlsplit(url).hostname or url
    refused = [e for e in leaves if type(e).__name__ in _SIGN_IN_ERRORS]
    if refused:  # bridge/oauth*.py and the SDK's OAuth flow: the check that failed, as it said
        return f"OAuth sign-in to the MCP server at {host} failed: {_first(refused)}"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" .") \
            if "certificate verify failed:" in text else "untrusted certificate"
        return (f"TLS certificate verification failed for {host}: {reason}. If the server uses a "
                "private CA, set MCP_CA_BUNDLE to its certificate file")
    if any(type(e).__name__ in ("ConnectError", "ConnectionRefusedError", "OSError") for e in leaves):
        return f"cannot connect to {url}: {_first(leaves)}"
    if any("Timeout" in type(e).__name__ for e in leaves):
        return f"the MCP server at {host} did not answer in time (MCP_TIMEOUT)"
    return f"connection to the MCP server at {host} failed: {_first(leaves)}"


#: The sign-in's own failures (bridge/oauth_policy.py and mcp.client.auth), named without importing
#: them: this module must not pull in `mcp`.
_SIGN_IN_ERRORS = ("SignInRefused", "OAuthFlowError", "OAuthTokenError", "OAuthRegistrationError")


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    out = [exc]
    if exc.__cause__ is not None:
        out += _leaves(exc.__cause__)
    return out


def _first(leaves: list[BaseException]) -> str:
    for e in leaves:
        if str(e):
            return str(e).splitlines()[0][:200]
    return type(leaves[0]).__name__


#: RFC 6750 `scope="..."` auth-param (not the tail of another parameter's name).
_SCOPE_PARAM = re.compile(r'(?:^|[\s,])scope="([^"]*)"')


def http_error_message(status: int, www_authenticate: str, retry_after: str | None,
                       oauth: bool = False) -> tuple[int, str]:
    """JSON-RPC (code, message) for an HTTP refusal from the secured server."""
    if status == 401 and oauth:  # the bridge signed in, and the server still refused the token
        return AUTH_FAILED, ("authentication failed: the MCP server rejected the OAuth access token "
                             "even after a fresh sign-in (HTTP 401). Ask its administrator to check "
                             "the server's issuer and audience")
    if status == 401:
        return AUTH_FAILED, ("authentication failed: the MCP server rejected the API key "
                             "(HTTP 401). Check MCP_API_KEY")
    if status == 403 and "insufficient_scope" in www_authenticate:
        found = _SCOPE_PARAM.search(www_authenticate)
        if found is None:  # deny by default: no scope would grant a method or tool not mapped
            return FORBIDDEN, ("permission denied: the MCP server allows this method or tool to no "
                               "key (HTTP 403): it is not in the server's scope map. Ask the "
                               "administrator to map it")
        return FORBIDDEN, (f"permission denied: the API key lacks the scope {found.group(1)!r} this "
                           "call needs (HTTP 403). Ask the administrator for a key with that scope")
    if status == 403:
        return FORBIDDEN, "the MCP server refused the request (HTTP 403)"
    if status == 429:
        return UNAVAILABLE, (f"rate limited by the MCP server after failed attempts (HTTP 429)"
                             f"{'; retry after ' + retry_after + ' s' if retry_after else ''}")
    if status == 503:
        return UNAVAILABLE, "the MCP server is temporarily unavailable (HTTP 503); try again shortly"
    return UNAVAILABLE, f"the MCP server answered HTTP {status}"
