"""Contract tests: every `mcpadmin keys` command, through a real subprocess, on both stores."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from finops_mcp_admin.keys import parse_token


def create(cli, name, *extra):
    r = cli("keys", "create", name, "-o", "json", *extra)
    assert r.code == 0, r.stderr
    return r.json()


def verify(cli, key):
    return cli("keys", "verify", "-o", "json", stdin=key + "\n")


def test_create_prints_key_once_with_documented_fields(cli, backend):
    data = create(cli, "ci-pipeline", "--scope", "tools:read", "--scope", "tools:write",
                  "--expires", "90d", "--owner", "team-a")
    assert set(data) == {"id", "name", "key", "scopes", "created_at", "expires_at", "owner"}
    assert parse_token(data["key"]).key_id == data["id"]
    assert data["scopes"] == ["tools:read", "tools:write"]
    assert data["owner"] == "team-a" and data["expires_at"].endswith("Z")
    shown = cli("keys", "show", data["id"], "-o", "json")
    assert data["key"] not in shown.stdout and "argon2" not in shown.stdout


def test_create_quiet_prints_only_the_key(cli, backend):
    assert cli("cors", "add", "https://seed.example").code == 0  # the store exists: no "created" note
    r = cli("keys", "create", "quiet-one", "-q", "--scope", "tools:read", "--expires", "1d")
    assert r.code == 0 and r.stderr == ""
    key = r.stdout.strip()
    assert r.stdout == key + "\n"
    assert verify(cli, key).code == 0


def test_create_without_scope_warns_on_stderr_even_when_quiet(cli, backend):
    for extra in ((), ("-q",), ("-o", "json")):
        r = cli("keys", "create", f"unscoped{len(extra)}", "--expires", "1d", *extra)
        assert r.code == 0
        assert r.stderr.count("warning: key 'unscoped") == 1, r.stderr
        assert "no scope" in r.stderr and "--scope" in r.stderr
        key = r.stdout.strip() if extra == ("-q",) else None
        assert key is None or (key.startswith("mcpk_") and key not in r.stderr)
    imported = cli("keys", "import", stdin="legacy-one:legacy-secret-value-0123456789\n")
    assert imported.code == 0 and "warning: the imported keys have no scope" in imported.stderr


def test_second_active_key_with_same_name_conflicts_and_changes_nothing(cli, backend):
    create(cli, "dup")
    before = backend.dump()
    r = cli("keys", "create", "dup")
    assert r.code == 4
    assert r.stderr.count("\n") == 1 and "already exists" in r.stderr
    assert backend.dump() == before


def test_name_is_reusable_after_revocation(cli, backend):
    create(cli, "reuse")
    assert cli("keys", "revoke", "reuse").code == 0
    assert cli("keys", "create", "reuse").code == 0


def test_list_shows_records_never_secrets_and_filters(cli, backend):
    a = create(cli, "alpha", "--owner", "team-a", "--expires", "3d")
    b = create(cli, "bravo", "--owner", "team-b")
    c = create(cli, "charlie", "--owner", "team-a")
    assert cli("keys", "revoke", c["id"]).code == 0

    table = cli("keys", "list")
    assert table.code == 0
    for header in ("ID", "NAME", "OWNER", "SCOPES", "STATUS", "CREATED", "EXPIRES", "LAST USED"):
        assert header in table.stdout
    assert a["id"] in table.stdout and b["id"] in table.stdout and c["id"] not in table.stdout
    for fmt in ("table", "json", "csv"):
        out = cli("keys", "list", "--all", "-o", fmt).stdout
        for k in (a, b, c):
            assert k["key"] not in out and k["key"][-20:] not in out
        assert "argon2" not in out

    def ids(*args):
        r = cli("keys", "list", "-o", "json", *args)
        assert r.code == 0, r.stderr
        return {row["id"] for row in r.json()}

    assert ids() == {a["id"], b["id"]}
    assert ids("--all") == {a["id"], b["id"], c["id"]}
    assert ids("--owner", "team-a") == {a["id"]}
    assert ids("--status", "revoked") == {c["id"]}
    assert ids("--expiring-within", "7d") == {a["id"]}
    assert ids("--expiring-within", "1d") == set()
    assert ids("--unused-for", "1d") == set()
    quiet = cli("keys", "list", "-q")
    assert set(quiet.stdout.split()) == {a["id"], b["id"]}
    csv_out = cli("keys", "list", "-o", "csv").stdout.splitlines()
    assert csv_out[0].startswith("id,name,") and len(csv_out) == 3


def test_show_by_id_and_name_and_unknown(cli, backend):
    k = create(cli, "showme", "--description", "for show")
    by_id = cli("keys", "show", k["id"], "-o", "json").json()
    by_name = cli("keys", "show", "showme", "-o", "json").json()
    assert by_id == by_name
    assert by_id["description"] == "for show" and by_id["status"] == "active"
    r = cli("keys", "show", "nosuchkey")
    assert r.code == 3 and r.stderr.strip().endswith("'nosuchkey'")


def test_verify_valid_invalid_and_malformed(cli, backend):
    k = create(cli, "verifier")
    ok = verify(cli, k["key"])
    assert ok.code == 0 and ok.json()["valid"] is True and ok.json()["id"] == k["id"]
    # Same id, other (well-formed) secret: invalid, exit 1.
    from finops_mcp_admin.keys import generate_token

    _, forged = generate_token(k["id"])
    bad = verify(cli, forged.reveal())
    assert bad.code == 1 and bad.json()["valid"] is False and "wrong secret" in bad.stderr
    _, unknown = generate_token()
    assert verify(cli, unknown.reveal()).code == 1
    corrupted = k["key"][:-1] + ("A" if k["key"][-1] != "A" else "B")
    r = verify(cli, corrupted)
    assert r.code == 2 and "checksum" in r.stderr and corrupted not in r.stderr + r.stdout


def test_hash_and_check(cli, backend):
    r = cli("keys", "hash", stdin="some-legacy-key-1234567\n")
    assert r.code == 0 and r.stdout.startswith("$argon2id$")
    phc = r.stdout.strip()
    assert cli("keys", "hash", "--check", phc, stdin="some-legacy-key-1234567\n").code == 0
    nomatch = cli("keys", "hash", "--check", phc, stdin="another-key-123456789\n")
    assert nomatch.code == 1 and "no match" in nomatch.stderr
    assert cli("keys", "hash", "--check", "not-a-phc", stdin="k" * 20).code == 2
    assert cli("keys", "hash", stdin="").code == 2


def test_rotation_grace_keeps_both_valid_then_old_expires(cli, backend):
    old = create(cli, "rotor", "--scope", "tools:read", "--owner", "o1")
    r = cli("keys", "rotate", "rotor", "--grace", "5s", "-o", "json")
    assert r.code == 0, r.stderr
    new = r.json()
    assert new["id"] != old["id"] and new["name"] == "rotor"
    assert new["scopes"] == ["tools:read"] and new["owner"] == "o1"
    assert verify(cli, old["key"]).code == 0
    assert verify(cli, new["key"]).code == 0
    shown = cli("keys", "show", old["id"], "-o", "json").json()
    assert shown["rotated_to"] == new["id"]
    assert cli("keys", "show", new["id"], "-o", "json").json()["rotated_from"] == old["id"]
    # Times are whole seconds, so the grace ends 4-5 s after the rotation: wait for it.
    grace_end = datetime.fromisoformat(shown["expires_at"])
    time.sleep(max(0.0, (grace_end - datetime.now(UTC)).total_seconds()) + 0.3)
    expired = verify(cli, old["key"])
    assert expired.code == 1 and "expired" in expired.stderr
    assert verify(cli, new["key"]).code == 0


def test_rotation_with_zero_grace_invalidates_at_once(cli, backend):
    old = create(cli, "rotor0")
    new = cli("keys", "rotate", old["id"], "--grace", "0", "-q")
    assert new.code == 0
    assert verify(cli, old["key"]).code == 1
    assert verify(cli, new.stdout.strip()).code == 0


def test_rotating_a_superseded_or_revoked_key_conflicts(cli, backend):
    old = create(cli, "chain")
    assert cli("keys", "rotate", "chain").code == 0
    r = cli("keys", "rotate", old["id"])
    assert r.code == 4 and "already rotated" in r.stderr
    k = create(cli, "gone")
    cli("keys", "revoke", "gone")
    assert cli("keys", "rotate", k["id"]).code == 4


def test_revoked_and_expired_keys_never_verify(cli, backend):
    r1 = create(cli, "revoked-one")
    r = cli("keys", "revoke", r1["id"], "--reason", "laptop lost")
    assert r.code == 0 and r1["id"] in r.stdout
    assert verify(cli, r1["key"]).code == 1
    shown = cli("keys", "show", r1["id"], "-o", "json").json()
    assert shown["status"] == "revoked" and shown["revoked_reason"] == "laptop lost"
    e1 = create(cli, "short-lived", "--expires", "1s")
    time.sleep(1.2)
    r = verify(cli, e1["key"])
    assert r.code == 1 and "expired" in r.stderr
    assert cli("keys", "list", "--status", "expired", "-q").stdout.split() == [e1["id"]]


def test_revoke_by_name_revokes_keys_still_in_grace(cli, backend):
    old = create(cli, "lineage")
    new = cli("keys", "rotate", "lineage", "--grace", "1h", "-o", "json").json()
    r = cli("keys", "revoke", "lineage", "-o", "json")
    assert r.code == 0
    assert {row["id"] for row in r.json()} == {old["id"], new["id"]}
    assert verify(cli, old["key"]).code == 1 and verify(cli, new["key"]).code == 1
    again = cli("keys", "revoke", new["id"])
    assert again.code == 0 and "nothing to revoke" in again.stderr


def test_bulk_revocation_needs_yes_without_a_terminal(cli, backend):
    a = create(cli, "bulk-a", "--owner", "contractor")
    b = create(cli, "bulk-b", "--owner", "contractor")
    c = create(cli, "bulk-c", "--owner", "staff")
    before = backend.dump()
    refused = cli("keys", "revoke", "--all", "--owner", "contractor")
    assert refused.code == 2 and "--yes" in refused.stderr
    assert backend.dump() == before
    done = cli("keys", "revoke", "--all", "--owner", "contractor", "--yes", "-q")
    assert done.code == 0 and set(done.stdout.split()) == {a["id"], b["id"]}
    assert verify(cli, c["key"]).code == 0
    assert cli("keys", "revoke", "--owner", "staff").code == 2


def test_import_name_key_lines_and_api_keys_value(cli, backend):
    native = create(cli, "native")
    cli("keys", "revoke", native["id"])
    legacy1, legacy2 = "legacy-key-0123456789abcdef", "legacy-key-fedcba9876543210"
    lines = f"# old keys\nlegacy-one:{legacy1}\nlegacy-two:{legacy2}\n"
    r = cli("keys", "import", "--scope", "tools:read", "-o", "json", stdin=lines)
    assert r.code == 0, r.stderr
    rows = r.json()
    assert [row["name"] for row in rows] == ["legacy-one", "legacy-two"]
    assert all(row["legacy"] and row["scopes"] == ["tools:read"] for row in rows)
    assert verify(cli, legacy1).json()["name"] == "legacy-one"
    assert verify(cli, legacy2).json()["name"] == "legacy-two"
    assert verify(cli, "legacy-key-not-imported-at-all").code == 1

    r = cli("keys", "import", "--name-prefix", "old", "-o", "json",
            stdin="API_KEYS=other-legacy-key-000000000,other-legacy-key-111111111\n")
    assert r.code == 0, r.stderr
    assert [row["name"] for row in r.json()] == ["old-1", "old-2"]
    assert verify(cli, "other-legacy-key-111111111").json()["name"] == "old-2"


def test_import_never_echoes_or_names_a_key_by_a_fragment_of_a_secret(cli, backend):
    for text in ("API_KEYS=Sup3r+Secr3t/Part:rest0123456789abc,other0123456789abc\n",
                 "Sup3rSecr3tPart:rest0123456789abc,other0123456789abc\n"):
        r = cli("keys", "import", "-o", "json", stdin=text)
        assert "Sup3r" not in r.stderr + r.stdout.replace('"imported-', "")
        if r.code == 0:
            assert [row["name"] for row in r.json()] == ["imported-1", "imported-2"]
            cli("keys", "revoke", "--all", "--yes")
        else:
            assert r.code == 2 and "ambiguous" in r.stderr


def test_imported_mcpk_key_keeps_its_id(cli, backend, tmp_path):
    other = f"sqlite:///{tmp_path / 'other.db'}"
    elsewhere = cli("keys", "create", "elsewhere", "-o", "json", "--store", other).json()
    r = cli("keys", "import", "-o", "json", stdin=f"moved:{elsewhere['key']}\n")
    assert r.code == 0, r.stderr
    assert r.json()[0]["id"] == elsewhere["id"] and r.json()[0]["legacy"] is False
    assert verify(cli, elsewhere["key"]).json()["name"] == "moved"
    again = cli("keys", "import", stdin=f"moved-again:{elsewhere['key']}\n")
    assert again.code == 4 and "already exists" in again.stderr


def test_import_is_all_or_nothing(cli, backend):
    create(cli, "taken")
    before = backend.dump()
    r = cli("keys", "import", stdin="fresh:fresh-key-0123456789abc\ntaken:taken-key-0123456789abc\n")
    assert r.code == 4
    assert backend.dump() == before
    weak = cli("keys", "import", stdin="weak:short\n")
    assert weak.code == 2 and "short" in weak.stderr and "short\n" not in weak.stderr.split(":")[-1]
    assert cli("keys", "import", stdin="no colon here but : later\n:nokeyname\n").code == 2
    assert backend.dump() == before


def test_audit_events_record_every_mutation(cli, backend):
    k = create(cli, "audited")
    cli("keys", "rotate", "audited", "--grace", "0")
    cli("keys", "revoke", "audited", "--reason", "done")
    r = cli("audit", "events", "--since", "1h", "-o", "json")
    assert r.code == 0
    events = r.json()
    assert [e["action"] for e in events] == ["create", "rotate", "revoke"]
    assert all(e["actor"] == "tester@ci" and e["ts"].endswith("Z") for e in events)
    assert events[0]["key_id"] == k["id"] and events[2]["detail"] == {"reason": "done"}
    future = cli("audit", "events", "--since", "2099-01-01", "-o", "json")
    assert future.json() == []


def test_version_counter_bumps_on_every_mutation(cli, backend):
    from finops_mcp_admin.config import load_settings

    with load_settings().open_store() as store:
        v0 = store.version()
        create(cli, "counted")
        v1 = store.version()
        cli("keys", "revoke", "counted")
        v2 = store.version()
        cli("keys", "list")
        assert v0 < v1 < v2 == store.version()
