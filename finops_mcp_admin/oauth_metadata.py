"""An OAuth authorization server's public documents: issuer URL rules, RFC 8414 / OpenID Connect
discovery, and bounded JSON fetches. Shared by the server (JWKS discovery, server/oauth/) and
`mcpadmin oauth check` (oauth_check.py).

Fetches never follow redirects (a metadata or JWKS URL that redirects elsewhere is not the
issuer's answer), trust the system CAs (SSL_CERT_FILE honoured), time out after a few seconds
and read at most MAX_DOCUMENT bytes.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import BackendUnavailable, InvalidInput

MAX_DOCUMENT = 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(url: str) -> bool:
    """True for a URL whose host is this machine (development issuers)."""
    return (urlsplit(url).hostname or "").lower() in LOOPBACK_HOSTS


def check_issuer(url: str, what: str = "--oauth-issuer") -> str:
    """An issuer identifier (RFC 8414 §2): https, no query, fragment or userinfo; plain http
    only on 127.0.0.1/localhost (development). Returned as given: issuers are compared exactly
    (RFC 8414 §3.3), and some end in a slash (Auth0's do), so none is added or removed."""
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        raise InvalidInput(f"invalid {what} {url!r}") from None
    if not parsed.hostname or parsed.query or parsed.fragment or parsed.username or " " in url:
        raise InvalidInput(f"invalid {what} {url!r}: use https://HOST[/PATH]")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and is_loopback(url)):
        raise InvalidInput(f"invalid {what} {url!r}: must be https (http only on 127.0.0.1/localhost)")
    return url


def metadata_urls(issuer: str) -> list[str]:
    """Where the metadata may live, in the order MCP 2025-11-25 has clients try: RFC 8414 §3.1
    (the well-known segment inserted before the issuer's path), then OpenID Connect Discovery
    (inserted, then appended to the path)."""
    parsed = urlsplit(issuer)
    origin, path = f"{parsed.scheme}://{parsed.netloc}", parsed.path.rstrip("/")
    urls = [f"{origin}/.well-known/oauth-authorization-server{path}",
            f"{origin}/.well-known/openid-configuration{path}"]
    if path:
        urls.append(f"{origin}{path}/.well-known/openid-configuration")
    return urls


@dataclass(frozen=True)
class Fetched:
    """An HTTP answer: status and, for 200, the parsed JSON object."""

    url: str
    status: int
    document: dict[str, Any] | None


class MetadataClient:
    """Blocking HTTP client for the issuer's documents (run it in a worker thread)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, timeout: float = 5.0) -> None:
        import httpx2

        self._http = httpx2.Client(verify=ssl_context or ssl.create_default_context(),
                                   timeout=timeout, follow_redirects=False, trust_env=False)

    def get(self, url: str) -> Fetched:
        """GET a JSON document; BackendUnavailable when the server cannot be reached."""
        return self._send("GET", url)

    def post_form(self, url: str, form: dict[str, str], auth: tuple[str, str] | None) -> Fetched:
        """POST a form (RFC 7662 introspection), with HTTP Basic client credentials."""
        return self._send("POST", url, data=form, auth=auth)

    def _send(self, method: str, url: str, **kwargs: Any) -> Fetched:
        import httpx2

        try:
            with self._http.stream(method, url, headers={"accept": "application/json"},
                                   **kwargs) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT:
                        raise BackendUnavailable(f"{_where(url)}: document larger than 1 MiB")
        except httpx2.HTTPError as exc:
            raise BackendUnavailable(f"cannot reach {_where(url)}: {type(exc).__name__}") from None
        if response.status_code != 200:
            return Fetched(url, response.status_code, None)
        try:
            document = json.loads(body)
        except ValueError:
            raise BackendUnavailable(f"{_where(url)} did not answer JSON") from None
        if not isinstance(document, dict):
            raise BackendUnavailable(f"{_where(url)} did not answer a JSON object")
        return Fetched(url, 200, document)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def discover(client: MetadataClient, issuer: str) -> Fetched | None:
    """The issuer's metadata from the first well-known URL that has it (a 4xx moves on to the
    next; a 5xx or network error is BackendUnavailable); None when none has it."""
    for url in metadata_urls(issuer):
        fetched = client.get(url)
        if fetched.document is not None:
            return fetched
        if fetched.status >= 500:
            raise BackendUnavailable(f"{_where(url)} answered {fetched.status}")
    return None


def _where(url: str) -> str:
    parsed = urlsplit(url)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
