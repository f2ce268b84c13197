"""Fixtures: the installed oidc-provider (once per session) and one running server per use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oauth_provider.harness import AuthorizationServer, ResourceServer, install_oidc_provider


@pytest.fixture(scope="session")
def oidc_provider_dir(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    cache = getattr(pytestconfig, "cache", None)
    npm_cache = cache.mkdir("npm-cache") if cache is not None else None
    return install_oidc_provider(tmp_path_factory.mktemp("oidc-provider"), npm_cache)


@pytest.fixture
def access_token_ttl() -> int:
    """Seconds an access token lives; a test parametrizes it to make tokens expire."""
    return 600


@pytest.fixture
def auth_server(oidc_provider_dir: Path, access_token_ttl: int,
                tmp_path: Path) -> Iterator[AuthorizationServer]:
    server = AuthorizationServer(oidc_provider_dir, access_token_ttl).start(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def sdk_resource_server(auth_server: AuthorizationServer, certs, tmp_path: Path) -> Iterator[ResourceServer]:
    """An MCP server made of the SDK's own auth parts, trusting auth_server's tokens."""
    server = ResourceServer(auth_server.issuer, certs.cert_file, certs.key_file).start(tmp_path)
    yield server
    server.stop()
