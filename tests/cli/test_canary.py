"""Canary: after create, rotate and import, no plaintext key is anywhere but the output that
issued it — not in the store (every Redis value, every SQLite row, the raw database files), not
in stderr, not in the audit trail."""

from __future__ import annotations

import json

from tests.conftest import dump_redis

LEGACY_CANARY = "CANARY-legacy-key-5f1d0c3e9a"


def test_no_plaintext_key_anywhere_after_create_rotate_import(cli, backend, tmp_path):
    issued: list[str] = []
    stderr: list[str] = []
    outputs: list[str] = []

    def run(*args, stdin=None):
        r = cli(*args, stdin=stdin)
        assert r.code == 0, r.stderr
        stderr.append(r.stderr)
        outputs.append(r.stdout)
        return r

    issued.append(run("keys", "create", "canary", "--scope", "tools:read", "-q").stdout.strip())
    issued.append(run("keys", "create", "canary-json", "-o", "json").json()["key"])
    issued.append(run("keys", "rotate", "canary", "--grace", "1h", "-q").stdout.strip())
    issued.append(run("keys", "rotate", "canary-json", "-o", "json").json()["key"])
    # A key issued by another deployment (its own store), migrated here by import.
    other_store = f"sqlite:///{tmp_path / 'other' / 'keys.db'}"
    mcpk_to_import = run("keys", "create", "to-move", "-q", "--store", other_store).stdout.strip()
    issued.append(mcpk_to_import)
    issued.append(LEGACY_CANARY)
    run("keys", "import", stdin=f"moved:{mcpk_to_import}\nlegacy:{LEGACY_CANARY}\n")
    for key in issued:  # use every key so verification paths run too
        run("keys", "verify", stdin=key)
        run("keys", "hash", stdin=key)
    run("keys", "list", "--all", "-o", "json")
    run("keys", "show", "canary", "-o", "json")
    trail = run("audit", "events", "-o", "json").stdout

    # Positive control: the scan below would see a key if it were there.
    assert issued[0] in outputs[0]

    if backend.kind == "redis":
        haystacks = [json.dumps(dump_redis(backend.url))]  # the whole database, every namespace
    else:
        haystacks = [json.dumps(backend.dump(), default=str)]
        for path in backend.sqlite_path.parent.iterdir():  # db, -wal, -shm: raw bytes
            haystacks.append(path.read_bytes().decode("latin-1"))
    haystacks += [*stderr, trail]
    for key in issued:
        secret_part = key[-30:]
        for hay in haystacks:
            assert key not in hay
            assert secret_part not in hay
