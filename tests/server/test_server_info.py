"""The initialize result names the package version (issue 12, point 7: it was empty)."""

from __future__ import annotations

import anyio

from finops_mcp_admin import __version__
from tests.server.conftest import new_key
from tests.server.harness import http_client


def test_server_info_version_is_the_package_version(tls_server, certs, sqlite_env):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    key = new_key(sqlite_env, "server-info-reader", "--scope", "tools:read")

    async def initialize():
        async with (http_client(certs, key) as http,
                    streamable_http_client(tls_server.url, http_client=http) as (read, write),
                    ClientSession(read, write) as session):
            return await session.initialize()

    result = anyio.run(initialize)
    assert result.server_info.name == "finops-mcp-admin"
    assert result.server_info.version == __version__ and __version__
