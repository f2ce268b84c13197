"""moto's server mode over HTTP stands in for AWS (never in-process mocks)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.redis_server import _wait_for_port, free_port


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=log)
    _wait_for_port(port, proc, timeout=30)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def aws_env(moto_url, monkeypatch) -> dict[str, str]:
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-canary-99",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_url}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def certificate_arn(aws_env) -> str:
    import boto3

    acm = boto3.client("acm", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    return acm.request_certificate(DomainName="mcp.example.com")["CertificateArn"]
