"""Every command line of the README's ```sh blocks runs, in README order, in one bash session
(variables carry over, as they do for a reader), with a temporary HOME/XDG dirs and store, a
real TLS Redis, moto's server mode for AWS and a real `mcpadmin serve`.

A line that cannot run here is listed in SKIPS with the reason; a line that needs a local
stand-in (a host name, a path, the moto variant of the template) is listed in REWRITES with the
command run instead and the reason. Every entry must still match a README line, and every README
line must run or be listed: a new or changed line fails this test until it is one or the other.
Maintaining it: run `pytest -q tests/test_readme_examples.py`; the failure names the README line,
its exit code and its stderr."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.aws.test_deploy import moto_variant

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DIGEST = "sha256:" + "ab" * 32

# README command -> why it does not run here.
SKIPS: dict[str, str] = {
    "pip install -e '.[test]' && pytest": "runs this very suite (CI runs it verbatim: tests/test_docs.py)",
    "mcpadmin stack status mcp-prod ; mcpadmin stack outputs mcp-prod -o json ; mcpadmin stack "
    "tunnel mcp-prod":
        "tunnel needs the session-manager-plugin and a running ECS task; status and outputs of mcp-prod "
        "run after step 3 (FOLLOW_UPS)",
    "REPO=$(mcpadmin stack outputs mcp-prod -o json | jq -r '.[] | "
    "select(.key==\"ImageRepositoryUri\").value')":
        "moto gives no Outputs to stacks made by change sets: REPO is set in PRELUDE",
    "printf 'Authorization: Bearer %s\\n' \"$(cat bootstrap.key)\" > bootstrap.hdr":
        "step 5 talks to the deployed ALB at https://mcp.example.com (real DNS and ALB)",
    "rm bootstrap.hdr": "step 5 (real ALB)",
    "mcpadmin stack tunnel mcp-prod --local-port 16379      # without --local-port: a free port":
        "needs the session-manager-plugin and an ECS task with ECS Exec (real AWS)",
    "export MCPADMIN_STORE=rediss://127.0.0.1:16379/0": "step 6's second shell: the tunnel (real AWS)",
    "export MCPADMIN_REDIS_SERVER_NAME=master.mcp-prod-xxxx.xxxxxx.use1.cache.amazonaws.com   # "
    "CacheEndpointAddress":
        "step 6's second shell: the tunnel (real AWS)",
    "export MCPADMIN_REDIS_PASSWORD_SECRET_ARN=arn:aws:secretsmanager:us-east-1:...           # "
    "RedisAuthSecretArn":
        "step 6's second shell: the tunnel (real AWS)",
    "mcpadmin keys list": "step 6's second shell: the tunnel (real AWS); the Keys section's line runs",
    "mcpadmin stack deploy mcp-prod --param DomainName=mcp.example.com --param ImageUri=REPO@sha256:...  "
    "# full list: step 3": "placeholder values (REPO@sha256:...): the full deploy runs in step 3",
    "curl -sS -o /dev/null -w '%{http_code}\\n' -H @bootstrap.hdr \\\n     -H 'Content-Type: "
    "application/json' "
    "-H 'Accept: application/json, text/event-stream' \\\n     -d '{\"jsonrpc\":\"2.0\",\"id\":1,"
    "\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
    "\"clientInfo\":{\"name\":\"check\",\"version\":\"0\"}}}' \\\n     https://mcp.example.com/mcp"
    "          # 200; without the header: 401; over http://: 403": "step 5 (real ALB)",
    "mcpadmin audit watch --log-file /var/log/mcp/events.jsonl                         # live, "
    "Ctrl-C to stop":
        "runs until Ctrl-C",
    "mcpadmin serve --tls-cert cert.pem --tls-key key.pem \\\n    --stdio --stdio-env 'AWS_*' "
    "--stdio-cwd /srv/finops -- python -m mcp_server":
        "the FinOps server (python -m mcp_server) is not installed here; tests/server/stdio runs the "
        "gateway around mcp-server-time and an in-repo stdio server",
    "mcpadmin serve --stdio --print-scope-map -- python -m mcp_server   # what each tool will need":
        "as above: tests/server/stdio/test_gateway.py::test_print_scope_map runs it on a real server",
}
# README command -> (command run instead, why).
REWRITES: dict[str, tuple[str, str]] = {
    "pip install . && mcpadmin keys create my-first-client --scope tools:read --expires 90d":
        ("mcpadmin keys create my-first-client --scope tools:read --expires 90d",
         "the suite runs from an installed checkout"),
    "export MCPADMIN_STORE=rediss://mcpadmin@cache.internal:6379/0":
        ('export MCPADMIN_STORE="rediss://admin@$REDIS_TLS_HOST:$REDIS_TLS_PORT/0"',
         "the suite's TLS Redis instead of cache.internal"),
    "export MCPADMIN_REDIS_PASSWORD=...          # never put it in argv: ps would show it":
        ('export MCPADMIN_REDIS_PASSWORD="$REDIS_ADMIN_PASSWORD"', "the suite's Redis ACL user"),
    "export MCPADMIN_REDIS_CA=/etc/ssl/private-ca.pem":
        ('export MCPADMIN_REDIS_CA="$PWD/redis-ca.pem"', "the suite's private CA"),
    "mcpadmin serve --store rediss://mcpadmin@cache.internal:6379/0 \\\n    --tls-cert /etc/mcp/cert.pem "
    "--tls-key /etc/mcp/key.pem --redirect-port 8080 --production": (
        'mcpadmin serve --store "$MCPADMIN_STORE" --tls-cert "$PWD/server-cert.pem" '
        '--tls-key "$PWD/server-key.pem" --redirect-port "$REDIRECT_PORT" --port "$SERVE_PORT" --production '
        "--cors-origin https://finops.example.com > serve.log 2>&1 &\n"
        "SERVE_PID=$!; up=1\n"
        'for i in $(seq 150); do "$PYTHON" -c "$HEALTH" 2>/dev/null && up=0 && break; sleep 0.2; done\n'
        'kill "$SERVE_PID"; wait "$SERVE_PID"; [ "$up" -eq 0 ] || { cat serve.log >&2; false; }',
        "runs until stopped: started in the background on free ports with the suite's Redis and a trustme "
        "certificate, checked on /health, stopped; --production needs a CORS allowlist (the README's store "
        "has one by then)"),
    "cp completions/mcpadmin.bash /etc/bash_completion.d/mcpadmin      # or: mcpadmin completion bash":
        ('mkdir -p "$HOME/bash_completion.d" && '
         'cp completions/mcpadmin.bash "$HOME/bash_completion.d/mcpadmin"',
         "not the system's directory"),
}
# Substitutions in every command: (README text, text run instead); the reason is the comment.
SUBSTITUTIONS = [
    ("/var/log/mcp/events.jsonl", "$PWD/events.jsonl"),  # a log file the test writes
    ("/etc/mcp/cert.pem", "$PWD/server-cert.pem"), ("/etc/mcp/key.pem", "$PWD/server-key.pem"),  # trustme
]
# Commands not in the README, run before the first line: what a reader already has.
PRELUDE = [
    f"REPO=123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp DIGEST={DIGEST}",  # step 3's build and push
    "mkdir -p ~/.zsh/completions ~/.config/fish/completions",  # a shell's own directories
]
# Commands run after a README line, checking what it claims.
FOLLOW_UPS: dict[str, list[str]] = {
    'mcpadmin stack deploy mcp-prod "${PARAMS[@]}" --param DesiredCount=0 \\\n    '
    "--param ImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/placeholder@sha256:$(printf "
    "'0%.0s' {1..64})": [
        "mcpadmin stack status mcp-prod -o json | grep -q CREATE_COMPLETE",
        "mcpadmin stack outputs mcp-prod -o json",
    ],
}


@dataclass(frozen=True)
class Command:
    line: int  # README line number where it starts
    text: str  # continuation lines joined


def readme_commands(text: str) -> list[Command]:
    """The command lines of every ```sh block: `\\`-continued lines and open `( ... )` joined,
    comment-only lines dropped."""
    commands: list[Command] = []
    in_block, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() == "```sh":
            in_block = True
            continue
        if in_block and line.strip() == "```":
            in_block = False
            continue
        if not in_block or (not pending and (not line.strip() or line.lstrip().startswith("#"))):
            continue
        if not pending:
            start = number
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\") or _open_parens(pending) > 0:
            continue
        commands.append(Command(start, pending))
        pending = ""
    return commands


