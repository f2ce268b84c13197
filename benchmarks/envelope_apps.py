"""ASGI apps for bench_envelope.py: the same inner apps, bare and inside the full envelope.

Run by uvicorn as factories (`--factory`); MODE and STORE come from the environment."""

from __future__ import annotations

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


def _mcp():
    from finops_mcp_admin.server.tools import PolicyHolder, build_mcp_app

    return build_mcp_app(PolicyHolder(None))


def app():
    """Both modes load the same modules (the MCP SDK included: a real deployment always has it)
    and freeze the start-up heap as `mcpadmin serve` does, so only the envelope differs."""
    import gc

    import mcp.server.auth.middleware.bearer_auth  # noqa: F401

    mode, inner = os.environ["BENCH_MODE"], os.environ["BENCH_INNER"]
    if mode == "bare":
        result = trivial if inner == "trivial" else _mcp()
    else:
        opts = ServeOptions(app_ref="benchmarks.envelope_apps:trivial" if inner == "trivial" else None,
                            log_stdout=False, log_file=os.environ["BENCH_LOG"], max_failures=10**9)
        result = build(load_settings(), opts).app
    gc.freeze()
    return result
