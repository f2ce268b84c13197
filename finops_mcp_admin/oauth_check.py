"""`mcpadmin oauth check`: is this authorization server fit for MCP clients (R24)?

Fetches the issuer's metadata (RFC 8414, else OpenID Connect Discovery) and judges it:
PKCE S256 (R24.1; OAuth 2.1 makes PKCE mandatory and `plain` is no protection), the
authorization-code grant, a client registration method (Dynamic Client Registration, R24.6, or
Client ID Metadata Documents), a JWKS with sane public keys, https endpoints, the issuer
identifier itself (RFC 8414 §3.3: it must equal the URL asked, or metadata could be
substituted), resource indicators (RFC 8707), and with `resource` the protected resource's own
metadata (RFC 9728) naming this issuer.

A finding is pass, warn (works, but note it: development endpoints, optional features) or
fail. Failure to reach the issuer at all is BackendUnavailable, not a finding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import BackendUnavailable
from .oauth_metadata import MetadataClient, check_issuer, discover, is_loopback

PASS, WARN, FAIL = "pass", "warn", "fail"
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint",
              "introspection_endpoint", "revocation_endpoint", "userinfo_endpoint")
_SYMMETRIC_ALGS = ("none", "HS256", "HS384", "HS512")
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "k")


@dataclass(frozen=True)
class Finding:
    """One judged property of the authorization server."""

    check: str
    result: str
    detail: str

    def to_public(self) -> dict[str, Any]:
        """The finding as a plain dict (rendering, JSON)."""
        return asdict(self)


def check_authorization_server(issuer: str, resource: str | None = None,
                               client: MetadataClient | None = None) -> list[Finding]:
    """Fetch and judge the issuer's metadata (blocking)."""
    issuer = check_issuer(issuer, "--issuer")
    own = client is None
    client = client or MetadataClient()
    try:
        return _judge(client, issuer, resource)
    finally:
        if own:
            client.close()


def failed(findings: list[Finding]) -> bool:
    """True when any finding is a failure."""
    return any(f.result == FAIL for f in findings)


def _judge(client: MetadataClient, issuer: str, resource: str | None) -> list[Finding]:
    findings = [Finding("issuer url", WARN if issuer.startswith("http://") else PASS,
                        "plain http on loopback: development only" if issuer.startswith("http://")
                        else "https")]
    fetched = discover(client, issuer)
    if fetched is None or fetched.document is None:
        findings.append(Finding("metadata", FAIL, "no RFC 8414 or OpenID Connect metadata found"))
        return findings
    doc = fetched.document
    findings.append(Finding("metadata", PASS, fetched.url))
    named = doc.get("issuer")
    findings.append(Finding("issuer match", PASS if named == issuer else FAIL,
                            "metadata issuer equals the URL asked" if named == issuer
                            else f"metadata names issuer {named!r}"))
    findings += [_pkce(doc), _code_grant(doc), _registration(doc), _endpoints(doc), _jwks(client, doc),
                 _resource_indicators(doc)]
    if resource:
        findings.append(_protected_resource(client, issuer, resource))
    return findings


def _list(doc: dict[str, Any], name: str) -> list[str] | None:
    value = doc.get(name)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None


def _pkce(doc: dict[str, Any]) -> Finding:
    methods = _list(doc, "code_challenge_methods_supported")
    if methods is None:
        return Finding("pkce S256", FAIL, "code_challenge_methods_supported missing: MCP clients "
                                          "must refuse an issuer that does not advertise S256")
    if "S256" not in methods:
        return Finding("pkce S256", FAIL, f"S256 not advertised ({', '.join(methods) or 'none'})")
    if "plain" in methods:
        return Finding("pkce S256", WARN, "S256 advertised; plain also allowed (no protection)")
    return Finding("pkce S256", PASS, "S256 advertised")


def _code_grant(doc: dict[str, Any]) -> Finding:
    grants = _list(doc, "grant_types_supported")
    responses = _list(doc, "response_types_supported") or []
    if grants is not None and "authorization_code" not in grants:
        return Finding("authorization code", FAIL, f"grant_types_supported: {', '.join(grants)}")
    if "code" not in responses:
        return Finding("authorization code", FAIL, "response type 'code' not supported")
    return Finding("authorization code", PASS,
                   "advertised" if grants is not None else "default (grant_types_supported omitted)")


