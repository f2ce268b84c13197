"""Real clients don't trip the alarm (issue 11, point 6): mcp-remote and the MCP Inspector CLI,
installed from npm in the test run, connect with a valid key, list tools, and leave zero auth
failures behind, on a server whose throttle would have locked their IP out after 3 failures."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path

import pytest

from tests.server.conftest import new_key
from tests.server.harness import Certs, ServerProcess

CLIENT_TIMEOUT = 90
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "mcpadmin-tests", "version": "1"}}}


@pytest.fixture
def strict_server(certs: Certs, sqlite_env, tmp_path):
    """Default-like throttle: 3 failures from one IP in a minute and it gets 429s."""
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--max-failures", "3"], sqlite_env, tmp_path / "events.jsonl").start()
    yield server
    server.stop()


def client_env(certs: Certs, tmp_path: Path) -> dict[str, str]:
    # mcp-remote keeps OAuth state under ~/.mcp-auth: a private HOME for the run.
    return {**os.environ, "NODE_EXTRA_CA_CERTS": str(certs.ca_file), "HOME": str(tmp_path / "home"),
            "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-auth"), "NO_COLOR": "1"}


def alarming(server: ServerProcess) -> list[dict]:
    return [e for e in server.events() if e["event"] in ("auth_failure", "rate_limited")]


class StdioClient:
    """A line-delimited JSON-RPC peer on a subprocess's stdin/stdout (mcp-remote is a proxy)."""

    def __init__(self, cmd: list[str], env: dict[str, str], stderr: Path) -> None:
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr.open("w"), text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, message: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def response(self, id_: int) -> dict:
        while True:
            try:
                message = json.loads(self.lines.get(timeout=CLIENT_TIMEOUT))
            except queue.Empty:
                raise AssertionError(f"no response {id_} within {CLIENT_TIMEOUT} s") from None
            if message.get("id") == id_:
                return message

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def test_mcp_remote_connects_twice_without_a_single_auth_failure(npm_bin, strict_server, certs,
                                                                  sqlite_env, tmp_path):
    key = new_key(sqlite_env, "npm-remote", "--scope", "tools:read")
    for start in range(2):  # two starts: 12 failures before, over the ">10 in 5 min" alarm
        client = StdioClient([str(npm_bin / "mcp-remote"), strict_server.url,
                              "--header", f"Authorization:Bearer {key}"],
                             client_env(certs, tmp_path), tmp_path / f"mcp-remote-{start}.stderr")
        try:
            client.send(INIT)
            assert "result" in client.response(1), (tmp_path / f"mcp-remote-{start}.stderr").read_text()
            client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            client.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            tools = client.response(2)["result"]["tools"]
            assert "whoami" in {t["name"] for t in tools}
        finally:
            client.close()
    assert alarming(strict_server) == []


def inspector(npm_bin: Path, server: ServerProcess, key: str, certs: Certs, tmp_path: Path,
              method: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(npm_bin / "mcp-inspector"), "--cli", server.url, "--transport", "http",
                           "--method", method, "--header", f"Authorization: Bearer {key}"],
                          env=client_env(certs, tmp_path), capture_output=True, text=True,
                          timeout=CLIENT_TIMEOUT, stdin=subprocess.DEVNULL)


def test_inspector_cli_lists_tools_and_is_refused_resources_without_the_scope(
        npm_bin, strict_server, certs, sqlite_env, tmp_path):
    key = new_key(sqlite_env, "npm-inspector", "--scope", "tools:read")
    listed = inspector(npm_bin, strict_server, key, certs, tmp_path, "tools/list")
    assert listed.returncode == 0, listed.stderr
    assert "validate_resource_tags" in {t["name"] for t in json.loads(listed.stdout)["tools"]}
    refused = inspector(npm_bin, strict_server, key, certs, tmp_path, "resources/list")
    assert refused.returncode != 0 and "resources:read" in refused.stdout + refused.stderr
    assert [e["reason"] for e in strict_server.events() if e["event"] == "insufficient_scope"] == [
        "method resources/list needs resources:read"]
    assert alarming(strict_server) == []
