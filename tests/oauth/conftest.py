"""Fixtures for the OAuth tests: certificates and the in-suite authorization server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oauth.issuer import Issuer
from tests.server.harness import Certs, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def issuer(certs: Certs) -> Iterator[Issuer]:
    server = Issuer(certs).start()
    yield server
    server.stop()