def _registration(doc: dict[str, Any]) -> Finding:
    ways = []
    if isinstance(doc.get("registration_endpoint"), str):
        ways.append("dynamic client registration")
    if doc.get("client_id_metadata_document_supported") is True:
        ways.append("client ID metadata documents")
    if not ways:
        return Finding("client registration", WARN,
                       "neither DCR nor client ID metadata documents: clients need a pre-registered id")
    return Finding("client registration", PASS, " and ".join(ways))


def _endpoints(doc: dict[str, Any]) -> Finding:
    plain: list[str] = []
    loopback: list[str] = []
    for name in _ENDPOINTS:
        url = doc.get(name)
        if not isinstance(url, str):
            continue
        if urlsplit(url).scheme != "https":
            (loopback if url.startswith("http://") and is_loopback(url) else plain).append(name)
    if plain:
        return Finding("https endpoints", FAIL, "not https: " + ", ".join(plain))
    if loopback:
        return Finding("https endpoints", WARN,
                       "plain http on loopback (development): " + ", ".join(loopback))
    return Finding("https endpoints", PASS, "every endpoint is https")


def _jwks(client: MetadataClient, doc: dict[str, Any]) -> Finding:
    uri = doc.get("jwks_uri")
    if not isinstance(uri, str):
        return Finding("jwks", FAIL, "jwks_uri missing: JWT access tokens cannot be verified")
    try:
        fetched = client.get(uri)
    except BackendUnavailable as exc:
        return Finding("jwks", FAIL, str(exc))
    if fetched.document is None:
        return Finding("jwks", FAIL, f"jwks_uri answered {fetched.status}")
    keys = fetched.document.get("keys")
    if not isinstance(keys, list) or not keys:
        return Finding("jwks", FAIL, "no keys")
    problems = [p for i, k in enumerate(keys) if (p := _key_problem(i, k))]
    if problems:
        return Finding("jwks", FAIL, "; ".join(problems))
    return Finding("jwks", PASS, f"{len(keys)} public key(s), all asymmetric with a kid")


def _key_problem(index: int, key: Any) -> str | None:
    if not isinstance(key, dict):
        return f"key {index}: not an object"
    name = f"key {key.get('kid', index)!s}"
    kty = key.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        return f"{name}: kty {kty!r} is not an asymmetric key type"
    if any(part in key for part in _PRIVATE):
        return f"{name}: publishes private key material"
    if not isinstance(key.get("kid"), str) or not key["kid"]:
        return f"{name}: no kid"
    if key.get("alg") in _SYMMETRIC_ALGS:
        return f"{name}: alg {key['alg']}"
    if kty == "RSA":
        n = key.get("n")
        bits = _b64_bits(n) if isinstance(n, str) else 0
        if bits < 2048:
            return f"{name}: RSA key of {bits} bits (< 2048)"
    return None


def _b64_bits(value: str) -> int:
    from base64 import urlsafe_b64decode

    try:
        raw = urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _resource_indicators(doc: dict[str, Any]) -> Finding:
    advertised = doc.get("resource_indicators_supported")
    if advertised is True:
        return Finding("resource indicators", PASS, "RFC 8707 advertised")
    if advertised is False:
        return Finding("resource indicators", FAIL, "RFC 8707 not supported: tokens cannot be "
                                                    "bound to the MCP server's URL")
    return Finding("resource indicators", WARN, "not advertised: check that tokens carry the "
                                                "MCP server's URL as audience")


def _protected_resource(client: MetadataClient, issuer: str, resource: str) -> Finding:
    parsed = urlsplit(resource)
    url = f"{parsed.scheme}://{parsed.netloc}/.well-known/oauth-protected-resource{parsed.path.rstrip('/')}"
    try:
        fetched = client.get(url)
    except BackendUnavailable as exc:
        return Finding("protected resource", FAIL, str(exc))
    doc = fetched.document
    if doc is None:
        return Finding("protected resource", FAIL, f"{url} answered {fetched.status}")
    servers = _list(doc, "authorization_servers") or []
    if doc.get("resource") != resource.rstrip("/") and doc.get("resource") != resource:
        return Finding("protected resource", FAIL, f"metadata names resource {doc.get('resource')!r}")
    if issuer not in servers and issuer + "/" not in servers:
        return Finding("protected resource", FAIL, "authorization_servers does not name this issuer")
    return Finding("protected resource", PASS, "RFC 9728 metadata names this issuer")
