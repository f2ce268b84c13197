"""The bridge tests reuse the server fixtures: a real `mcpadmin serve` over HTTPS, and for the
OAuth tests the real oidc-provider authorization server."""

from tests.oauth_provider.conftest import (  # noqa: F401
    access_token_ttl,
    auth_server,
    oidc_provider_dir,
    sdk_resource_server,
)
from tests.server.conftest import certs, sqlite_env, tls_server  # noqa: F401