def _open_parens(text: str) -> int:
    code = re.sub(r"'[^']*'|\"[^\"]*\"|#[^\n]*", "", text)
    return code.count("(") - code.count(")")


def _script(commands: list[Command], status: Path, errors: Path) -> str:
    """One bash script running every command in order; the first failure is written to `status`
    (README line and exit code), each command's stderr to errors/<line>."""
    out = ["set -u", *PRELUDE]
    for cmd in commands:
        text = _runnable(cmd)
        if text is None:
            continue
        out.append(f"{{\n{text}\n}} 2>{errors}/{cmd.line}; rc=$?")
        out.append(f'if [ "$rc" -ne 0 ]; then echo "{cmd.line} $rc" > {status}; exit 0; fi')
        for check in FOLLOW_UPS.get(cmd.text, []):
            out.append(f'{{\n{check}\n}} 2>{errors}/{cmd.line}; rc=$?')
            out.append(f'if [ "$rc" -ne 0 ]; then echo "{cmd.line} $rc" > {status}; exit 0; fi')
    out.append(f"echo ok > {status}")
    return "\n".join(out) + "\n"


def _runnable(cmd: Command) -> str | None:
    if SKIPS.get(cmd.text):
        return None
    text = REWRITES[cmd.text][0] if cmd.text in REWRITES else cmd.text
    for old, new in SUBSTITUTIONS:
        text = text.replace(old, new)
    if text.startswith("mcpadmin stack deploy "):
        # The moto variant of the shipped template (moto cannot resolve Fn::GetAtt on ElastiCache);
        # --yes (the reader answers the prompt; this test has no terminal); every default given
        # explicitly (moto 5.2 takes a parameter kept by UsePreviousValue for a change when it
        # was not given at creation, and cannot keep a CommaDelimitedList: --param still wins).
        text = text.replace("mcpadmin stack deploy mcp-prod", 'mcpadmin stack deploy mcp-prod --yes '
                            '--template "$MOTO_TEMPLATE" --parameters-file "$MOTO_DEFAULTS"', 1)
    return text


