"""The envelope's authentication step in OAuth mode (`serve --auth oauth|both`).

RFC 6750 / MCP 2025-11-25 challenges: no token → 401 `Bearer realm=..., scope=...` (no error
code, §3.1); a bad token → 401 `error="invalid_token"`; both name `resource_metadata` and the
scope to ask for, so a client can discover the issuer and request the right token. When the
token cannot be checked now (the issuer's JWKS or introspection endpoint unreachable) the
answer is 503 with Retry-After: honest, and never an admission.

Failures count against the client IP in the envelope's failure window (server/throttle.py), so
a client spraying tokens gets 429 before it can make the server flood the issuer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread

from ...security_events import schema
from .._asgi import Request, Send, respond
from ..auth import UNAVAILABLE, AuthResult, Principal
from ..throttle import TOO_MANY_FAILURES, Refusal
from .verifier import OAuthVerifier

if TYPE_CHECKING:
    from ..app import SecurityEnvelope

API_KEY_PREFIX = "mcpk_"


class OAuthStep:
    """Bearer tokens from the issuer. `both`: an `mcpk_` token is left to the API-key step."""

    def __init__(self, verifier: OAuthVerifier, realm: str, scope: str, api_keys_too: bool) -> None:
        self.verifier = verifier
        self.api_keys_too = api_keys_too
        self.challenge = f'Bearer realm="{realm}", scope="{scope}"'
        self.invalid = (self.challenge
                        + ', error="invalid_token", error_description="The access token is invalid"')

    def takes(self, token: str | None) -> bool:
        """Whether this step authenticates the request (else the API-key step does)."""
        return not (self.api_keys_too and token is not None and token.startswith(API_KEY_PREFIX))

    async def authenticate(self, env: SecurityEnvelope, req: Request, send: Send,
                           token: str | None) -> Principal | None:
        """The caller, or None after answering the request with a refusal."""
        if token:
            principal = self.verifier.cached(token)
            if principal is not None:
                return principal
        wait = env.throttle.retry_after(req.client_ip)
        if wait is not None:
            await env._too_many(req, send, Refusal(TOO_MANY_FAILURES, wait), None)
            return None
        if not token:
            env.throttle.record(req.client_ip, None)
            reason = "missing_credentials" if token is None else "malformed_token"
            env._event(schema.AUTH_FAILURE, req, reason)
            await env._unauthorized(req, send, self.challenge if token is None else self.invalid)
            return None
        try:
            result = await anyio.to_thread.run_sync(self.verifier.verify, token)
        except Exception as exc:  # refused, never admitted; one event, no traceback to the client
            result = AuthResult(None, UNAVAILABLE)
            failure = f"verification error: {type(exc).__name__}"
        else:
            failure = "the issuer could not be reached"
        if result.principal is not None:
            return result.principal
        if result.reason == UNAVAILABLE:
            env._event(schema.AUTH_SERVER_UNAVAILABLE, req, failure)
            await respond(send, 503, {"error": "temporarily_unavailable"}, [(b"retry-after", b"5")])
            return None
        env.throttle.record(req.client_ip, None)
        env._event(schema.AUTH_FAILURE, req, result.reason)
        await env._unauthorized(req, send, self.invalid)
        return None
