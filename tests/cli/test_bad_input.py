"""Bad input: one clear stderr line, the documented exit code, no traceback, store unchanged."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.redis_server import free_port


def assert_one_line(r, code):
    assert r.code == code, (r.code, r.stderr)
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("mcpadmin: error: ")
    assert "Traceback" not in r.stderr


@pytest.fixture
def seeded(cli, backend):
    r = cli("keys", "create", "seed", "-o", "json")
    assert r.code == 0
    return r.json()


BAD_COMMANDS = [
    (("keys", "create", "x", "--expires", "9x"), 2),
    (("keys", "create", "x", "--expires", "2020-01-01"), 2),
    (("keys", "create", "x", "--expires", "99999999999d"), 2),
    (("keys", "rotate", "seed", "--grace", "soon"), 2),
    (("keys", "list", "--expiring-within", "7"), 2),
    (("keys", "list", "--unused-for", "-3d"), 2),
    (("keys", "list", "--status", "sleeping"), 2),
    (("audit", "events", "--since", "yesterday"), 2),
    (("keys", "create", "n" * 65), 2),
    (("keys", "create", "bad\x07name"), 2),
    (("keys", "create", "tab\tname"), 2),
    (("keys", "create", "ünïcode"), 2),
    (("keys", "create", "-leading-dash-is-an-option"), 2),
    (("keys", "create", "ok", "--scope", "has space"), 2),
    (("keys", "create", "ok", "--owner", "x" * 129), 2),
    (("keys", "create", "ok", "--description", "line\nbreak"), 2),
    (("keys", "show", "nosuchname"), 3),
    (("keys", "show", "AAAAAAAAAAAA"), 3),
    (("keys", "rotate", "nosuchname"), 3),
    (("keys", "revoke", "nosuchname"), 3),
    (("keys", "revoke", "seed", "--reason", "x" * 300), 2),
    (("keys", "revoke"), 2),
    (("keys", "list", "-o", "xml"), 2),
    (("keys", "create", "seed"), 4),
    (("keys", "frobnicate"), 2),
]


@pytest.mark.parametrize("args,code", BAD_COMMANDS, ids=[" ".join(a)[:40] for a, _ in BAD_COMMANDS])
def test_bad_input_is_one_line_and_changes_nothing(cli, backend, seeded, args, code):
    before = backend.dump()
    assert_one_line(cli(*args), code)
    assert backend.dump() == before


CORRUPT_KEYS = {
    "checksum": lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),
    "truncated": lambda k: k[:-3],
    "bad alphabet": lambda k: k[:10] + "-" + k[11:],
    "too long": lambda k: k + "A" * 300,
    "control char": lambda k: k[:8] + "\x1b" + k[9:],
}


@pytest.mark.parametrize("kind", sorted(CORRUPT_KEYS))
def test_corrupted_key_on_stdin_is_refused_without_echoing_it(cli, backend, seeded, kind):
    corrupted = CORRUPT_KEYS[kind](seeded["key"])
    before = backend.dump()
    r = cli("keys", "verify", stdin=corrupted + "\n")
    assert_one_line(r, 2)
    assert seeded["key"][6:30] not in r.stderr + r.stdout
    imp = cli("keys", "import", stdin=f"copy:{corrupted}\n")
    assert_one_line(imp, 2)
    assert backend.dump() == before


def test_empty_stdin_is_bad_input(cli, backend):
    assert_one_line(cli("keys", "verify", stdin=""), 2)
    assert_one_line(cli("keys", "import", stdin="\n\n"), 2)


def _seconds(cli, *args: str):
    start = time.monotonic()
    r = cli(*args)
    return r, time.monotonic() - start


def _local_run_seconds(cli, tmp_path) -> float:
    """The same command failing at once on a local store that does not exist: the CLI's own
    start-up, which the Redis timings below leave out (four test processes share the CPUs, so
    start-up varies)."""
    r, seconds = _seconds(cli, "keys", "list", "--store", f"sqlite:///{tmp_path / 'absent.db'}")
    assert r.code == 3, r.stderr
    return seconds


def test_unreachable_redis_fails_fast_with_exit_5(cli, tmp_path):
    port = free_port()  # nothing listens here
    r, seconds = _seconds(cli, "keys", "list", "--store", f"redis://127.0.0.1:{port}/0")
    assert_one_line(r, 5)
    assert "cannot reach Redis" in r.stderr
    # A refused connection fails at once: no retries, no backoff.
    assert seconds - _local_run_seconds(cli, tmp_path) < 1.0, seconds


@pytest.fixture
def blackhole_port():
    """A port whose TCP handshake never completes (full accept queue: the kernel drops SYNs),
    like a firewalled or unroutable host — without depending on the network."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    probe = socket.socket()
    probe.settimeout(0.2)
    with pytest.raises(TimeoutError):
        probe.connect(("127.0.0.1", port))
    yield port
    probe.close()
    filler.close()
    srv.close()


