"""The stdio-server image (Dockerfile.stdio, issue 14 point 5), checked on the file like the
server image (no Docker engine in CI): the server image only by digest (no default to fall back
on), the stdio server's dependencies only from hashes, and the MCPADMIN_STDIO* variables that
make the stack's fixed `serve` command run it; the task runs an init that reaps orphans."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "Dockerfile.stdio").read_text()


def _instructions() -> list[str]:
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in TEXT.splitlines()
                                            if not line.lstrip().startswith("#")))
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_base_images_are_pinned_and_the_server_image_has_no_default():
    lines = _instructions()
    args = dict(re.findall(r"^ARG (\w+)(?:=(\S*))?$", "\n".join(lines), re.M))
    assert args["SERVER_IMAGE"] == ""  # a build without --build-arg SERVER_IMAGE=...@sha256: fails
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", args["PYTHON_IMAGE"])
    assert [line.split()[1] for line in lines if line.startswith("FROM ")] == [
        "${PYTHON_IMAGE}", "${SERVER_IMAGE}"]


def test_stdio_server_installs_only_from_hashes_into_its_own_venv():
    run = next(line for line in _instructions() if line.startswith("RUN "))
    assert "python -m venv /opt/stdio-server" in run
    assert '--require-hashes -r "$STDIO_LOCK"' in run and "--no-deps ." in run and "pip check" in run


def test_environment_runs_the_finops_server_with_aws_variables_only():
    env = next(line for line in _instructions() if line.startswith("ENV "))
    values = dict(item.split("=", 1) for item in shlex.split(env[4:]))
    assert values["MCPADMIN_STDIO"] == "1"
    command = shlex.split(values["MCPADMIN_STDIO_COMMAND"])
    assert command == ["/opt/stdio-server/bin/python", "-m", "mcp_server"]
    assert values["MCPADMIN_STDIO_ENV"] == "AWS_*"
    assert _instructions()[-1] == "USER 10001"


def test_task_runs_an_init_that_reaps_orphans():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "finops_mcp_admin/templates/mcp-server.yaml").read_text(), Loader=Loader)
    container = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert container["LinuxParameters"] == {"InitProcessEnabled": True}
