"""`mcpadmin serve --stdio -- COMMAND`: the security envelope in front of a stdio MCP server.

One child process per MCP session (stdio servers assume one client; it also keeps tenants
apart), started on `initialize` and ended with its session: DELETE, idle timeout, the key's
revocation or expiry (server/sessions.py DELETEs the session in the app), a crash, or the
server's shutdown. The envelope in front (auth, TLS, CORS, quotas, scopes, events) is the one
`serve` always uses; this package is only the inner ASGI app.

Rooms: `options` (what the administrator configures, the child's environment; no mcp import),
`child` (spawning and ending a child's process group, resource limits), `limits` (children per
key and in total, spawn rate), `relay` (one session: the client's messages on one side,
line-delimited JSON-RPC on the child's stdio on the other), `reply` (a single message POSTed to
a session, answered by the gateway itself: JSON when the child answers first, else SSE),
`batch` (batch POSTs), `gateway` (the ASGI app: one SDK transport and relay per session),
`scope_map` (which scope each of the child's tools needs).
"""
