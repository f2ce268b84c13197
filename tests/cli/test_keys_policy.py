"""`mcpadmin keys policy`, `keys list --older-than` and `--allow-cidr` through a real
subprocess, on both stores. Key ages are set by creating keys with a past clock (lifecycle
takes `now`), never by sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.key_policy import RotationPolicy, resolve_policy, violations
from finops_mcp_admin.keys import HashParams, KeyHasher

DAY = timedelta(days=1)


def make_keys(now):
    """fresh (5 d, owner, expiry), old (120 d, owner, no expiry), idle (40 d, no owner, used 35 d
    ago), rotated-away (200 d, rotated 1 h ago: in its grace), revoked-old (300 d, revoked)."""
    hasher = KeyHasher(HashParams(time_cost=1, memory_cost=1024))
    with load_settings().open_store() as store:
        def create(name, age, **kw):
            return lifecycle.create_key(store, hasher, name=name, actor="t", now=now - age,
                                        scopes=["tools:read"], **kw).key
        create("fresh", 5 * DAY, owner="team", expires_at=now + 80 * DAY)
        create("old", 120 * DAY, owner="team")
        idle = create("idle", 40 * DAY, expires_at=now + 50 * DAY)
        store.touch(idle.id, now - 35 * DAY)
        create("rotated-away", 200 * DAY, owner="team")
        lifecycle.rotate_key(store, hasher, "rotated-away", grace=DAY, actor="t",
                             now=now - timedelta(hours=1))
        create("revoked-old", 300 * DAY, owner="team")
        lifecycle.revoke_key(store, "revoked-old", reason=None, now=now - DAY)


@pytest.fixture
def keys(backend):
    make_keys(utcnow())


def test_the_policy_names_each_violating_key_with_its_reasons(keys):
    now = utcnow()
    with load_settings().open_store() as store:
        found = {v.key.name: v.reasons for v in violations(store.list_keys(), RotationPolicy(
            require_expiry=True, require_owner=True, unused_for=30 * DAY), now)}
    assert set(found) == {"old", "idle", "rotated-away"}
    assert found["old"] == ("older than 90d (created 120d ago): rotate it", "never expires",
                            "unused for 120d (never used)")
    assert found["idle"] == ("no owner", "unused for 35d")
    assert found["rotated-away"] == ("never expires",)  # the new key; the old one is in its grace


def test_keys_policy_exits_1_with_violators_and_0_when_none(cli, keys):
    r = cli("keys", "policy", "-o", "json")
    assert r.code == 1, r.stderr
    assert [(v["name"], v["reasons"]) for v in r.json()] == [
        ("old", ["older than 90d (created 120d ago): rotate it"])]
    assert "1 key(s) break the policy" in r.stderr and "Traceback" not in r.stderr
    r = cli("keys", "policy", "--max-age", "200d", "--unused-for", "30d", "--require-owner")
    assert r.code == 1
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "NAME"] and len(lines) == 4
    assert lines[2].split()[1] == "idle" and lines[2].endswith("no owner; unused for 35d")
    assert lines[3].split()[1] == "old" and lines[3].endswith("unused for 120d (never used)")
    r = cli("keys", "policy", "--max-age", "200d")
    assert r.code == 0 and r.stdout == "" and "meets the policy" in r.stderr


def test_keys_policy_reads_its_defaults_from_the_config_file(cli, keys, tmp_path):
    (tmp_path / "config" / "mcpadmin").mkdir(parents=True)
    (tmp_path / "config" / "mcpadmin" / "config.toml").write_text(
        '[key_policy]\nmax_age = "none"\nrequire_owner = true\n')
    r = cli("keys", "policy", "-o", "json")
    assert r.code == 1 and [v["name"] for v in r.json()] == ["idle"]
    r = cli("keys", "policy", "--no-require-owner", "-o", "json")  # a flag wins over the file
    assert r.code == 0 and r.json() == []


def test_keys_list_older_than_filters_by_creation_time(cli, keys):
    r = cli("keys", "list", "--older-than", "90d", "-o", "json")
    assert r.code == 0, r.stderr
    assert sorted(k["name"] for k in r.json()) == ["old", "rotated-away"]  # active ones only
    r = cli("keys", "list", "--older-than", "90d", "--all", "-o", "json")
    assert sorted(k["name"] for k in r.json()) == ["old", "revoked-old", "rotated-away"]


@pytest.mark.parametrize("args", [["--max-age", "ninety days"], ["--unused-for", "-3d"]])
def test_bad_policy_input_is_one_line_exit_2(cli, backend, args):
    r = cli("keys", "policy", *args)
    assert r.code == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r
    assert "Traceback" not in r.stderr


def test_an_unknown_config_setting_is_refused():
    with pytest.raises(Exception, match="unknown setting"):
        resolve_policy({"max_agee": "90d"})


def test_allow_cidr_is_shown_updated_audited_and_bad_input_changes_nothing(cli, backend):
    r = cli("keys", "create", "pinned", "--scope", "tools:read", "--allow-cidr", "10.0.0.0/8",
            "--allow-cidr", "2001:db8::/32", "-q")
    assert r.code == 0, r.stderr
    assert cli("keys", "show", "pinned", "-o", "json").json()["allow_cidr"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert "10.0.0.0/8 2001:db8::/32" in cli("keys", "list").stdout  # lists: space-separated
    before = backend.dump()
    for bad in ("10.0.0.1/8", "not-an-ip", "10.0.0.0/40"):
        r = cli("keys", "update", "pinned", "--allow-cidr", bad)
        assert r.code == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r
        assert "Traceback" not in r.stderr
    r = cli("keys", "create", "pinned2", "--allow-cidr", "300.1.1.1")
    assert r.code == 2 and "Traceback" not in r.stderr
    assert backend.dump() == before
    r = cli("keys", "update", "pinned", "--allow-cidr", "none", "-o", "json")
    assert r.code == 0 and r.json()["allow_cidr"] == []
    created = [e for e in cli("audit", "events", "-o", "json").json() if e["name"] == "pinned"]
    assert created[0]["detail"]["allow_cidr"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert created[-1]["detail"]["after"] == {"allow_cidr": []}
