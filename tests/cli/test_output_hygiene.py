"""What the CLI prints cannot carry a key or a terminal escape, and the SQLite store is refused
where another local user could swap its files (issue 11, point 9). Real subprocesses."""

from __future__ import annotations

import os
import stat

import pytest

from finops_mcp_admin.keys import generate_token

ESC = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"  # set the terminal title, clear the screen, red


@pytest.fixture
def store_env(tmp_path) -> dict[str, str]:
    return {"MCPADMIN_STORE": f"sqlite:///{tmp_path / 'store' / 'keys.db'}"}


@pytest.mark.parametrize("argv", [
    ["keys", "verify", "{key}"],
    ["keys", "hash", "{key}"],
    ["keys", "list", "--output", "{key}"],
    ["keys", "list", "--output={key}"],
    ["keys", "show", "x", "{key}"],
    ["keys", "verify", "--{key}"],
], ids=["extra-argument", "hash-argument", "bad-choice", "bad-choice-equals", "extra-after-id", "as-option"])
def test_a_key_given_as_an_argument_is_never_echoed(cli, store_env, argv):
    key = generate_token()[1].reveal()
    r = cli(*[a.replace("{key}", key) for a in argv], env=store_env)
    assert r.code == 2 and r.stderr.count("\n") == 1, r.stderr
    secret = key.split("_", 2)[-1]
    for piece in {key, key[:17], secret, *(secret[i:i + 8] for i in range(len(secret) - 7))}:
        assert piece not in r.stdout + r.stderr, (piece, r.stderr)
    assert "try 'mcpadmin" in r.stderr  # still a usable message


def test_usage_errors_without_secrets_are_unchanged(cli, store_env):
    r = cli("keys", "list", "--output", "yaml", env=store_env)
    assert r.code == 2 and "'yaml' is not one of" in r.stderr


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_control_characters_in_the_actor_are_stripped_in_every_format(cli, store_env, fmt):
    env = {**store_env, "MCPADMIN_ACTOR": f"mallory{ESC}@ci\u202e"}
    assert cli("keys", "create", "esc-victim", "--scope", "tools:read", "-q", env=env).code == 0
    r = cli("audit", "events", "-o", fmt, env=store_env)
    assert r.code == 0, r.stderr
    assert "mallory]0;pwned[2J[31m@ci" in r.stdout  # the printable rest stays
    assert not any(c in r.stdout + r.stderr for c in "\x1b\x07\u202e")
    assert "\\u001b" not in r.stdout  # not merely escaped in JSON: gone


def test_notes_strip_control_characters_and_keep_line_breaks(capsys):
    from finops_mcp_admin.cli import _render

    _render.note(f"  Bucket: CREATE_FAILED: {ESC}denied\nnext line")
    assert capsys.readouterr().err == "  Bucket: CREATE_FAILED: ]0;pwned[2J[31mdenied\nnext line\n"


def test_a_partial_echo_of_a_secret_argument_drops_the_detail():
    from finops_mcp_admin.cli import _without_secrets

    key = generate_token()[1].reveal()
    assert _without_secrets(f"Invalid value: {key[:20]}…", ["keys", key]) == "Invalid value (value not shown)"
    assert _without_secrets(f"Got unexpected extra argument(s) ({key})", [key]) == \
        "Got unexpected extra argument(s) (<redacted>)"
    assert _without_secrets("No such option: --bogus", ["--bogus", "/var/lib/mcpadmin/keys.db"]) == \
        "No such option: --bogus"


def test_a_symlinked_store_is_refused(cli, tmp_path):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "store").mkdir(mode=0o700)
    real = tmp_path / "real" / "keys.db"
    assert cli("cors", "add", "https://a.example", env={"MCPADMIN_STORE": f"sqlite:///{real}"}).code == 0
    (tmp_path / "store" / "keys.db").symlink_to(real)
    before = real.read_bytes()
    link = f"sqlite:///{tmp_path / 'store' / 'keys.db'}"
    for url in (link, link + "?mode=ro"):
        r = cli("keys", "create", "via-link", "-q", env={"MCPADMIN_STORE": url})
        assert r.code == 2 and r.stderr.count("\n") == 1 and "symbolic link" in r.stderr, r.stderr
    assert real.read_bytes() == before  # nothing written through the link


@pytest.mark.parametrize("mode", [0o777, 0o1777], ids=["world-writable", "sticky-like-tmp"])
def test_a_store_in_a_world_writable_directory_is_refused(cli, tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, mode)
    r = cli("keys", "create", "shared", "-q", env={"MCPADMIN_STORE": f"sqlite:///{shared / 'keys.db'}"})
    assert r.code == 2 and r.stderr.count("\n") == 1 and "world-writable" in r.stderr, r.stderr
    assert list(shared.iterdir()) == []  # no database was created


def test_a_world_writable_ancestor_without_the_sticky_bit_is_refused(cli, tmp_path):
    own = tmp_path / "open" / "mine"
    own.mkdir(parents=True, mode=0o700)
    os.chmod(tmp_path / "open", 0o777)  # anyone could rename "mine" and put theirs in its place
    r = cli("keys", "list", env={"MCPADMIN_STORE": f"sqlite:///{own / 'keys.db'}"})
    assert r.code == 2 and "world-writable" in r.stderr
    os.chmod(tmp_path / "open", 0o777 | stat.S_ISVTX)  # sticky: others cannot rename it
    store = {"MCPADMIN_STORE": f"sqlite:///{own / 'keys.db'}"}
    assert cli("cors", "add", "https://a.example", env=store).code == 0
