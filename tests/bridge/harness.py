"""Launch the bridge as a real subprocess with the official MCP stdio client."""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def bridged_session(url: str | None, env: dict[str, str], stderr_path: Path, *args: str,
                          initialize: bool = True):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    argv = ["-m", "finops_mcp_admin", "bridge", *([url] if url else []), *args]
    params = StdioServerParameters(command=sys.executable, args=argv, env=env, cwd=str(ROOT))
    with stderr_path.open("a") as errlog:
        async with (stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as session):
            if initialize:
                await session.initialize()
            yield session
