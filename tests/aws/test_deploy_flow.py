"""`stack deploy | execute | delete` flows against moto's server mode over HTTP: a real update,
previous parameter values kept, a failing execute, change sets cleaned up after a refusal,
reviewed change sets executed, deletion with confirmation, a ROLLBACK_COMPLETE stack re-created.

What moto cannot do is said where it matters: it ignores ClientRequestToken and writes no
per-resource events (those are pinned with botocore's Stubber in test_stack_events.py), and it
never rolls back (a resource it rejects fails ExecuteChangeSet itself; the ROLLBACK_COMPLETE
state is set in an in-process moto server's backend, see `inproc_moto`)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator

import boto3
import pytest

from finops_mcp_admin.aws.cloudformation import shipped_template
from tests.aws.test_deploy import moto_variant, params, unique
from tests.aws.test_deploy_prechecks import without

ACCOUNT, REGION = "123456789012", "us-east-1"
TOPIC = json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})


def cfn(aws_env):
    return boto3.client("cloudformation", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)


def own_change_sets(cf, stack: str) -> list[dict]:
    # moto lists every stack's change sets whatever StackName says: keep this stack's own.
    return [c for c in cf.list_change_sets(StackName=stack)["Summaries"] if c["StackName"] == stack]


def desired_count(aws_env, cf, stack: str) -> int:
    resources = cf.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    by_type = {r["ResourceType"]: r["PhysicalResourceId"] for r in resources}
    ecs = boto3.client("ecs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)
    (service,) = ecs.describe_services(cluster=by_type["AWS::ECS::Cluster"],
                                       services=[by_type["AWS::ECS::Service"]])["services"]
    return int(service["desiredCount"])


def stack_params(cf, stack: str) -> dict[str, str]:
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def every_parameter_file(tmp_path, cert: str, **values: str) -> str:
    """The aws CLI's parameters file naming every parameter of the template. moto 5.2 treats a
    parameter given on update but not at creation as changed, and then "updates" resources that
    use it, even ones a condition left out (500 on the Route 53 record): AWS does not."""
    from finops_mcp_admin.aws.stack_params import declared, template_document

    given = dict(v.split("=", 1) for v in params(cert)[1::2]) | values
    template_params = declared(template_document(shipped_template()))
    every = {name: given.get(name, p.default) for name, p in template_params.items()}
    path = tmp_path / "params.json"
    path.write_text(json.dumps([{"ParameterKey": k, "ParameterValue": v} for k, v in every.items()]))
    return str(path)


def test_an_update_changes_the_resource_and_keeps_the_parameters_not_given(
        cli, aws_env, certificate_arn, tmp_path):
    cf, template, stack = cfn(aws_env), moto_variant(tmp_path), unique("mcp-update")
    every = every_parameter_file(tmp_path, certificate_arn, AlertEmail="secops@example.com",
                                 CreateEcrRepository="false")
    first = cli("stack", "deploy", stack, "--template", template, "--yes", "--parameters-file", every,
                timeout=180)
    assert first.code == 0, first.stderr
    assert desired_count(aws_env, cf, stack) == 2  # the template default

    # Only the parameter that changes: every other one keeps its value, AlertEmail included.
    # (moto 5.2 cannot keep a CommaDelimitedList's previous value: it splits the list again.)
    r = cli("stack", "deploy", stack, "--template", template, "--yes", "--param", "DesiredCount=1",
            "--param", "TaskRoleManagedPolicyArns=", timeout=180)
    assert r.code == 0, r.stderr
    assert desired_count(aws_env, cf, stack) == 1  # the service really changed
    kept = stack_params(cf, stack)
    assert kept["AlertEmail"] == "secops@example.com" and kept["DomainName"] == "mcp.example.com"
    assert kept["DesiredCount"] == "1"
    assert "AlertEmail is empty" not in r.stderr  # judged by its previous value
    # Progress shows this operation's events only (moto writes the stack's own rows).
    assert "UPDATE_COMPLETE" in r.stderr and "CREATE_COMPLETE" not in r.stderr
    assert re.search(r"^\s+\d+s  " + re.escape(stack) + r" .*UPDATE_COMPLETE", r.stderr, re.M), r.stderr


def test_a_failing_execute_exits_1_with_the_reason_and_one_error_line(
        cli, aws_env, certificate_arn, tmp_path):
    # A Route 53 alias in a hosted zone that does not exist: every check before the change set
    # passes, moto rejects the record set when the change set runs. moto fails ExecuteChangeSet
    # itself and never rolls back: the rollback path is pinned in test_stack_events.py.
    stack = unique("mcp-fails")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--yes", *params(certificate_arn),
            "--param", "HostedZoneId=Z0000000000000NOSUCH", timeout=180)
    assert r.code == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("mcpadmin: error: ")]
    assert len(errors) == 1 and "NoSuchHostedZone" in errors[0], r.stderr
    assert "Traceback" not in r.stderr


def test_a_refused_update_deletes_its_change_set_and_changes_nothing(
        cli, aws_env, certificate_arn, tmp_path):
    cf, template, stack = cfn(aws_env), moto_variant(tmp_path), unique("mcp-refused")
    assert cli("stack", "deploy", stack, "--template", template, "--yes", "--parameters-file",
               every_parameter_file(tmp_path, certificate_arn, CreateEcrRepository="false"),
               timeout=180).code == 0
    r = cli("stack", "deploy", stack, "--template", template, "--param", "DesiredCount=3",
            "--param", "TaskRoleManagedPolicyArns=", timeout=180)
    assert r.code == 2 and "--yes" in r.stderr
    assert [c for c in own_change_sets(cf, stack) if c["ExecutionStatus"] == "AVAILABLE"] == []
    assert stack_params(cf, stack)["DesiredCount"] == "2" and desired_count(aws_env, cf, stack) == 2


def test_execute_runs_the_reviewed_change_set_after_confirmation(cli, aws_env, certificate_arn, tmp_path):
    cf, stack = cfn(aws_env), unique("mcp-review")
    made = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--no-execute",
               *params(certificate_arn), timeout=180)
    assert made.code == 0, made.stderr
    (change_set,) = own_change_sets(cf, stack)
    assert f"--change-set {change_set['ChangeSetName']}" in made.stderr  # tells how to run it

    refused = cli("stack", "execute", stack)
    assert refused.code == 2 and "--yes" in refused.stderr
    assert own_change_sets(cf, stack)[0]["ExecutionStatus"] == "AVAILABLE"  # kept for review

    r = cli("stack", "execute", stack, "--yes", timeout=120)  # the stack's only change set
    assert r.code == 0, r.stderr
    assert "AWS::ECS::Service" in r.stdout and "CREATE_COMPLETE" in r.stderr
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    again = cli("stack", "execute", stack, "--yes")
    assert again.code == 3 and "no change set ready" in again.stderr


def test_execute_names_what_is_missing(cli, aws_env):
    assert cli("stack", "execute", unique("no-such-stack"), "--yes").code == 3
    cf = cfn(aws_env)
    stack = unique("mcp-plain")
    cf.create_stack(StackName=stack, TemplateBody=TOPIC)
    r = cli("stack", "execute", stack, "--change-set", "mcpadmin-000000000000", "--yes")
    assert r.code == 3 and r.stderr.count("\n") == 1, r.stderr


def test_delete_asks_refuses_without_a_terminal_and_deletes_with_yes(cli, aws_env):
    cf, stack = cfn(aws_env), unique("mcp-delete")
    cf.create_stack(StackName=stack, TemplateBody=TOPIC)
    refused = cli("stack", "delete", stack)
    assert refused.code == 2 and "--yes" in refused.stderr
    assert cli("stack", "status", stack).code == 0  # still there
    r = cli("stack", "delete", stack, "--yes", timeout=120)
    assert r.code == 0, r.stderr
    assert "DELETE_COMPLETE" in r.stderr and f"stack {stack} deleted" in r.stderr
    assert cli("stack", "status", stack).code == 3
    assert cli("stack", "delete", stack, "--yes").code == 3


# --- ROLLBACK_COMPLETE: moto never produces it, so the test sets it in an in-process server ----


@pytest.fixture
def inproc_moto(monkeypatch) -> Iterator[str]:
    """moto's server mode in this process (still real HTTP for the CLI subprocess), so a test can
    put a stack into a state moto itself never reaches."""
    from moto.server import ThreadedMotoServer

    from tests.redis_server import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-canary-99",
           "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": url}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield url
    server.stop()


def _failed_creation(url: str, stack: str) -> str:
    """A stack as CloudFormation leaves a failed creation: ROLLBACK_COMPLETE, nothing in it."""
    from moto.cloudformation.models import cloudformation_backends

    cf = boto3.client("cloudformation", endpoint_url=url, region_name=REGION)
    stack_id = cf.create_stack(StackName=stack, TemplateBody=TOPIC)["StackId"]
    cloudformation_backends[ACCOUNT][REGION].stacks[stack_id].status = "ROLLBACK_COMPLETE"
    return str(stack_id)


@pytest.mark.skipif(sys.platform == "win32", reason="moto's threaded server")
def test_a_rollback_complete_stack_is_not_touched_without_yes(cli, inproc_moto, tmp_path):
    acm = boto3.client("acm", endpoint_url=inproc_moto, region_name=REGION)
    cert = acm.request_certificate(DomainName="mcp.example.com")["CertificateArn"]
    stack = unique("mcp-rolled-back")
    old_id = _failed_creation(inproc_moto, stack)
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), *params(cert), timeout=180)
    assert r.code == 2 and r.stderr.count("mcpadmin: error:") == 1, r.stderr
    assert "ROLLBACK_COMPLETE" in r.stderr and "--yes" in r.stderr and f"stack delete {stack}" in r.stderr
    cf = boto3.client("cloudformation", endpoint_url=inproc_moto, region_name=REGION)
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackId"] == old_id and described["StackStatus"] == "ROLLBACK_COMPLETE"


@pytest.mark.skipif(sys.platform == "win32", reason="moto's threaded server")
def test_a_rollback_complete_stack_is_deleted_and_created_again_with_yes(cli, inproc_moto, tmp_path):
    acm = boto3.client("acm", endpoint_url=inproc_moto, region_name=REGION)
    cert = acm.request_certificate(DomainName="mcp.example.com")["CertificateArn"]
    stack = unique("mcp-recreated")
    old_id = _failed_creation(inproc_moto, stack)
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--yes", *params(cert),
            timeout=180)
    assert r.code == 0, r.stderr
    assert "DELETE_COMPLETE" in r.stderr and "CREATE_COMPLETE" in r.stderr
    cf = boto3.client("cloudformation", endpoint_url=inproc_moto, region_name=REGION)
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackId"] != old_id and described["StackStatus"] == "CREATE_COMPLETE"


# --- parameters: checked against the template before any AWS call ---------------------------


@pytest.fixture
def dead_aws(monkeypatch) -> None:
    """An endpoint nobody listens on: any AWS call would end in exit 5, not 2."""
    from tests.redis_server import free_port

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                        "AWS_REGION": REGION, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("bad", "named"), [
    (["--param", "DomianName=mcp.example.com"], "unknown parameter DomianName"),
    (["--param", "DomainName=MCP.Example.com"], "must be a lower-case DNS name"),
    (["--param", "SslPolicy=ELBSecurityPolicy-2016-08"], "must be one of"),
    (["--param", "ImageUri=repo/mcp:latest"], "must be pinned by digest"),
    (["--param", "DesiredCount=50"], "must be at most 20"),
    (["--param", "BootstrapKeyHashes=" + "x" * 5000], "BootstrapKeyHashes"),
    (["--param", "DomainName"], "use Key=Value"),
])
def test_a_bad_parameter_is_exit_2_naming_it_before_any_aws_call(cli, dead_aws, bad, named):
    r = cli("stack", "deploy", "mcp-any", "--yes", *bad)
    assert r.code == 2, r.stderr
    assert r.stderr.count("\n") == 1 and named in r.stderr, r.stderr


def test_the_parameters_file_is_read_and_checked_before_any_aws_call(cli, dead_aws, tmp_path):
    listed = tmp_path / "params.json"
    listed.write_text(json.dumps([{"ParameterKey": "AlertEmail", "ParameterValue": "not-an-address"}]))
    r = cli("stack", "deploy", "mcp-any", "--yes", "--parameters-file", str(listed))
    assert r.code == 2 and "AlertEmail" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    # --param wins over the file: the same file with the value overridden gets past the check
    # (to the unreachable endpoint: exit 5).
    r = cli("stack", "deploy", "mcp-any", "--yes", "--parameters-file", str(listed),
            "--param", "AlertEmail=secops@example.com", "--param", "ImageUri=r@sha256:" + "0" * 64,
            "--param", "DomainName=mcp.example.com", "--param", "AllowedCorsOrigins=https://a.example.com",
            "--param", f"CertificateArn=arn:aws:acm:{REGION}:{ACCOUNT}:certificate/x", timeout=120)
    assert r.code == 5, r.stderr
    assert cli("stack", "deploy", "mcp-any", "--parameters-file", str(tmp_path / "none.json")).code == 2


def test_a_missing_required_parameter_on_a_new_stack_is_exit_2_and_creates_nothing(
        cli, aws_env, certificate_arn, tmp_path):
    stack = unique("mcp-missing")
    given = without(params(certificate_arn), "ImageUri")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--yes", *given, timeout=180)
    assert r.code == 2 and "missing required parameter ImageUri" in r.stderr, r.stderr
    assert cli("stack", "status", stack).code == 3


def test_a_deploy_from_a_yaml_parameters_file_passes_its_values(cli, aws_env, certificate_arn, tmp_path):
    flags = params(certificate_arn)
    values = dict(v.split("=", 1) for v in flags[1::2])
    values["DesiredCount"] = 0  # a YAML number
    path = tmp_path / "prod.yaml"
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))
    stack = unique("mcp-yaml")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--no-execute",
            "--parameters-file", str(path), timeout=180)
    assert r.code == 0, r.stderr
    cf = cfn(aws_env)
    (summary,) = own_change_sets(cf, stack)
    described = cf.describe_change_set(StackName=stack, ChangeSetName=summary["ChangeSetName"])
    given = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    assert given["DesiredCount"] == "0" and given["DomainName"] == "mcp.example.com"


def test_the_deploy_help_example_uses_parameters_the_template_declares(cli):
    from finops_mcp_admin.aws.stack_params import declared, template_document

    r = cli("stack", "deploy", "--help")
    assert r.code == 0
    names = re.findall(r"--param (\w+)=", r.stdout)
    assert names, "the example shows a --param"
    assert set(names) <= set(declared(template_document(shipped_template())))


def test_an_endpoint_answering_an_html_error_page_is_exit_5_in_one_line(cli, aws_env):
    # What moto's Flask answers when it crashes, and what a broken proxy sends: not an AWS response.
    import http.server
    import threading

    class ErrorPage(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = b"<!doctype html><title>500 Internal Server Error</title>"
            self.send_response(500)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ErrorPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = cli("stack", "delete", "mcp-any", "--yes", "--endpoint-url",
                f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert r.code == 5 and r.stderr.count("\n") == 1, r.stderr
    assert "not an AWS response" in r.stderr


def run_on_a_terminal(args: list[str], answer: str, timeout: float = 180) -> tuple[int, str]:
    """mcpadmin with a pseudo-terminal as stdin (so it asks), answering `answer`."""
    import os
    import pty
    import subprocess

    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode() + b"\n")  # waits in the terminal until read
        proc = subprocess.run([sys.executable, "-m", "finops_mcp_admin", *args], stdin=terminal,
                              capture_output=True, text=True, timeout=timeout)
    finally:
        os.close(terminal)
        os.close(controller)
    return proc.returncode, proc.stderr


def test_a_declined_deploy_deletes_its_change_set_and_the_stack_it_made(
        cli, aws_env, certificate_arn, tmp_path):
    cf, stack = cfn(aws_env), unique("mcp-declined")
    code, stderr = run_on_a_terminal(["stack", "deploy", stack, "--template", moto_variant(tmp_path),
                                      *params(certificate_arn)], answer="n")
    assert code == 1 and "Execute" in stderr and "not executed" in stderr, stderr
    assert cli("stack", "status", stack).code == 3  # the empty REVIEW_IN_PROGRESS stack is gone
    assert [c for c in own_change_sets(cf, stack) if c["ExecutionStatus"] == "AVAILABLE"] == []
