"""`mcpadmin serve` start-up errors: one line, the documented exit code, and no banner; the
banner only once the server accepts connections (issue 12, point 4)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import trustme

from tests.redis_server import free_port
from tests.server.harness import make_certs

BANNER = "mcpadmin serve: http"


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # A timeout: before the fix, some of these started a server that never exited.
    return subprocess.run([sys.executable, "-m", "finops_mcp_admin", "serve", "--no-log-stdout", *args],
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


def _assert_one_line(r: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "unexpected" not in r.stderr
    assert BANNER not in r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def test_a_missing_certificate_is_one_line_exit_2(certs, sqlite_env, tmp_path):
    r = _serve(sqlite_env, "--port", str(free_port()), "--tls-cert", str(tmp_path / "nope.pem"),
               "--tls-key", str(certs.key_file))
    _assert_one_line(r, 2, "--tls-cert", "nope.pem", "No such file")


def test_a_directory_as_key_is_one_line_exit_2(certs, sqlite_env, tmp_path):
    r = _serve(sqlite_env, "--port", str(free_port()), "--tls-cert", str(certs.cert_file),
               "--tls-key", str(tmp_path))
    _assert_one_line(r, 2, "--tls-key")


def test_swapped_certificate_and_key_are_one_line_exit_2(certs, sqlite_env):
    r = _serve(sqlite_env, "--port", str(free_port()), "--tls-cert", str(certs.key_file),
               "--tls-key", str(certs.cert_file))
    _assert_one_line(r, 2, "--tls-cert", "swapped?")


def test_a_key_of_another_certificate_is_one_line_exit_2(certs, sqlite_env, tmp_path):
    other = trustme.CA().issue_cert("localhost")
    other.private_key_pem.write_to_path(str(tmp_path / "other.key"))
    other.cert_chain_pems[0].write_to_path(str(tmp_path / "other.pem"))
    r = _serve(sqlite_env, "--port", str(free_port()), "--tls-cert", str(tmp_path / "other.pem"),
               "--tls-key", str(certs.key_file))
    _assert_one_line(r, 2, "does not belong to the certificate")


@pytest.mark.parametrize("flag,value", [("--port", "99999"), ("--port", "0"), ("--redirect-port", "70000")])
def test_a_port_out_of_range_is_a_usage_error(certs, sqlite_env, flag, value):
    r = _serve(sqlite_env, "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
               flag, value)
    _assert_one_line(r, 2, flag, "1<=x<=65535")


@pytest.mark.parametrize("which", ["--port", "--redirect-port"])
def test_a_port_in_use_is_exit_5_before_the_banner(certs, sqlite_env, which):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = str(taken.getsockname()[1])
        ports = {"--port": str(free_port()), "--redirect-port": str(free_port()), which: busy}
        r = _serve(sqlite_env, "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                   *[x for flag, port in ports.items() for x in (flag, port)])
    _assert_one_line(r, 5, f"127.0.0.1:{busy} ({which})", "address already in use")


def test_an_unresolvable_host_is_a_usage_error(sqlite_env):
    r = _serve(sqlite_env, "--host", "no-such-host.invalid", "--port", str(free_port()))
    _assert_one_line(r, 2, "--host")


def test_the_banner_appears_only_once_the_server_accepts(certs, sqlite_env, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "finops_mcp_admin", "serve", "--no-log-stdout",
                             "--port", str(port), "--tls-cert", str(certs.cert_file),
                             "--tls-key", str(certs.key_file)],
                            env=sqlite_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith(f"mcpadmin serve: https://127.0.0.1:{port}/mcp"), line
        # No retry: the banner promises that the port accepts now.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.terminate()
        proc.wait(10)


def test_bridge_with_a_ca_bundle_that_is_not_pem_is_one_line_exit_2(sqlite_env, tmp_path):
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    env = {**sqlite_env, "MCP_CA_BUNDLE": str(bogus), "MCP_API_KEY": ""}
    r = subprocess.run([sys.executable, "-c", "from finops_mcp_admin.cli.bridge import main; main()",
                        "https://mcp.example.com/mcp"], env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "CA bundle" in r.stderr and str(bogus) in r.stderr


def test_make_certs_still_serves_after_the_checks(certs):
    """The checks accept what the harness issues (a chain file that holds its key too)."""
    from finops_mcp_admin.server.listeners import check_tls_files

    check_tls_files(str(certs.cert_file), str(certs.key_file))
    fresh = make_certs(certs.cert_file.parent / "fresh")
    check_tls_files(str(fresh.cert_file), str(fresh.key_file))


def test_an_address_that_is_not_local_is_exit_5(sqlite_env):
    r = _serve(sqlite_env, "--host", "192.0.2.1", "--port", str(free_port()))  # TEST-NET-1
    _assert_one_line(r, 5, "cannot listen on 192.0.2.1:", "no such local address")


def test_an_encrypted_key_is_refused_without_a_prompt(certs, sqlite_env, tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(certs.key_file.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"hunter2-canary")))
    r = _serve(sqlite_env, "--port", str(free_port()), "--tls-cert", str(certs.cert_file),
               "--tls-key", str(encrypted))
    _assert_one_line(r, 2, "encrypted")


def test_connections_accepted_on_the_pre_bound_socket_have_nagle_off():
    """serve binds its sockets itself; asyncio turns Nagle off only for sockets whose proto is
    TCP. With proto 0 every response's body waited for the client's delayed ACK (40 ms)."""
    import asyncio

    from finops_mcp_admin.server.listeners import bind

    async def accept_one() -> int:
        sock = bind("127.0.0.1", free_port(), "--port")
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accept_one()) != 0