# --- the run -----------------------------------------------------------------------------------


@pytest.fixture
def reader(tmp_path, aws_env, redis_server, monkeypatch) -> dict[str, str]:
    """What a README reader has: `mcpadmin` on PATH, a working directory, a key file, a log
    file, a TLS Redis with its CA, a server certificate, AWS (moto) with the log group."""
    import boto3
    import trustme

    from finops_mcp_admin.aws.cloudformation import shipped_template
    from finops_mcp_admin.aws.stack_params import declared, template_document
    from tests.redis_server import ADMIN_PASSWORD, free_port, server_binary, start_tls_redis

    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    wrapper = bin_dir / "mcpadmin"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m finops_mcp_admin "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    (work / "completions").symlink_to(ROOT / "completions")
    (work / "key.txt").write_text("legacy-key-for-the-readme-0001\n")
    (work / "events.jsonl").write_text(
        '{"ts":"2099-01-01T00:00:00.000Z","event":"auth_failure","reason":"unknown_key",'
        '"client_ip":"203.0.113.7","method":"POST","path":"/mcp"}\n')
    ca = trustme.CA()
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    port, handle = start_tls_redis(server_binary(), tls_dir, redis_server, ca, hostname="localhost")
    ca.cert_pem.write_to_path(str(work / "redis-ca.pem"))
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(work / "server-cert.pem"))
    cert.private_key_pem.write_to_path(str(work / "server-key.pem"))
    logs = boto3.client("logs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    if not logs.describe_log_groups(logGroupNamePrefix="/mcp/prod")["logGroups"]:
        logs.create_log_group(logGroupName="/mcp/prod")
    # moto's CloudFormation ignores AWS::CloudWatch::Alarm: the stack's auth-failure alarm, made by hand.
    cw = boto3.client("cloudwatch", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    topic = boto3.client("sns", endpoint_url=aws_env["AWS_ENDPOINT_URL"],
                         region_name="us-east-1").create_topic(Name="mcp-prod-alerts")["TopicArn"]
    cw.put_metric_alarm(AlarmName="mcp-prod-AuthFailureAlarm", Namespace="FinOpsMcp/mcp-prod",
                        MetricName="AuthFailures", Statistic="Sum", Period=300, EvaluationPeriods=1,
                        Threshold=10, ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
    template_params = declared(template_document(shipped_template())).items()
    defaults = {n: p.default for n, p in template_params if not p.required}
    (tmp_path / "defaults.json").write_text(json.dumps(defaults | {"CreateEcrRepository": "false"}))
    health = ("import os, ssl, urllib.request; "
              "url = 'https://localhost:' + os.environ['SERVE_PORT'] + '/health'; "
              "ctx = ssl.create_default_context(cafile='redis-ca.pem'); "
              "urllib.request.urlopen(url, context=ctx, timeout=2)")
    env = {"MOTO_DEFAULTS": str(tmp_path / "defaults.json"), "PYTHON": sys.executable, "HEALTH": health,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "API_KEYS": "legacy-key-one-0123456789,"
           "legacy-key-two-0123456789", "REDIS_TLS_HOST": "localhost", "REDIS_TLS_PORT": str(port),
           "REDIS_ADMIN_PASSWORD": ADMIN_PASSWORD, "MOTO_TEMPLATE": moto_variant(tmp_path),
           "SERVE_PORT": str(free_port()), "REDIRECT_PORT": str(free_port()), "PWD": str(work),
           "MCPADMIN_LOG_FILE": str(work / "events.jsonl"), "MCPADMIN_NAMESPACE": "readme"}
    yield {**os.environ, **env, "WORK": str(work)}
    if hasattr(handle, "stop"):
        handle.stop()


def test_every_readme_command_runs_or_is_listed_with_a_reason(reader, tmp_path):
    commands = readme_commands(README.read_text())
    status, errors = tmp_path / "status", tmp_path / "stderr"
    errors.mkdir()
    script = tmp_path / "readme.sh"
    script.write_text(_script(commands, status, errors))
    subprocess.run(["bash", str(script)], cwd=reader["WORK"], env=reader, timeout=900,
                   stdin=subprocess.DEVNULL, capture_output=True, text=True)
    result = status.read_text().split() if status.exists() else ["(no status: the script died)"]
    if result != ["ok"]:
        line, code = ([*result, "?"])[:2]
        text = next((c.text for c in commands if str(c.line) == line), line)
        stderr = (errors / line).read_text()[-2000:] if (errors / line).exists() else ""
        pytest.fail(f"README.md line {line} exited {code}:\n  {text}\nstderr:\n{stderr}\n"
                    "Make the line runnable, or list it in SKIPS (why it cannot run here) or REWRITES "
                    "(what runs instead, and why) in tests/test_readme_examples.py.")


def test_every_listed_line_is_still_in_the_readme():
    commands = {c.text for c in readme_commands(README.read_text())}
    stale = [text for text in [*SKIPS, *REWRITES, *FOLLOW_UPS] if text not in commands]
    assert not stale, f"listed in tests/test_readme_examples.py but no longer in README.md: {stale}"
    assert all(SKIPS.values()) and all(why for _, why in REWRITES.values()), "every entry says why"


def test_the_extractor_joins_continued_lines_and_open_parentheses():
    text = "x\n```sh\n# a comment\na \\\n  b\nP=(1\n  2)   # (note\n\nc # d\n```\n```json\n{}\n```\n"
    assert [(c.line, c.text) for c in readme_commands(text)] == [
        (4, "a \\\n  b"), (6, "P=(1\n  2)   # (note"), (9, "c # d")]