def test_unresponsive_redis_host_fails_after_one_connect_timeout(cli, blackhole_port, tmp_path):
    r, seconds = _seconds(cli, "keys", "create", "x", "--store", f"redis://127.0.0.1:{blackhole_port}/0")
    assert_one_line(r, 5)
    # One 1.5 s connect timeout and no retry (a second attempt would make it 3 s).
    waited = seconds - _local_run_seconds(cli, tmp_path)
    assert waited < 2.5, waited


def test_non_redis_server_is_unavailable_not_a_crash(cli):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def answer_http():
        conn, _ = srv.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_http, daemon=True).start()
    r = cli("keys", "list", "--store", f"redis://127.0.0.1:{port}/0")
    srv.close()
    assert_one_line(r, 5)


def test_wrong_redis_password_is_permission_denied_and_never_echoed(cli, redis_server):
    secret = "wrong-password-canary-7731"
    r = cli("keys", "list", "--store", redis_server.admin_url,
            env={"MCPADMIN_REDIS_PASSWORD": secret})
    assert_one_line(r, 6)
    assert secret not in r.stderr
    in_url = cli("keys", "list", "--store",
                 f"redis://admin:{secret}@127.0.0.1:{redis_server.port}/0")
    assert_one_line(in_url, 6)
    assert secret not in in_url.stderr and "***" in in_url.stderr


def test_right_redis_password_from_environment_works(cli, redis_server, admin_password):
    env = {"MCPADMIN_REDIS_PASSWORD": admin_password, "MCPADMIN_NAMESPACE": "acltest"}
    r = cli("keys", "create", "acl-user-key", "-q", "--store", redis_server.admin_url, env=env)
    assert r.code == 0, r.stderr
    assert cli("keys", "list", "-q", "--store", redis_server.admin_url, env=env).code == 0


def test_read_only_sqlite_store_refuses_writes(cli, tmp_path):
    path = tmp_path / "ro.db"
    assert cli("keys", "create", "before", "--store", f"sqlite:///{path}").code == 0
    from tests.conftest import dump_sqlite

    before = dump_sqlite(path)
    ro = f"sqlite:///{path}?mode=ro"
    assert cli("keys", "list", "--store", ro).code == 0
    assert_one_line(cli("keys", "create", "after", "--store", ro), 6)
    assert_one_line(cli("keys", "revoke", "before", "--store", ro), 6)
    assert dump_sqlite(path) == before


def test_sqlite_store_under_a_file_is_unavailable(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_one_line(cli("cors", "add", "https://a.example", "--store", f"sqlite:///{blocker}/sub/keys.db"), 5)
    # A read does not try to create it: there is simply no store there.
    assert_one_line(cli("keys", "list", "--store", f"sqlite:///{blocker}/sub/keys.db"), 3)


def test_garbage_sqlite_file_is_reported_not_overwritten(cli, tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    assert_one_line(cli("keys", "list", "--store", f"sqlite:///{path}"), 5)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_unknown_store_scheme_is_bad_usage_without_echoing_credentials(cli):
    r = cli("keys", "list", "--store", "postgres://user:hunter2@db/x")
    assert_one_line(r, 2)
    assert "hunter2" not in r.stderr


def test_bulk_revocation_refused_without_terminal_changes_nothing(cli, backend, seeded):
    before = backend.dump()
    assert_one_line(cli("keys", "revoke", "--all"), 2)
    assert backend.dump() == before
