"""The checks the bridge's OAuth sign-in must pass before it talks to, or opens, anything.

This is where mcp-remote went wrong (CVE-2025-6514): a malicious MCP server named an
"authorization URL" that the client handed to a shell. Here a URL from the server or its
authorization server is opened only when it is a plain https URL (http only to a loopback host,
with --allow-http) on the origin of the issuer the server's metadata names, made of the characters
an encoded URL has and nothing else; and it is opened through Python's `webbrowser`, never a shell.

Imports neither `mcp` nor `anyio`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from ..errors import PermissionDenied
from .config import _is_loopback


class SignInRefused(PermissionDenied):
    """The bridge refused an OAuth step: a URL, an issuer or a redirect failed a check."""


#: An authorization endpoint's path, and the query the SDK builds with urlencode: unreserved
#: characters, '/', '%'-escapes, and for the query '&', '=' and '+'. No quote, backtick, '$',
#: '(', ';', '|', space or control character survives, so nothing a shell or an OS URL handler
#: could read as syntax reaches the browser launcher.
_SAFE_PATH = re.compile(r"[A-Za-z0-9\-._~/%]*")
_SAFE_QUERY = re.compile(r"[A-Za-z0-9\-._~%&=+]*")


def check_endpoint_url(url: str, allow_http: bool, what: str) -> None:
    """https with a host; http only to a loopback host and only with --allow-http."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        if allow_http:
            return
        raise SignInRefused(f"refusing {what} {_shown(url)}: http:// needs --allow-http (loopback only)")
    raise SignInRefused(f"refusing {what} {_shown(url)}: only https:// (or http:// to a loopback host "
                        "in development) is accepted")


def check_authorization_url(url: str, issuer: str, allow_http: bool) -> str:
    """The URL may be opened in a browser: https (or loopback http) on the issuer's own origin,
    no userinfo, no fragment, only encoded-URL characters. Returns its `state` parameter."""
    check_endpoint_url(url, allow_http, "the authorization URL")
    parts, home = urlsplit(url), urlsplit(issuer)
    if (parts.scheme, parts.netloc.lower()) != (home.scheme, home.netloc.lower()) or "@" in parts.netloc:
        raise SignInRefused(f"refusing the authorization URL {_shown(url)}: it is not on the issuer "
                            f"{_shown(issuer)} that the MCP server's metadata names")
    if parts.fragment or not _SAFE_PATH.fullmatch(parts.path) or not _SAFE_QUERY.fullmatch(parts.query):
        raise SignInRefused(f"refusing the authorization URL {_shown(url)}: it contains characters an "
                            "encoded URL does not")
    states = parse_qs(parts.query).get("state", [])
    if len(states) != 1 or not states[0]:
        raise SignInRefused("refusing the authorization URL: it carries no single state parameter")
    return states[0]


def _shown(url: str) -> str:
    """A URL as it may appear in a message: printable, bounded, without its query (which carries
    the state and PKCE challenge)."""
    head = url.split("?", 1)[0]
    clean = "".join(c if c.isprintable() and not c.isspace() else "?" for c in head)
    return repr(clean[:120])
