"""`mcpadmin audit failures | cors | alarms | watch` on a generated log of known content:
exact counts for every --by and window boundary, identical through moto's CloudWatch Logs."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finops_mcp_admin.durations import utcnow

IPS = ["203.0.113.7", "198.51.100.4", "192.0.2.99", "10.0.0.12"]
REASONS = ["wrong_secret", "unknown_key", "revoked", "expired", "missing_credentials"]
PATHS = ["/mcp", "/mcp", "/mcp/x"]
MALFORMED = ["not json at all", '{"ts": "2026-11-21T00:00:00.000Z", "event": "auth_fa', "[1, 2, 3]",
             '{"event":"auth_failure" this is broken}']


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_events(base: datetime, n: int = 1200) -> list[dict]:
    events = []
    for i in range(n):
        kind = ["auth_failure", "auth_failure", "cors_rejected", "insufficient_scope", "auth_failure"][i % 5]
        events.append({"ts": iso(base + timedelta(seconds=7 * i)), "event": kind,
                       "reason": REASONS[i % len(REASONS)], "client_ip": IPS[(i * 7) % len(IPS)],
                       "method": "POST", "path": PATHS[i % 3],
                       "key_id": None if i % 4 == 0 else f"K{i % 6:011d}",
                       "origin": "https://evil.example" if kind == "cors_rejected" else None,
                       "user_agent": "t", "correlation_id": f"c{i}"})
    return events


def write_logs(directory: Path, events: list[dict]) -> Path:
    """Four files, oldest first: .3.gz, .2.gz, .1, current; malformed lines sprinkled in."""
    chunks = [events[i::4] for i in range(4)]
    chunks = [sorted(c, key=lambda e: e["ts"]) for c in chunks]
    current = directory / "events.jsonl"
    names = [current.with_name("events.jsonl.3.gz"), current.with_name("events.jsonl.2.gz"),
             current.with_name("events.jsonl.1"), current]
    for i, (path, chunk) in enumerate(zip(names, chunks, strict=True)):
        lines = [json.dumps(e, separators=(",", ":")) for e in chunk]
        lines.insert(len(lines) // 2, MALFORMED[i])
        data = ("\n".join(lines) + "\n").encode()
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return current


def expected(events: list[dict], kind: str, by: str, since: str | None, until: str | None) -> list[dict]:
    """The reference answer, computed the obvious way."""
    field = {"ip": "client_ip", "reason": "reason", "key": "key_id", "path": "path"}[by]
    groups: dict[str, dict] = {}
    for e in events:
        if e["event"] != kind or (since and e["ts"] < since) or (until and e["ts"] >= until):
            continue
        key = "-" if e[field] is None else str(e[field])
        # The group's value is labelled with what it is: {"ip": ...}, {"reason": ...}
        g = groups.setdefault(key, {by: key, "count": 0, "first_seen": e["ts"], "last_seen": e["ts"]})
        g["count"] += 1
        g["first_seen"] = min(g["first_seen"], e["ts"])
        g["last_seen"] = max(g["last_seen"], e["ts"])
    return sorted(groups.values(), key=lambda g: (-g["count"], g[by]))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    base = (utcnow() - timedelta(hours=4)).replace(tzinfo=UTC)
    events = make_events(base)
    directory = tmp_path_factory.mktemp("logs")
    return {"base": base, "events": events, "log": write_logs(directory, events)}


def windows(data) -> list[tuple[str | None, str | None]]:
    base, events = data["base"], data["events"]
    on_event = events[300]["ts"]  # a boundary exactly on an event's timestamp
    return [(iso(base - timedelta(minutes=1)), None), (on_event, None), (on_event, events[700]["ts"]),
            (iso(base + timedelta(seconds=1000)), iso(base + timedelta(seconds=3500)))]


@pytest.mark.parametrize("by", ["ip", "reason", "key", "path"])
def test_local_counts_are_exact_for_every_grouping_and_window(cli, dataset, by):
    for since, until in windows(dataset):
        args = ["audit", "failures", "--log-file", str(dataset["log"]), "--by", by, "-o", "json",
                "--since", since] + (["--until", until] if until else [])
        r = cli(*args)
        assert r.code == 0, r.stderr
        assert r.json() == expected(dataset["events"], "auth_failure", by, since, until), (since, until)
        assert "4 malformed line(s)" in r.stderr


def test_listing_events_and_cors_share_the_same_reader(cli, dataset):
    since = windows(dataset)[0][0]
    listed = cli("audit", "failures", "--log-file", str(dataset["log"]), "--by", "none", "-o", "json",
                 "--since", since)
    want = [e for e in dataset["events"] if e["event"] == "auth_failure"]
    assert len(listed.json()) == len(want)
    assert {e["correlation_id"] for e in listed.json()} == {e["correlation_id"] for e in want}
    cors = cli("audit", "cors", "--log-file", str(dataset["log"]), "--by", "ip", "-o", "json",
               "--since", since)
    assert cors.json() == expected(dataset["events"], "cors_rejected", "ip", since, None)


def test_fail_above_exit_codes(cli, dataset):
    since = windows(dataset)[0][0]
    total = sum(1 for e in dataset["events"] if e["event"] == "auth_failure")
    base = ["audit", "failures", "--log-file", str(dataset["log"]), "--since", since, "-q"]
    assert cli(*base, "--fail-above", str(total)).code == 0
    over = cli(*base, "--fail-above", str(total - 1))
    # -q: identifiers only (the IPs of the default --by ip), the one-line verdict on stderr.
    assert over.code == 1 and over.stderr.count("\n") == 1
    ips = {e["client_ip"] for e in dataset["events"] if e["event"] == "auth_failure" and e["ts"] >= since}
    assert set(over.stdout.split()) == {ip or "-" for ip in ips}


def test_bad_inputs_are_one_line_with_the_documented_code(cli, dataset, tmp_path):
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"event":"auth_failure"}\n' * 100)[:-30])
    cases = [
        (["audit", "failures", "--log-file", str(tmp_path / "missing.jsonl")], 3),
        (["audit", "failures", "--log-file", str(broken)], 2),
        (["audit", "failures", "--log-file", str(tmp_path)], 2),
        (["audit", "failures", "--log-file", str(dataset["log"]), "--since", "yesterday"], 2),
        (["audit", "failures", "--log-file", str(dataset["log"]), "--since", "1h", "--until", "2h"], 2),
        (["audit", "failures"], 5),  # no source configured: a setup problem, not bad usage
    ]
    for args, code in cases:
        r = cli(*args)
        assert r.code == code and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (args, r.stderr)


# --- CloudWatch (moto server mode) ----------------------------------------------------------


@pytest.fixture(scope="module")
def cloudwatch_group(dataset, moto_url):
    import boto3

    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    group = f"/mcp/test-{int(time.time())}"
    logs.create_log_group(logGroupName=group)
    streams = {f"task-{i}": [] for i in range(3)}
    for i, e in enumerate(dataset["events"]):
        streams[f"task-{i % 3}"].append(e)
    for lines in MALFORMED:
        streams["task-0"].append(lines)
    for name, items in streams.items():
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        batch = []
        for item in items:
            if isinstance(item, dict):
                ts = int(datetime.fromisoformat(item["ts"]).timestamp() * 1000)
                batch.append({"timestamp": ts, "message": json.dumps(item, separators=(",", ":"))})
            else:
                batch.append({"timestamp": batch[-1]["timestamp"], "message": item})
        logs.put_log_events(logGroupName=group, logStreamName=name, logEvents=batch)
    return group


@pytest.mark.parametrize("by", ["ip", "reason", "key", "path"])
def test_cloudwatch_gives_identical_results(cli, aws_env, dataset, cloudwatch_group, by):
    for since, until in windows(dataset):
        window = ["--since", since] + (["--until", until] if until else [])
        local = cli("audit", "failures", "--log-file", str(dataset["log"]), "--by", by, "-o", "json", *window)
        remote = cli("audit", "failures", "--source", "cloudwatch", "--log-group", cloudwatch_group,
                     "--page-size", "100", "--by", by, "-o", "json", *window)
        assert remote.code == 0, remote.stderr
        assert remote.json() == local.json(), (since, until)
    pages = int(remote.stderr.split(" page(s)")[0].split()[-1])
    assert pages > 1


def test_cloudwatch_errors(cli, aws_env):
    from tests.redis_server import free_port

    missing = cli("audit", "failures", "--source", "cloudwatch", "--log-group", "/no/such/group")
    assert missing.code == 3 and missing.stderr.count("\n") == 1
    start = time.monotonic()
    down = cli("audit", "failures", "--source", "cloudwatch", "--log-group", "/x",
               "--endpoint-url", f"http://127.0.0.1:{free_port()}")
    assert down.code == 5 and down.stderr.count("\n") == 1 and time.monotonic() - start < 15


def test_alarms_report_states_and_unsubscribed_topics(cli, aws_env):
    import boto3

    kw = {"endpoint_url": aws_env["AWS_ENDPOINT_URL"], "region_name": "us-east-1"}
    cw, sns, sqs = boto3.client("cloudwatch", **kw), boto3.client("sns", **kw), boto3.client("sqs", **kw)
    stack = f"alarmstack{int(time.time())}"
    watched = sns.create_topic(Name=f"{stack}-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{stack}-q")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    sns.subscribe(TopicArn=watched, Protocol="sqs", Endpoint=queue_arn)
    lonely = sns.create_topic(Name=f"{stack}-nobody")["TopicArn"]
    for name, topic in ((f"{stack}-AuthFailureAlarm", watched), (f"{stack}-CorsAlarm", lonely)):
        cw.put_metric_alarm(AlarmName=name, Namespace="FinOpsMCP", MetricName="AuthFailures", Statistic="Sum",
                            Period=300, EvaluationPeriods=1, Threshold=10,
                            ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
    cw.set_alarm_state(AlarmName=f"{stack}-AuthFailureAlarm", StateValue="ALARM",
                       StateReason="test: 42 failures")
    cw.set_alarm_state(AlarmName=f"{stack}-CorsAlarm", StateValue="OK", StateReason="test: quiet")
    r = cli("audit", "alarms", "--stack", stack, "-o", "json")
    assert r.code == 0, r.stderr
    rows = {row["alarm"]: row for row in r.json()}
    assert rows[f"{stack}-AuthFailureAlarm"]["state"] == "ALARM"
    assert rows[f"{stack}-AuthFailureAlarm"]["subscriptions"] == "1 confirmed / 1"
    assert rows[f"{stack}-CorsAlarm"]["state"] == "OK"
    assert "no confirmed subscription" in r.stderr and f"{stack}-CorsAlarm" in r.stderr
    quiet = cli("audit", "alarms", "--stack", stack, "-q")  # identifiers only; warnings stay on stderr
    assert sorted(quiet.stdout.split()) == sorted(rows) and "no confirmed subscription" in quiet.stderr
    assert cli("audit", "alarms", "--stack", "nothing-here").code == 1


def test_watch_prints_new_failures_with_running_counts_and_exits_130(tmp_path):
    log = tmp_path / "live.jsonl"
    log.write_text("")
    proc = subprocess.Popen([sys.executable, "-m", "finops_mcp_admin", "audit", "watch",
                             "--log-file", str(log), "--poll", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    now = utcnow()
    with log.open("a") as fh:
        for _ in range(3):
            fh.write(json.dumps({"ts": iso(now), "event": "auth_failure", "reason": "wrong_secret",
                                 "client_ip": "203.0.113.9", "path": "/mcp", "key_id": None}) + "\n")
        fh.write(json.dumps({"ts": iso(now), "event": "cors_rejected", "client_ip": "1.1.1.1"}) + "\n")
        fh.flush()
    lines = [proc.stdout.readline() for _ in range(3)]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    assert [line.count("(#") for line in lines] == [1, 1, 1]
    assert "(#3)" in lines[2] and "203.0.113.9" in lines[2]
    assert "Traceback" not in proc.stderr.read()  # a clean exit: no traceback, code 130


def test_watch_follows_cloudwatch_too(aws_env, cloudwatch_group):
    import boto3

    logs = boto3.client("logs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    logs.create_log_stream(logGroupName=cloudwatch_group, logStreamName="live")
    proc = subprocess.Popen([sys.executable, "-m", "finops_mcp_admin", "audit", "watch",
                             "--source", "cloudwatch", "--log-group", cloudwatch_group,
                             "--since", "1m", "--poll", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)
    now = utcnow()
    event = {"ts": iso(now), "event": "auth_failure", "reason": "revoked", "client_ip": "198.18.0.1",
             "path": "/mcp", "key_id": "LIVEKEY00001", "correlation_id": "live-1"}
    logs.put_log_events(logGroupName=cloudwatch_group, logStreamName="live",
                        logEvents=[{"timestamp": int(now.timestamp() * 1000), "message": json.dumps(event)}])
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    assert "198.18.0.1" in line and "(#1)" in line and "LIVEKEY00001" in line


class _ThrottlingLogs:
    """CloudWatch Logs cannot be made to throttle on demand (moto never does), so this stand-in
    answers like boto3 does: ThrottlingException twice, then two pages."""

    def __init__(self):
        self.calls = 0

    def filter_log_events(self, **kwargs):
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.calls <= 2:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                              "FilterLogEvents")
        message = json.dumps({"ts": "2026-11-22T01:00:00.000Z", "event": "auth_failure",
                              "client_ip": "1.2.3.4"})
        if "nextToken" not in kwargs:
            return {"events": [{"message": message}], "nextToken": "page-2"}
        return {"events": [{"message": message}, {"message": "garbage"}]}


def test_cloudwatch_throttling_is_retried_with_back_off():
    from finops_mcp_admin.aws.logs import read_cloudwatch
    from finops_mcp_admin.security_events.records import ReadStats, Window

    logs, sleeps, stats = _ThrottlingLogs(), [], ReadStats()
    events = list(read_cloudwatch(logs, "/g", {"auth_failure"}, Window(), stats, sleep=sleeps.append))
    assert len(events) == 2 and stats.pages == 2 and stats.malformed == 1
    assert sleeps == [0.2, 0.4]  # exponential back-off


def test_audit_access_reads_cloudwatch_like_local_files(cli, aws_env, tmp_path):
    """The access trail from CloudWatch Logs (real access lines, as the server's writer thread
    writes them) groups exactly as the same lines in a local file."""
    import boto3

    from finops_mcp_admin.security_events.writer import SecurityEventLog
    from finops_mcp_admin.server._asgi import Request
    from finops_mcp_admin.server.access import AccessLog, AccessMode
    from finops_mcp_admin.server.auth import Principal
    from finops_mcp_admin.server.scopes import ScopePolicy

    log_path = tmp_path / "events.jsonl"
    access = AccessLog(SecurityEventLog(to_stdout=False, path=str(log_path)), AccessMode.all,
                       ScopePolicy({"update_tagging_policy": "tools:write"}))
    for ip, key_id, tool in (("198.18.0.1", "KEYAAAAAAAA1", "whoami"),
                             ("198.18.0.1", "KEYAAAAAAAA1", "whoami"),
                             ("198.18.0.2", "KEYBBBBBBBB2", "update_tagging_policy")):
        req = Request({"type": "http", "method": "POST", "path": "/mcp", "headers": [], "client": (ip, 1)})
        call = access.begin(req, Principal(key_id, "k", ("tools:read",)), [
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}}], 60)
        call.status = 200
        call.finish()
    access.close()
    lines = log_path.read_text().splitlines()
    assert len(lines) == 3
    logs = boto3.client("logs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    group = f"/mcp/access-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="task")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="task",
                        logEvents=[{"timestamp": now, "message": line} for line in lines])
    for by in ("key", "tool", "ip"):
        local = cli("audit", "access", "--log-file", str(log_path), "--by", by, "-o", "json")
        remote = cli("audit", "access", "--source", "cloudwatch", "--log-group", group, "--by", by,
                     "-o", "json")
        assert remote.code == 0 and local.code == 0, remote.stderr + local.stderr
        assert remote.json() == local.json()
    assert {g["ip"]: g["count"] for g in remote.json()} == {"198.18.0.1": 2, "198.18.0.2": 1}
    tools = cli("audit", "access", "--source", "cloudwatch", "--log-group", group, "--by", "tool",
                "-o", "json")
    assert {g["tool"]: g["count"] for g in tools.json()} == {"whoami": 2, "update_tagging_policy": 1}
