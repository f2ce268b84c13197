"""The bridge tests reuse the server fixtures: a real `mcpadmin serve` over HTTPS."""

from tests.server.conftest import certs, sqlite_env, tls_server  # noqa: F401
