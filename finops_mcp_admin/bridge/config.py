"""The bridge's configuration from the environment, and the URL and TLS rules it must pass.

Imports neither `mcp` nor `anyio`: `mcpadmin bridge --help` and `bridge config` stay fast.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import InvalidInput
from ..keys import Secret


@dataclass(frozen=True)
class BridgeConfig:
    """Where to connect and how; from the environment the seed specifies."""

    url: str
    api_key: Secret | None = field(repr=False, default=None)
    ca_bundle: str | None = None
    timeout: float = 30.0
    max_response_bytes: int = 16 * 1024 * 1024
    allow_http: bool = False  # http:// to loopback hosts (the server, and OAuth endpoints)
    oauth_client_id: str | None = None  # pre-registered OAuth client; else Dynamic Client Registration
    signin_timeout: float = 300.0  # how long an OAuth sign-in waits for the user in the browser

    @classmethod
    def from_env(cls, url: str | None = None, allow_http: bool = False,
                 environ: Mapping[str, str] | None = None) -> BridgeConfig:
        """MCP_SERVER_URL, MCP_API_KEY, MCP_CA_BUNDLE (or SSL_CERT_FILE), MCP_TIMEOUT,
        MCP_MAX_RESPONSE_BYTES, MCP_OAUTH_CLIENT_ID, MCP_SIGNIN_TIMEOUT."""
        env = os.environ if environ is None else environ
        url = url or env.get("MCP_SERVER_URL", "")
        if not url:
            raise InvalidInput("no server URL: set MCP_SERVER_URL or pass URL")
        check_url(url, allow_http)
        key = env.get("MCP_API_KEY", "").strip()
        try:
            timeout = float(env.get("MCP_TIMEOUT") or 30)
        except ValueError:
            raise InvalidInput("MCP_TIMEOUT must be a number of seconds") from None
        if not 0 < timeout <= 3600:
            raise InvalidInput("MCP_TIMEOUT must be between 0 and 3600 seconds")
        try:
            max_bytes = int(env.get("MCP_MAX_RESPONSE_BYTES") or 16 * 1024 * 1024)
        except ValueError:
            raise InvalidInput("MCP_MAX_RESPONSE_BYTES must be a number of bytes") from None
        if max_bytes < 1024:
            raise InvalidInput("MCP_MAX_RESPONSE_BYTES must be at least 1024")
        ca = env.get("MCP_CA_BUNDLE") or env.get("SSL_CERT_FILE") or None
        if ca and not os.path.isfile(ca):
            raise InvalidInput(f"CA bundle {ca} does not exist")
        if ca:
            try:
                ssl.create_default_context(cafile=ca)
            except (ssl.SSLError, OSError) as exc:  # was "unexpected SSLError" at first connect
                raise InvalidInput(f"CA bundle {ca} holds no usable PEM certificate: "
                                   f"{getattr(exc, 'reason', None) or exc.strerror}") from None
        try:
            signin_timeout = float(env.get("MCP_SIGNIN_TIMEOUT") or 300)
        except ValueError:
            raise InvalidInput("MCP_SIGNIN_TIMEOUT must be a number of seconds") from None
        if not 0 < signin_timeout <= 3600:
            raise InvalidInput("MCP_SIGNIN_TIMEOUT must be between 0 and 3600 seconds")
        client_id = env.get("MCP_OAUTH_CLIENT_ID", "").strip() or None
        if client_id is not None and not client_id.isprintable():
            raise InvalidInput("MCP_OAUTH_CLIENT_ID must be printable text")
        return cls(url=url, api_key=Secret(key) if key else None, ca_bundle=ca, timeout=timeout,
                   max_response_bytes=max_bytes, allow_http=allow_http, oauth_client_id=client_id,
                   signin_timeout=signin_timeout)


def check_url(url: str, allow_http: bool) -> None:
    """https:// always; http:// only to a loopback host and only when explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if not _is_loopback(parts.hostname):
            raise InvalidInput(f"refusing http:// to {parts.hostname}: the key would cross the "
                               "network in plaintext; use https://")
        if not allow_http:
            raise InvalidInput("http:// needs --allow-http (loopback only)")
        return
    raise InvalidInput(f"invalid server URL {url!r}: use https://host[:port]/mcp")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ssl_context(config: BridgeConfig) -> ssl.SSLContext:
    """Verifying context: the system trust store, or the given CA bundle; TLS 1.2+."""
    ctx = ssl.create_default_context(cafile=config.ca_bundle)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
