"""Issue 12.5: `--expires 0` (any non-positive lifetime) is refused and creates nothing; a key
without --scope or --expires gets a stderr note, or the config file's default_scopes /
default_expires, and the note says which."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest


def write_config(tmp_path, text):
    path = tmp_path / "config" / "mcpadmin" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("value", ["0", "0d", "0s", "00h", "-1d", "-0"])
def test_non_positive_expiry_is_refused_and_creates_nothing(cli, backend, value):
    assert cli("cors", "add", "https://seed.example").code == 0  # the store exists
    before = backend.dump()
    r = cli("keys", "create", "now-expired", "--scope", "tools:read", f"--expires={value}")
    assert r.code == 2 and r.stderr.count("\n") == 1 and r.stdout == "", r.stderr
    assert backend.dump() == before


def test_non_positive_expiry_on_a_new_store_creates_no_store(cli, tmp_path):
    r = cli("keys", "create", "x", "--expires", "0")
    assert r.code == 2 and not (tmp_path / "data").exists()


def test_no_scope_and_no_expiry_is_created_with_two_warnings(cli, backend):
    r = cli("keys", "create", "bare", "-q")
    assert r.code == 0 and r.stdout.startswith("mcpk_")
    assert "warning: key 'bare' has no scope" in r.stderr and "default_scopes" in r.stderr
    assert "warning: key 'bare' never expires" in r.stderr and "default_expires" in r.stderr
    shown = cli("keys", "show", "bare", "-o", "json").json()
    assert shown["scopes"] == [] and shown["expires_at"] is None


def test_explicit_scope_and_never_are_quiet(cli, backend):
    assert cli("cors", "add", "https://seed.example").code == 0  # the store exists
    r = cli("keys", "create", "forever", "--scope", "tools:read", "--expires", "never", "-q")
    assert r.code == 0 and r.stderr == "", r.stderr
    assert cli("keys", "show", "forever", "-o", "json").json()["expires_at"] is None


def test_config_defaults_apply_and_the_note_says_so(cli, backend, tmp_path):
    write_config(tmp_path, 'default_expires = "90d"\ndefault_scopes = ["tools:read", "prompts:read"]\n'
                           '[profile.ci]\ndefault_expires = "7d"\n')
    r = cli("keys", "create", "defaulted", "-o", "json")
    assert r.code == 0, r.stderr
    data = r.json()
    assert data["scopes"] == ["tools:read", "prompts:read"]
    lifetime = datetime.fromisoformat(data["expires_at"]) - datetime.fromisoformat(data["created_at"])
    assert lifetime == timedelta(days=90)
    assert "default_scopes tools:read, prompts:read from the config file" in r.stderr
    assert "expires in 90d (default_expires from the config file)" in r.stderr
    assert "warning" not in r.stderr
    r = cli("--profile", "ci", "keys", "create", "ci-key", "-o", "json")
    assert "expires in 7d (default_expires from profile 'ci')" in r.stderr
    # Flags win over the defaults, silently.
    r = cli("keys", "create", "explicit", "--scope", "tools:write", "--expires", "1d", "-o", "json")
    assert r.json()["scopes"] == ["tools:write"] and "default" not in r.stderr
    r = cli("keys", "create", "eternal", "--expires", "never", "-o", "json")
    assert r.json()["expires_at"] is None and "default_expires" not in r.stderr


@pytest.mark.parametrize("text", ['default_expires = "0"\n', 'default_expires = "soon"\n',
                                  "default_expires = 90\n", "default_scopes = []\n",
                                  'default_scopes = "tools:read"\n', 'default_scopes = ["bad scope"]\n'])
def test_bad_defaults_are_usage_errors(cli, tmp_path, text):
    write_config(tmp_path, text)
    r = cli("keys", "create", "x")
    assert r.code == 2 and r.stderr.count("\n") == 1 and "default_" in r.stderr
    assert not (tmp_path / "data").exists()
