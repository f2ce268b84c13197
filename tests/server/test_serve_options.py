"""`serve --app` secures an existing MCP app unchanged; SIGHUP re-reads static hashes."""

from __future__ import annotations

import signal
import time

import anyio

from finops_mcp_admin.keys import HashParams, KeyHasher, Secret
from tests.server.conftest import new_key
from tests.server.harness import ServerProcess, mcp_session
from tests.server.test_e2e import post


def test_app_option_wraps_an_existing_mcp_server(certs, sqlite_env, tmp_path):
    reader = new_key(sqlite_env, "ext-reader", "--scope", "tools:read")
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--app", "tests.server.external_app:app",
                            "--tool-scope", "delete_budget=budgets:write",
                            "--tool-scope", "cost_report=tools:read"],
                           sqlite_env, tmp_path / "events.jsonl").start()
    try:
        async def use():
            async with mcp_session(server.url, certs, reader) as s:
                names = {t.name for t in (await s.list_tools()).tools}
                return names, (await s.call_tool("cost_report", {"month": "2026-10"})).content

        names, content = anyio.run(use)
        assert {"cost_report", "delete_budget"} <= names and "1234.5" in content[0].text
        assert post(server, certs, None).status_code == 401
        call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": {"name": "delete_budget", "arguments": {"name": "x"}}}
        denied = post(server, certs, reader, call)
        assert denied.status_code == 403 and 'scope="budgets:write"' in denied.headers["www-authenticate"]
    finally:
        server.stop()


def test_sighup_reloads_the_hashes_file(certs, sqlite_env, tmp_path):
    fast = KeyHasher(HashParams(time_cost=1, memory_cost=1024))
    first, second = "first-static-deploy-key-000000", "second-static-deploy-key-00000"
    hashes = tmp_path / "hashes.txt"
    hashes.write_text(fast.hash(Secret(first)) + "\n")
    server = ServerProcess(["--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                            "--no-store", "--hashes-file", str(hashes)],
                           sqlite_env, tmp_path / "events.jsonl").start()
    try:
        assert post(server, certs, first).status_code == 200
        assert post(server, certs, second).status_code == 401
        hashes.write_text(fast.hash(Secret(second)) + "\n")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 2
        while post(server, certs, second).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert post(server, certs, first).status_code == 401
        assert any(e["event"] == "config_reloaded" for e in server.events())
    finally:
        server.stop()


def test_tls_from_environment_and_tool_scopes_from_the_config_file(certs, sqlite_env, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[tool_scopes]\nvalidate_resource_tags = "tags:check"\n')
    env = {**sqlite_env, "TLS_ENABLED": "true", "TLS_CERT_FILE": str(certs.cert_file),
           "TLS_KEY_FILE": str(certs.key_file), "MCPADMIN_CONFIG": str(config)}
    reader = new_key(sqlite_env, "cfg-reader", "--scope", "tools:read")
    server = ServerProcess([], env, tmp_path / "events.jsonl").start()
    try:
        assert post(server, certs, reader).status_code == 200  # HTTPS, from TLS_* variables
        call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                "params": {"name": "validate_resource_tags", "arguments": {"resource_type": "x", "tags": {}}}}
        denied = post(server, certs, reader, call)
        assert denied.status_code == 403 and 'scope="tags:check"' in denied.headers["www-authenticate"]
    finally:
        server.stop()
