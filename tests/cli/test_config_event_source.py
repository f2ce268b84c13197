"""Issue 12.1: `audit failures | cors | watch` find their source in the configuration
(log_file / log_group, MCPADMIN_LOG_FILE / MCPADMIN_LOG_GROUP, a profile), so the README's cron
line works without flags; nothing configured is exit 5 with a hint, never 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest

from finops_mcp_admin.durations import utcnow


def _event(ip: str, minutes_ago: int = 5, kind: str = "auth_failure") -> str:
    ts = (utcnow() - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps({"ts": ts, "event": kind, "reason": "wrong_secret", "client_ip": ip,
                       "path": "/mcp", "key_id": None, "origin": "https://evil.example"})


def write_log(path, ip, n, kind="auth_failure"):
    path.write_text("".join(_event(ip, kind=kind) + "\n" for _ in range(n)))
    return path


def write_config(tmp_path, text):
    path = tmp_path / "config" / "mcpadmin" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def counts(r):
    assert r.code == 0, r.stderr
    return {row.get("ip", row.get("path")): row["count"] for row in r.json()}  # the column is named by --by


@pytest.mark.parametrize("args", [["audit", "failures", "--since", "1h"], ["audit", "cors"],
                                  ["audit", "watch"], ["audit", "failures", "--source", "local"],
                                  ["audit", "failures", "--source", "cloudwatch"]])
def test_no_source_configured_exits_5_with_a_hint(cli, args):
    r = cli(*args)
    assert r.code == 5, (r.code, r.stderr)
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("mcpadmin: error: ")
    assert "MCPADMIN_LOG_FILE" in r.stderr and "log_file" in r.stderr and "--log-file" in r.stderr


def test_log_file_from_environment_config_file_and_profile(cli, tmp_path):
    env_log = write_log(tmp_path / "env.jsonl", "203.0.113.1", 2)
    file_log = write_log(tmp_path / "file.jsonl", "203.0.113.2", 3)
    profile_log = write_log(tmp_path / "profile.jsonl", "203.0.113.3", 4)
    write_config(tmp_path, f'log_file = "{file_log}"\n[profile.edge]\nlog_file = "{profile_log}"\n')
    assert counts(cli("audit", "failures", "--since", "1h", "-o", "json")) == {"203.0.113.2": 3}
    assert counts(cli("--profile", "edge", "audit", "failures", "-o", "json")) == {"203.0.113.3": 4}
    env = {"MCPADMIN_LOG_FILE": str(env_log)}
    assert counts(cli("--profile", "edge", "audit", "failures", "-o", "json", env=env)) == {"203.0.113.1": 2}
    flag = write_log(tmp_path / "flag.jsonl", "203.0.113.4", 1)
    assert counts(cli("audit", "failures", "--log-file", str(flag), "-o", "json", env=env)) == {
        "203.0.113.4": 1}


def test_a_list_of_log_files_in_the_config_file(cli, tmp_path):
    one = write_log(tmp_path / "a.jsonl", "198.51.100.1", 2)
    two = write_log(tmp_path / "b.jsonl", "198.51.100.1", 5)
    write_config(tmp_path, f'log_file = ["{one}", "{two}"]\n')
    assert counts(cli("audit", "failures", "-o", "json")) == {"198.51.100.1": 7}


def test_readme_cron_line_works_from_the_config_file(cli, tmp_path):
    log = write_log(tmp_path / "events.jsonl", "192.0.2.9", 6)
    write_config(tmp_path, f'log_file = "{log}"\n')
    over = cli("audit", "failures", "--since", "10m", "--fail-above", "5", "-q")
    assert over.code == 1 and over.stdout == "192.0.2.9\n", over.stderr  # -q: the IPs only
    assert cli("audit", "failures", "--since", "10m", "--fail-above", "6", "-q").code == 0


def test_audit_cors_reads_the_configured_log(cli, tmp_path):
    log = write_log(tmp_path / "events.jsonl", "192.0.2.10", 3, kind="cors_rejected")
    r = cli("audit", "cors", "--since", "7d", "--by", "path", "-o", "json",
            env={"MCPADMIN_LOG_FILE": str(log)})
    assert counts(r) == {"/mcp": 3}


def test_watch_follows_the_configured_log(tmp_path):
    log = tmp_path / "live.jsonl"
    log.write_text(_event("203.0.113.77", minutes_ago=1) + "\n")
    write_config(tmp_path, f'log_file = "{log}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "finops_mcp_admin", "audit", "watch", "--poll", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    guard = threading.Timer(30, proc.kill)  # a watch that prints nothing must fail the test, not hang it
    guard.start()
    try:
        line = proc.stdout.readline()
    finally:
        guard.cancel()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert "203.0.113.77" in line and "(#1)" in line


@pytest.fixture
def log_group(aws_env):
    import boto3

    logs = boto3.client("logs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    group = f"/mcp/cfg-{time.time_ns()}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="task")
    now = utcnow()
    logs.put_log_events(logGroupName=group, logStreamName="task", logEvents=[
        {"timestamp": int(now.timestamp() * 1000) - 1000 * (2 - i), "message": _event("198.18.0.5", 1)}
        for i in range(2)])
    return group


def test_log_group_configured_picks_cloudwatch(cli, tmp_path, log_group):
    env = {"MCPADMIN_LOG_GROUP": log_group}
    assert counts(cli("audit", "failures", "-o", "json", env=env)) == {"198.18.0.5": 2}
    # Both configured: the stronger place wins (environment over the config file) ...
    local = write_log(tmp_path / "local.jsonl", "10.9.9.9", 1)
    write_config(tmp_path, f'log_file = "{local}"\n')
    assert counts(cli("audit", "failures", "-o", "json", env=env)) == {"198.18.0.5": 2}
    # ... a flag over both, and --source picks between them explicitly.
    flagged = cli("audit", "failures", "--log-file", str(local), "-o", "json", env=env)
    assert counts(flagged) == {"10.9.9.9": 1}
    assert counts(cli("audit", "failures", "--source", "local", "-o", "json", env=env)) == {"10.9.9.9": 1}
    write_config(tmp_path, f'log_file = "{local}"\nlog_group = "{log_group}"\n')
    assert counts(cli("audit", "failures", "-o", "json")) == {"10.9.9.9": 1}  # a tie: the local file
