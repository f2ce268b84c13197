"""One output contract for every command (issue 12, point 6): ISO 8601 Z times, `[]` for an
empty JSON listing, true/false in CSV, scopes joined alike, group columns labelled with what
they group by, and `-q` printing identifiers only."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


@pytest.fixture
def keyed(cli, tmp_path):
    """A store with one scoped key; its id."""
    env = {"MCPADMIN_STORE": f"sqlite:///{tmp_path / 'store' / 'keys.db'}"}
    r = cli("keys", "create", "contract", "--scope", "tools:read", "--scope", "tools:write",
            "--expires", "90d", "-o", "json", env=env)
    assert r.code == 0, r.stderr
    return env, r.json()


def test_empty_json_listings_are_an_empty_array(cli, keyed, tmp_path):
    env, _ = keyed
    log = tmp_path / "events.jsonl"
    log.write_text("")
    for args in (["keys", "list", "--status", "revoked"], ["cors", "list"],
                 ["audit", "failures", "--log-file", str(log)],
                 ["audit", "cors", "--log-file", str(log), "--by", "none"]):
        r = cli(*args, "-o", "json", env=env)
        assert r.code == 0 and r.stdout == "[]\n", (args, r.stdout, r.stderr)
        r = cli(*args, "-o", "csv", env=env)
        assert r.code == 0 and r.stdout.count("\n") == 1, (args, r.stdout)  # the header row only


def test_times_are_iso_8601_utc_with_z(cli, keyed):
    env, created = keyed
    assert ISO_Z.match(created["created_at"]) and ISO_Z.match(created["expires_at"])
    (listed,) = cli("keys", "list", "-o", "json", env=env).json()
    assert ISO_Z.match(listed["created_at"])
    (event,) = cli("audit", "events", "-o", "json", env=env).json()
    assert ISO_Z.match(event["ts"])


def test_stack_status_time_is_iso_8601_z(cli, aws_env):
    import boto3

    cf = boto3.client("cloudformation", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    stack = f"contract-{int(time.time() * 1000)}"
    cf.create_stack(StackName=stack, TemplateBody=json.dumps(
        {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}))
    r = cli("stack", "status", stack, "-o", "json")
    assert r.code == 0, r.stderr
    assert ISO_Z.match(r.json()["updated"]), r.stdout  # was "2026-11-22 11:53:05.055753+00:00"
    table = cli("stack", "status", stack)
    assert re.search(r"updated\s+\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", table.stdout), table.stdout
    empty = cli("stack", "outputs", stack, "-o", "json")
    assert empty.code == 0 and empty.stdout == "[]\n", (empty.stdout, empty.stderr)


def test_csv_booleans_are_true_and_false(cli, keyed):
    env, created = keyed
    r = cli("keys", "verify", "-o", "csv", stdin=created["key"] + "\n", env=env)
    assert r.code == 0 and next(csv.DictReader(io.StringIO(r.stdout)))["valid"] == "true"


def test_scopes_are_joined_the_same_way_in_table_and_csv(cli, keyed):
    env, _ = keyed
    assert cli("keys", "list", "-o", "json", env=env).json()[0]["scopes"] == ["tools:read", "tools:write"]
    row = next(csv.DictReader(io.StringIO(cli("keys", "list", "-o", "csv", env=env).stdout)))
    assert row["scopes"] == "tools:read tools:write"
    shown = cli("keys", "show", "contract", env=env).stdout
    assert re.search(r"^scopes\s+tools:read tools:write$", shown, re.M), shown


@pytest.fixture
def failures_log(tmp_path):
    log = tmp_path / "events.jsonl"
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    lines = [{"ts": now, "event": "auth_failure", "reason": reason, "client_ip": ip, "key_id": kid,
              "path": "/mcp", "method": "POST"}
             for ip, reason, kid in (("203.0.113.7", "wrong_secret", "AAAAAAAAAAAA"),
                                     ("203.0.113.7", "unknown_key", None),
                                     ("198.51.100.2", "revoked", "BBBBBBBBBBBB"))]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return log


@pytest.mark.parametrize("by,values", [("ip", {"203.0.113.7", "198.51.100.2"}),
                                       ("reason", {"wrong_secret", "unknown_key", "revoked"}),
                                       ("key", {"AAAAAAAAAAAA", "BBBBBBBBBBBB", "-"}),
                                       ("path", {"/mcp"})])
def test_group_columns_are_labelled_with_what_they_group_by(cli, failures_log, by, values):
    base = ["audit", "failures", "--log-file", str(failures_log), "--since", "1h", "--by", by]
    rows = cli(*base, "-o", "json").json()
    assert {row[by] for row in rows} == values and all("key" not in row or by == "key" for row in rows)
    assert cli(*base).stdout.split()[0] == by.upper()
    assert set(cli(*base, "-o", "csv").stdout.splitlines()[0].split(",")) == {by, "count", "first_seen",
                                                                             "last_seen"}
    quiet = cli(*base, "-q")
    assert set(quiet.stdout.split("\n")[:-1]) == values and quiet.stderr == ""


def test_quiet_prints_identifiers_only_on_every_listing(cli, keyed, failures_log):
    env, created = keyed
    assert cli("cors", "add", "https://a.example.com", env=env).code == 0
    cases = {
        ("keys", "list"): [created["id"]],
        ("cors", "list"): ["https://a.example.com"],
        ("audit", "events"): [created["id"]],
        ("audit", "failures", "--log-file", str(failures_log), "--by", "none"):
            ["203.0.113.7", "203.0.113.7", "198.51.100.2"],
    }
    for args, want in cases.items():
        r = cli(*args, "-q", env=env)
        assert r.code == 0 and r.stdout.splitlines() == want and r.stderr == "", (args, r.stdout, r.stderr)
