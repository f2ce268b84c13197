"""An MCP resource server built only from the MCP SDK's own parts (MCPServer, its bearer auth and
protected-resource metadata) that accepts JWT access tokens from one issuer: the reference the
bridge's sign-in is tested against, independent of `mcpadmin serve --auth oauth`.

    python -m tests.oauth_provider.resource_server ISSUER PORT CERT KEY

Tokens are verified with PyJWT (RS256/ES256 only) against the issuer's JWKS: iss, aud (this
server's canonical URL, RFC 8707), exp. Tools: whoami, echo_token (a careless one).
"""

from __future__ import annotations

import sys

import jwt
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings


class JwtVerifier:
    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer, self.audience = issuer, audience
        self.jwks = jwt.PyJWKClient(f"{issuer}/jwks")

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key, algorithms=["RS256", "ES256"], audience=self.audience,
                                issuer=self.issuer)
        except jwt.PyJWTError:
            return None
        return AccessToken(token=token, client_id=claims.get("client_id", ""), subject=claims.get("sub"),
                           scopes=claims.get("scope", "").split(), expires_at=claims.get("exp"),
                           resource=self.audience)


def build(issuer: str, port: int) -> MCPServer:
    resource = f"https://127.0.0.1:{port}/mcp"
    server = MCPServer("sdk-resource-server", log_level="WARNING",
                       token_verifier=JwtVerifier(issuer, resource),
                       auth=AuthSettings(issuer_url=issuer, resource_server_url=resource,
                                         validate_token_resource=True, required_scopes=["tools:read"]))

    @server.tool()
    def whoami() -> dict:
        """Who the token says the caller is."""
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        assert token is not None
        return {"sub": token.subject, "client_id": token.client_id, "scopes": token.scopes}

    @server.tool()
    def echo_token() -> str:
        """A careless tool that hands the caller's bearer token back (the bridge must redact it)."""
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        assert token is not None
        return f"your token is {token.token}"

    return server


def main() -> None:
    issuer, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    app = build(issuer, port).streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    uvicorn.run(app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key, log_level="warning")


if __name__ == "__main__":
    main()
