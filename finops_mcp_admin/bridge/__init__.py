"""stdio ⇄ Streamable-HTTP bridge (R22): lets stdio-only desktop MCP clients reach the secured
server over verified HTTPS.

A transparent proxy built on the SDK's stdio server and Streamable-HTTP client transports:
JSON-RPC requests, responses and notifications are forwarded both ways unchanged. What the
bridge adds:

- `Authorization: Bearer $MCP_API_KEY` on every request; the key never appears in argv, stderr,
  logs, JSON-RPC errors or exception text (every byte written to stderr and every error
  message passes through a redactor, including unexpected tracebacks).
- TLS always verified (system trust store, or MCP_CA_BUNDLE / SSL_CERT_FILE), hostname checked.
  `http://` only for loopback hosts and only with `--allow-http`, and never through a proxy
  (HTTP_PROXY would receive the key in plaintext). No switch disables checks.
- Errors a user can act on: a 401 becomes "authentication failed: check MCP_API_KEY", a 403
  names the missing scope, certificate and connection failures say which.
- Resilience: one failed request never ends the bridge; when the connection or the server's
  session is lost (e.g. the server restarted), the next message opens a new connection and
  replays the client's `initialize` handshake, so the desktop client never notices.
- OAuth sign-in (`oauth*`) when no MCP_API_KEY is set and the server answers 401: the MCP SDK's
  flow (PRM, DCR or a configured client id, PKCE S256, resource, refresh) behind the bridge's
  checks. The only URL ever handed to a browser is an encoded https (or loopback http) URL on the
  issuer the server's metadata names, through `webbrowser` in a child process, never a shell:
  the CVE-2025-6514 class of bug in mcp-remote. Tokens: 0600 under $XDG_STATE_HOME, redacted.

Rooms: `config` (environment, URL and TLS checks; no `mcp` import, so `--help` stays fast),
`diagnostics` (the sentences and JSON-RPC error codes a user reads, and the redactor), `proxy`
(the running bridge, on the MCP SDK and anyio), `limits` (the response-size cap and the
MCP_TIMEOUT deadline on a request's event stream), `oauth` (the sign-in), `oauth_policy` (its URL
checks; no `mcp` import), `oauth_callback` (browser and loopback redirect listener), `oauth_store`
(the token file). This package module imports none of them.
"""
