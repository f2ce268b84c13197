"""`serve --auth`: the auth mode and, for `oauth`/`both`, the OAuth step with its settings.

The canonical URL of the MCP endpoint (the RFC 9728 `resource`, and the audience every token
must name, RFC 8707) is fixed at start-up — never taken from a request's Host, which the
client controls: `--public-url` behind a load balancer, else `https://HOST:PORT/MCP_PATH` of
the listener.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...config import Settings
from ...errors import InvalidInput
from ...oauth_metadata import check_issuer
from ..discovery import check_resource_url
from ..scopes import TOOLS_READ, ScopePolicy
from .step import OAuthStep
from .verifier import OAuthSettings, OAuthVerifier

if TYPE_CHECKING:
    from ..run import ServeOptions

AUTH_MODES = ("api-key", "oauth", "both")
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def auth_mode(settings: Settings, opts: ServeOptions) -> str:
    """`--auth` over MCPADMIN_AUTH over the config's `auth`; api-key by default."""
    mode = opts.auth or settings.auth or "api-key"
    if mode not in AUTH_MODES:
        raise InvalidInput(f"invalid --auth {mode!r}: use api-key, oauth or both")
    return mode


@dataclass(frozen=True)
class OAuthSetup:
    """What the envelope needs in OAuth mode."""

    step: OAuthStep
    issuer: str
    resource_url: str


def canonical_url(settings: Settings, opts: ServeOptions) -> str | None:
    """The MCP endpoint's canonical URL: --public-url, --resource-url, else None (API-key
    mode then names the URL each request used)."""
    url = opts.public_url or settings.public_url or opts.resource_url
    return check_resource_url(url) if url else None


def oauth_setup(settings: Settings, opts: ServeOptions, scopes: ScopePolicy) -> OAuthSetup | None:
    """The OAuth step, or None in api-key mode. Fails on incomplete or unsafe configuration."""
    mode = auth_mode(settings, opts)
    if mode == "api-key":
        return None
    raw_issuer = opts.oauth_issuer or settings.oauth_issuer
    if not raw_issuer:
        raise InvalidInput(f"--auth {mode} needs --oauth-issuer (or MCPADMIN_OAUTH_ISSUER)")
    issuer = check_issuer(raw_issuer)
    if opts.production and not issuer.startswith("https://"):
        raise InvalidInput("production mode needs an https --oauth-issuer")
    introspection = opts.oauth_introspection_url or settings.oauth_introspection_url
    if introspection:
        introspection = check_issuer(introspection, "--oauth-introspection-url")
    resource = canonical_url(settings, opts) or _listener_url(opts)
    server_scopes = frozenset(scopes.scopes_supported())
    for name, target in settings.oauth_scope_map.items():
        if target not in server_scopes:
            raise InvalidInput(f"[oauth_scope_map] maps {name!r} onto {target!r}, which this "
                               "server does not check")
    verifier = OAuthVerifier(OAuthSettings(
        issuer=issuer, audience=opts.oauth_audience or resource, server_scopes=server_scopes,
        scope_map=dict(settings.oauth_scope_map), introspection_url=introspection,
        # Client credentials for introspection: environment only, never argv.
        client_id=os.environ.get("MCPADMIN_OAUTH_CLIENT_ID") or None,
        client_secret=os.environ.get("MCPADMIN_OAUTH_CLIENT_SECRET") or None,
        min_refetch=opts.oauth_jwks_min_refetch))
    step = OAuthStep(verifier, opts.realm.replace('"', ""), scopes.default_scope or TOOLS_READ,
                     api_keys_too=mode == "both")
    return OAuthSetup(step, issuer, resource)


def _listener_url(opts: ServeOptions) -> str:
    if opts.host in _ANY_ADDRESS:
        raise InvalidInput(f"--auth oauth listening on {opts.host or 'every address'} needs "
                           "--public-url (the URL clients use, which tokens must name)")
    port = opts.port or (8443 if opts.tls else 8080)
    scheme = "https" if opts.tls or opts.behind_proxy else "http"
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    return check_resource_url(f"{scheme}://{host}:{port}{opts.mcp_path}")
