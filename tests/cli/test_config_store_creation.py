"""Issue 12.2: reading never creates a store. A read on a missing SQLite store exits 3 naming the
path and leaves no file or directory behind; a command that adds something creates the store
and says so on stderr, once. Unknown keys in the config file are exit 2 naming the key."""

from __future__ import annotations

import pytest

from finops_mcp_admin.keys import generate_token

READS = [
    ("keys", "list"), ("keys", "list", "--all", "-o", "json"), ("keys", "show", "ci"),
    ("keys", "verify"), ("audit", "events"), ("cors", "list"), ("cors", "check", "https://a.example"),
    ("keys", "rotate", "ci"), ("keys", "revoke", "ci"), ("keys", "revoke", "--all", "--yes"),
    ("keys", "update", "ci", "--rate", "5/min"), ("cors", "remove", "https://a.example"),
]


@pytest.mark.parametrize("args", READS, ids=[" ".join(a) for a in READS])
def test_command_on_a_missing_store_exits_3_and_creates_nothing(cli, tmp_path, args):
    typo = tmp_path / "typo" / "dir" / "keys.db"
    stdin = generate_token()[1].reveal() + "\n" if args == ("keys", "verify") else None
    r = cli(*args, "--store", f"sqlite:///{typo}", stdin=stdin)
    assert r.code == 3, (r.code, r.stderr)
    assert r.stderr.count("\n") == 1 and str(typo) in r.stderr and r.stdout == ""
    assert not (tmp_path / "typo").exists()


def test_default_store_is_not_created_by_a_read(cli, tmp_path):
    r = cli("keys", "list")
    assert r.code == 3 and str(tmp_path / "data" / "mcpadmin" / "mcpadmin.db") in r.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("write", [("keys", "create", "first", "--scope", "tools:read", "--expires", "1d"),
                                   ("cors", "add", "https://a.example"),
                                   ("keys", "import", "--scope", "tools:read")])
def test_a_write_creates_the_store_and_says_so_once(cli, tmp_path, write):
    db = tmp_path / "new" / "keys.db"
    url = f"sqlite:///{db}"
    stdin = "legacy-key-1234567890abcdef\n" if write[1] == "import" else None
    first = cli(*write, "-q", "--store", url, stdin=stdin)
    assert first.code == 0, first.stderr
    assert f"created store at {db}\n" in first.stderr
    assert db.stat().st_mode & 0o777 == 0o600
    listed = cli("keys", "list", "--all", "--store", url)
    assert listed.code == 0 and "created store" not in listed.stderr
    again = cli("cors", "add", "https://b.example", "--store", url)
    assert again.code == 0 and "created store" not in again.stderr


@pytest.mark.parametrize("write", [("keys", "create", "bad name"), ("keys", "create", "x", "--scope", "a b"),
                                   ("keys", "create", "x", "--rate", "lots"), ("keys", "import"),
                                   ("cors", "add", "https://a.example/path")])
def test_a_refused_write_leaves_no_store_behind(cli, tmp_path, write):
    db = tmp_path / "new" / "keys.db"
    r = cli(*write, "--store", f"sqlite:///{db}", stdin="\n")
    assert r.code == 2 and r.stderr.count("\n") == 1 and "created store" not in r.stderr, r.stderr
    assert not (tmp_path / "new").exists()


def test_read_only_url_on_a_missing_store_is_3(cli, tmp_path):
    r = cli("keys", "list", "--store", f"sqlite:///{tmp_path / 'none.db'}?mode=ro")
    assert r.code == 3 and not (tmp_path / "none.db").exists()


def _config(tmp_path, text):
    path = tmp_path / "config" / "mcpadmin" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("text,name", [
    ('stor = "sqlite:////x.db"\n', "'stor'"),
    ('[argon2]\ntime_cost = 2\ndefault_tool_scope = "tools:read"\n', "'argon2.default_tool_scope'"),
    ('[profile.prod]\nnamespce = "prod"\n', "'profile.prod.namespce'"),
    ('[profile.prod.argon2]\nmemory = 1\n', "'profile.prod.argon2.memory'"),
    ('[logging]\nlevel = "debug"\n', "'logging'"),
])
def test_unknown_config_key_is_an_error_naming_it(cli, tmp_path, text, name):
    _config(tmp_path, text)
    for args in (("keys", "list"), ("config", "show"), ("cors", "add", "https://a.example")):
        r = cli(*args)
        assert r.code == 2 and r.stderr.count("\n") == 1 and name in r.stderr, (args, r.stderr)
    assert not (tmp_path / "data").exists()


def test_a_value_where_a_table_belongs_and_the_reverse_are_errors(cli, tmp_path):
    _config(tmp_path, 'argon2 = 3\n')
    assert cli("keys", "list").code == 2
    _config(tmp_path, '[store]\nurl = "x"\n')
    r = cli("keys", "list")
    assert r.code == 2 and "'store'" in r.stderr
