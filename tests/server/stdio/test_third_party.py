"""`serve --stdio` around a third-party stdio server installed from PyPI the way a user installs
it: `mcp-server-time` in its own virtual environment (created by the test run, cached by version
under .pytest_cache). Skipped only when the package cannot be downloaded (no network / no pip)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import anyio
import pytest

from tests.server.conftest import cli_in, new_key
from tests.server.harness import Certs
from tests.server.stdio.conftest import proc_children, session, stdio_server, wait_gone

PACKAGE, VERSION = "mcp-server-time", "2026.10.19"


@pytest.fixture(scope="session")
def time_server(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    cache = getattr(pytestconfig, "cache", None)
    root = cache.mkdir("stdio-servers") if cache is not None else tmp_path_factory.mktemp("stdio-servers")
    home = Path(root) / f"{PACKAGE}-{VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    exe = home / "bin" / PACKAGE
    if not exe.exists():
        venv.create(home, with_pip=True, clear=True)
        r = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check", f"{PACKAGE}=={VERSION}"],
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            if any(s in r.stderr for s in ("No matching distribution", "Could not find a version",
                                           "NewConnectionError", "Temporary failure in name resolution")):
                pytest.skip(f"cannot download {PACKAGE}=={VERSION} from PyPI: {r.stderr[-300:]}")
            pytest.fail(f"pip install {PACKAGE}=={VERSION} failed: {r.stderr[-2000:]}")
    return [str(exe), "--local-timezone", "UTC"]


def test_print_scope_map_of_a_pypi_server(sqlite_env, time_server):
    r = cli_in(sqlite_env, "serve", "--stdio", "--print-scope-map", "--", *time_server)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[2:]]
    assert rows == [["convert_time", "tools:read", "readOnlyHint"],
                    ["get_current_time", "tools:read", "readOnlyHint"],
                    ["(any", "other", "tool)", "refused", "default"]]


def test_official_client_calls_a_pypi_stdio_server_through_the_envelope(certs: Certs, sqlite_env,
                                                                        time_server, tmp_path):
    key = new_key(sqlite_env, "time-reader", "--scope", "tools:read")
    no_scope = new_key(sqlite_env, "time-noscope", "--scope", "prompts:read")
    server = stdio_server(certs, sqlite_env, tmp_path / "events.jsonl", command=time_server).start()
    try:
        async def go():
            async with session(server, certs, key) as a, session(server, certs, key) as b:
                names = {t.name for t in (await a.list_tools()).tools}
                now = json.loads((await a.call_tool("get_current_time", {"timezone": "UTC"})).content[0].text)
                await b.list_tools()
                children = proc_children(server.proc.pid)
            async with session(server, certs, no_scope) as c:
                from mcp.shared.exceptions import MCPError

                with pytest.raises(MCPError):
                    await c.call_tool("get_current_time", {"timezone": "UTC"})
            return names, now, children

        names, now, children = anyio.run(go)
        assert names == {"get_current_time", "convert_time"}
        assert now["timezone"] == "UTC"
        assert len(children) == 2  # one child per session
        assert all(wait_gone(pid) for pid in children)  # each ended with its session
        assert [e["reason"] for e in server.events() if e["event"] == "insufficient_scope"] == [
            "tool get_current_time needs tools:read"]
    finally:
        server.stop()
