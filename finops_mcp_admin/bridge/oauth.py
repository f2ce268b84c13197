"""The bridge signs in (issue 13, point 3): when the MCP server answers 401 and no MCP_API_KEY is
set, OAuth 2.1 authorization code + PKCE S256 against the authorization server the server's
Protected Resource Metadata (RFC 9728) names, with Dynamic Client Registration (RFC 7591) or a
configured client id, the `resource` parameter (RFC 8707), a loopback redirect, and refresh.

The flow itself is the MCP SDK's `OAuthClientProvider` (discovery, the metadata issuer check of
RFC 8414 §3.3, registration, PKCE, state and RFC 9207 `iss` comparison, token exchange, refresh).
This subclass adds the bridge's own rules around it:
- every request the sign-in makes goes to https (http only to loopback, with --allow-http);
- the authorization server must be one the metadata names, and the server must name one at all
  (no guessing at the MCP server's origin, the SDK's pre-2025-06 fallback);
- the authorization URL is opened only if `oauth_policy.check_authorization_url` accepts it,
  through `webbrowser` in a child process, and printed on stderr when there is no browser;
- the redirect comes back to 127.0.0.1 on an ephemeral port, and its `state` is checked there;
- tokens live in `oauth_store` (0600, bound to issuer + resource) and go to the redactor first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import union_scopes
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata
from pydantic import AnyUrl

from .config import BridgeConfig
from .oauth_callback import REGISTERED_REDIRECT_URI, LoopbackCallback, loopback_callback, open_browser
from .oauth_policy import SignInRefused, check_authorization_url, check_endpoint_url
from .oauth_store import FileTokenStorage


class BridgeOAuth(OAuthClientProvider):
    """The SDK's OAuth client provider with the bridge's URL, issuer and redirect rules."""

    def __init__(self, config: BridgeConfig, storage: FileTokenStorage,
                 note: Callable[[str], None]) -> None:
        metadata = OAuthClientMetadata(
            client_name="finops-mcp-bridge", redirect_uris=[AnyUrl(REGISTERED_REDIRECT_URI)],
            token_endpoint_auth_method="none", grant_types=["authorization_code", "refresh_token"],
            response_types=["code"])
        super().__init__(config.url, metadata, storage, redirect_handler=self._open,
                         callback_handler=self._callback_result)
        self.config = config
        self.storage = storage
        self.note = note
        self._callback: LoopbackCallback | None = None

    def __repr__(self) -> str:
        return f"BridgeOAuth({self.config.url!r})"

    async def _initialize(self) -> None:
        await super()._initialize()
        tokens = self.context.current_tokens
        if tokens is not None and tokens.expires_in is not None:
            self.context.update_token_expiry(tokens)  # the SDK keeps expiry in memory only
        found = self.storage.get_metadata()
        if found is not None and self.context.oauth_metadata is None:
            prm, metadata = found
            self.context.protected_resource_metadata, self.context.oauth_metadata = prm, metadata
            self.context.auth_server_url = self.storage.issuer
        elif found is None and tokens is not None:
            # Without the issuer's metadata the SDK would send the refresh token to the MCP
            # server's own origin (/token): the resource server must never see it. Sign in again.
            tokens.refresh_token = None
        self._use_configured_client()

    async def _handle_token_response(self, response: httpx2.Response) -> None:
        await super()._handle_token_response(response)
        prm, metadata = self.context.protected_resource_metadata, self.context.oauth_metadata
        if prm is not None and metadata is not None:
            self.storage.set_metadata(prm, metadata)

    def _use_configured_client(self) -> None:
        """MCP_OAUTH_CLIENT_ID: a client registered by the administrator; no DCR then."""
        if self.config.oauth_client_id:
            self.context.client_info = OAuthClientInformationFull(
                client_id=self.config.oauth_client_id, redirect_uris=[AnyUrl(REGISTERED_REDIRECT_URI)],
                token_endpoint_auth_method="none", grant_types=["authorization_code", "refresh_token"])

    async def _handle_refresh_response(self, response: httpx2.Response) -> bool:
        refreshed = await super()._handle_refresh_response(response)
        if not refreshed:
            self.storage.forget_tokens()  # refused: a restarted bridge must not try it again
        return refreshed

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """The SDK's flow, with every request it makes of its own checked before it leaves."""
        flow = super()._auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                if outgoing is not request:
                    check_endpoint_url(str(outgoing.url), self.config.allow_http, "to contact")
                    outgoing = self._registration_for_every_scope(outgoing)
                response = yield outgoing
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await flow.aclose()

    def _registration_for_every_scope(self, outgoing: httpx2.Request) -> httpx2.Request:
        """Register (RFC 7591) for every scope the resource advertises that the authorization server
        knows, not only the one first challenged: a server limits a client to its registered
        scopes, and a later step-up (403 insufficient_scope) must not fail with invalid_scope."""
        metadata, prm = self.context.oauth_metadata, self.context.protected_resource_metadata
        if (metadata is None or prm is None or not prm.scopes_supported or outgoing.method != "POST"
                or str(outgoing.url) != str(metadata.registration_endpoint)):
            return outgoing
        wanted = [s for s in prm.scopes_supported
                  if metadata.scopes_supported is None or s in metadata.scopes_supported]
        body = json.loads(outgoing.content)
        body["scope"] = union_scopes(body.get("scope"), " ".join(wanted) or None)
        return httpx2.Request("POST", outgoing.url, json=body, headers={"Content-Type": "application/json"})

    def _select_authorization_server(self, advertised: list[str]) -> str:
        issuer = super()._select_authorization_server(advertised)
        check_endpoint_url(issuer, self.config.allow_http, "the authorization server")
        if self.storage.bind_issuer(issuer):
            # Another issuer's client and tokens must not be presented to this one.
            self.context.client_info = None
            self.context.clear_tokens()
            self._use_configured_client()
            self.note(f"the MCP server now names the authorization server {issuer}: signing in again")
        return issuer

    def _expected_issuer(self) -> str:
        if self.context.auth_server_url is None:
            raise SignInRefused("the MCP server asked for credentials but its metadata names no "
                                "authorization server to sign in with: set MCP_API_KEY")
        return self.context.auth_server_url

    async def _perform_authorization(self) -> httpx2.Request:
        try:
            return await super()._perform_authorization()  # the code, and the exchange request
        finally:
            # A later registration (another issuer) registers the port-less loopback URI again.
            self.context.client_metadata.redirect_uris = [AnyUrl(REGISTERED_REDIRECT_URI)]

    async def _perform_authorization_code_grant(self) -> tuple[str, str]:
        async with loopback_callback() as callback:
            self._callback = callback
            self.context.client_metadata.redirect_uris = [AnyUrl(callback.redirect_uri)]
            try:
                return await super()._perform_authorization_code_grant()
            finally:
                self._callback = None

    async def _open(self, url: str) -> None:
        """The SDK's redirect handler: check, arm the listener, open or print."""
        metadata = self.context.oauth_metadata
        if metadata is None:
            raise SignInRefused("refusing to sign in: the authorization server's metadata was not found")
        if "S256" not in (metadata.code_challenge_methods_supported or []):
            # MCP 2025-11-25: without advertised S256 PKCE the client must not proceed.
            raise SignInRefused(f"refusing to sign in at {metadata.issuer}: it does not advertise PKCE "
                                "S256 (code_challenge_methods_supported)")
        state = check_authorization_url(url, str(metadata.issuer), self.config.allow_http)
        assert self._callback is not None
        self._callback.expect(state)
        if await open_browser(url):
            self.note(f"opened a browser to sign in at {metadata.issuer}")
        else:
            self.note(f"no browser available: open this URL to sign in to the MCP server: {url}")

    async def _callback_result(self) -> AuthorizationCodeResult:
        assert self._callback is not None
        with anyio.move_on_after(self.config.signin_timeout) as scope:
            return await self._callback.wait()
        assert scope.cancelled_caught
        raise SignInRefused(f"no sign-in completed within {self.config.signin_timeout:g} s "
                            "(MCP_SIGNIN_TIMEOUT)")


def make_oauth(config: BridgeConfig, on_secret: Callable[[str], None],
               note: Callable[[str], None]) -> BridgeOAuth:
    """The bridge's OAuth client for config.url, its state in $XDG_STATE_HOME/mcpadmin/oauth."""
    # The SDK logs a failed flow with its traceback; the bridge reports it itself, as one line on
    # stderr and one JSON-RPC error (bridge/diagnostics.py): no traceback for the user to read.
    sdk_log = logging.getLogger("mcp.client.auth")
    sdk_log.propagate = False
    sdk_log.addHandler(logging.NullHandler())
    return BridgeOAuth(config, FileTokenStorage(config.url, on_secret), note)
