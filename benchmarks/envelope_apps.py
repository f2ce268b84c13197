"""ASGI apps for bench_envelope.py and bench_peer.py: the same inner apps bare, inside the full
envelope, and (bench_peer) the MCP app behind the MCP SDK's own bearer-auth stack.

Run by uvicorn as factories (`--factory`); MODE and STORE come from the environment."""

from __future__ import annotations

import json
import os

from finops_mcp_admin.config import load_settings
from finops_mcp_admin.server.run import ServeOptions, build


async def trivial(scope, receive, send):
    """A protected route that does nothing: the envelope's cost is all there is."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


def floor_pass(app):
    """Reference (bench_envelope's floor rows): the cheapest middleware there is, one await."""
    async def middleware(scope, receive, send):
        await app(scope, receive, send)

    return middleware


def floor_parse(app):
    """Reference: the least a middleware that decides by the JSON-RPC method must do — read
    the body, parse it, replay it to the app, watch the response — and nothing else: no key,
    no Origin, no quota, no scope, no session, no trail. What it costs bounds what any
    envelope with those checks can reach from below."""
    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if not isinstance(json.loads(body).get("method"), str):
            raise ValueError("not a JSON-RPC request")
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def watch(message):
            await send(message)

        await app(scope, replay, watch)

    return middleware


class _Endpoint:
    """`trivial` as a Starlette route endpoint (a function would be taken for a request handler)."""

    async def __call__(self, scope, receive, send):
        await trivial(scope, receive, send)


def _routed(endpoint):
    from starlette.applications import Starlette
    from starlette.routing import Route

    return Starlette(routes=[Route("/mcp", endpoint=endpoint)])


#: `trivial` on /mcp of a Starlette app, routed as the SDK's streamable_http_app routes its own.
routed_trivial = _routed(_Endpoint())


def sdk_stack_around_trivial(token: str, resource: str):
    """routed_trivial behind the SDK's bearer-auth pieces, wired as mcp 2.x's
    `Server.streamable_http_app` wires them for a token verifier (for bench_peer's in-process
    comparison, where the MCP app is left out)."""
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
    from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.routes import build_resource_metadata_url
    from pydantic import AnyHttpUrl
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.routing import Route

    access = AccessToken(token=token, client_id="bench", scopes=["tools:read"])
    endpoint = RequireAuthMiddleware(_Endpoint(), ["tools:read"],
                                     build_resource_metadata_url(AnyHttpUrl(resource)))
    return Starlette(routes=[Route("/mcp", endpoint=endpoint)], middleware=[
        Middleware(AuthenticationMiddleware,
                   backend=BearerAuthBackend(DictTokenVerifier({token: access}))),
        Middleware(AuthContextMiddleware)])


def _mcp(**server_options):
    from finops_mcp_admin.server.tools import PolicyHolder, build_mcp_app

    return build_mcp_app(PolicyHolder(None), **server_options)


class DictTokenVerifier:
    """The SDK's TokenVerifier protocol over a dict: token -> AccessToken (each built once)."""

    def __init__(self, tokens):
        self.tokens = tokens

    async def verify_token(self, token):
        return self.tokens.get(token)


def _sdk_auth():
    """The MCP app as the SDK serves it as an OAuth resource server: MCPServer(token_verifier=,
    auth=) puts starlette's AuthenticationMiddleware (BearerAuthBackend over the verifier) and
    AuthContextMiddleware in front, and RequireAuthMiddleware (required scopes) on /mcp.
    Tokens are not audience-checked (validate_token_resource=False): the dict holds tokens for
    this server only, and the check would only add work on the SDK's side."""
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.settings import AuthSettings
    from pydantic import AnyHttpUrl

    token = AccessToken(token=os.environ["BENCH_TOKEN"], client_id="bench", scopes=["tools:read"])
    auth = AuthSettings(issuer_url=AnyHttpUrl("https://auth.example.com"),
                        resource_server_url=AnyHttpUrl(os.environ["BENCH_RESOURCE"]),
                        required_scopes=["tools:read"], validate_token_resource=False)
    return _mcp(token_verifier=DictTokenVerifier({token.token: token}), auth=auth)


def app():
    """Every mode loads the same modules (the MCP SDK included: a real deployment always has it)
    and freeze the start-up heap as `mcpadmin serve` does, so only the envelope differs."""
    import gc

    import mcp.server.auth.middleware.bearer_auth  # noqa: F401

    mode, inner = os.environ["BENCH_MODE"], os.environ["BENCH_INNER"]
    if mode == "bare":
        result = trivial if inner == "trivial" else _mcp()
    elif mode in ("floor-pass", "floor-parse"):
        middleware = floor_pass if mode == "floor-pass" else floor_parse
        result = middleware(trivial if inner == "trivial" else _mcp())
    elif mode == "sdk":
        result = _sdk_auth()
    elif mode == "oauth":  # bench_oauth.py: the envelope as an OAuth resource server
        opts = ServeOptions(log_stdout=False, log_file=os.environ["BENCH_LOG"], max_failures=10**9,
                            auth="oauth", oauth_issuer=os.environ["BENCH_ISSUER"],
                            public_url=os.environ["BENCH_RESOURCE"], use_store=False)
        result = build(load_settings(), opts).app
    else:
        # "envelope": the access trail on (`--access-log all`, the default); "envelope-noaccess": off.
        opts = ServeOptions(app_ref="benchmarks.envelope_apps:trivial" if inner == "trivial" else None,
                            log_stdout=False, log_file=os.environ["BENCH_LOG"], max_failures=10**9,
                            access_log="none" if mode == "envelope-noaccess" else "all")
        result = build(load_settings(), opts).app
    gc.freeze()
    return result
