"""`keys create --rate/--max-sessions` and `keys update`, through a real subprocess, on both
stores: shown by show and list, audited, bad input is one line, exit 2 and changes nothing."""

from __future__ import annotations


def test_quotas_are_set_at_creation_updated_shown_and_audited(cli, backend):
    r = cli("keys", "create", "quota-cli", "--scope", "tools:read", "--rate", "600/min",
            "--max-sessions", "8", "-q")
    assert r.code == 0, r.stderr
    shown = cli("keys", "show", "quota-cli", "-o", "json").json()
    assert (shown["rate"], shown["max_sessions"]) == ("600/min", 8)
    r = cli("keys", "update", "quota-cli", "--rate", "10/s", "--max-sessions", "none", "-o", "json")
    assert r.code == 0, r.stderr
    assert (r.json()["rate"], r.json()["max_sessions"]) == ("10/s", None)
    table = cli("keys", "list").stdout
    assert "RATE" in table.splitlines()[0] and "10/s" in table
    (listed,) = cli("keys", "list", "-o", "json").json()
    assert (listed["rate"], listed["max_sessions"]) == ("10/s", None)
    updates = [e for e in cli("audit", "events", "-o", "json").json() if e["action"] == "update"]
    assert len(updates) == 1 and updates[0]["detail"]["after"] == {"rate": "10/s", "max_sessions": None}


def test_bad_quota_input_is_one_line_exit_2_and_changes_nothing(cli, backend):
    assert cli("keys", "create", "quota-bad", "-q").code == 0
    before = backend.dump()
    for args in (["--rate", "lots"], ["--rate", "0/s"], ["--max-sessions", "0"],
                 ["--max-sessions", "many"], []):
        r = cli("keys", "update", "quota-bad", *args)
        assert r.code == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, (args, r)
        assert "Traceback" not in r.stderr
    r = cli("keys", "create", "quota-bad2", "--rate", "5/fortnight")
    assert r.code == 2 and "Traceback" not in r.stderr
    assert backend.dump() == before


def test_update_of_an_unknown_or_revoked_key(cli, backend):
    assert cli("keys", "update", "nobody", "--rate", "1/s").code == 3
    assert cli("keys", "create", "quota-revoked", "-q").code == 0
    assert cli("keys", "revoke", "quota-revoked").code == 0
    assert cli("keys", "update", "quota-revoked", "--rate", "1/s").code == 4
