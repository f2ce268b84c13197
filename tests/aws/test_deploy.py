"""`mcpadmin stack deploy | status | outputs` against moto's server mode over HTTP.

moto 5.2 cannot resolve Fn::GetAtt on ElastiCache (it ignores that resource type), so the
deploy tests use the shipped template with that one value made literal; the ElastiCache
security properties are checked on the template itself (test_rules.py)."""

from __future__ import annotations

import json
import time

from finops_mcp_admin.aws.cloudformation import shipped_template


def moto_variant(tmp_path, mutate=None):
    from cfnlint.decode.cfn_yaml import loads

    tpl = json.loads(json.dumps(loads(shipped_template())))
    for res in tpl["Resources"].values():
        if res["Type"] == "AWS::ECS::TaskDefinition":
            for container in res["Properties"]["ContainerDefinitions"]:
                for env in container.get("Environment", []):
                    if env.get("Name") == "MCPADMIN_STORE":  # (MCP_API_KEY_HASHES is an Fn::If)
                        env["Value"] = "rediss://cache.example.internal:6379/0"
    # moto 5.2 gives an auto-named ECR repository an upper-case name that its own ECR refuses.
    tpl["Parameters"]["CreateEcrRepository"]["Default"] = "false"
    if mutate:
        mutate(tpl)
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(tpl))
    return str(path)


def params(cert: str) -> list[str]:
    # ImageUri digest-pinned, DomainName and S3PrefixListId required since issue 10.
    return ["--param", "ImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp@sha256:" + "0" * 64,
            "--param", f"CertificateArn={cert}",
            "--param", "AllowedCorsOrigins=https://finops.example.com",
            "--param", "DomainName=mcp.example.com",
            "--param", "S3PrefixListId=pl-63a5400a"]


def unique(name: str) -> str:
    return f"{name}-{int(time.time() * 1000) % 10**8}"


def test_deploy_reaches_a_completed_stack_then_says_no_changes(cli, aws_env, certificate_arn, tmp_path):
    template = moto_variant(tmp_path)
    stack = unique("mcp")
    r = cli("stack", "deploy", stack, "--template", template, "--yes", *params(certificate_arn), timeout=180)
    assert r.code == 0, r.stderr
    assert "Add" in r.stdout and "AWS::ECS::Service" in r.stdout  # the change set table
    assert "CREATE_COMPLETE" in r.stderr
    status = cli("stack", "status", stack, "-o", "json")
    assert status.code == 0 and status.json()["status"] == "CREATE_COMPLETE"
    again = cli("stack", "deploy", stack, "--template", template, "--yes", *params(certificate_arn),
                timeout=180)
    assert again.code == 0 and "no changes" in again.stderr
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in r.stdout + r.stderr + again.stdout + again.stderr


def test_no_execute_leaves_the_change_set_unexecuted(cli, aws_env, certificate_arn, tmp_path):
    import boto3

    stack = unique("mcp-review")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--no-execute",
            *params(certificate_arn), timeout=180)
    assert r.code == 0, r.stderr
    name = r.stderr.split("change set ")[1].split()[0]
    cf = boto3.client("cloudformation", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    described = cf.describe_change_set(StackName=stack, ChangeSetName=name)
    assert described["ExecutionStatus"] == "AVAILABLE"
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"


def test_refusing_to_execute_without_yes_deletes_the_change_set_and_the_empty_stack(
        cli, aws_env, certificate_arn, tmp_path):
    import boto3

    stack = unique("mcp-noyes")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), *params(certificate_arn),
            timeout=180)
    assert r.code == 2 and "--yes" in r.stderr
    assert cli("stack", "status", stack).code == 3  # the REVIEW_IN_PROGRESS stack it made is gone
    cf = boto3.client("cloudformation", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    left = [c for c in cf.list_change_sets(StackName=stack)["Summaries"] if c["StackName"] == stack]
    assert left == []


def test_refuses_to_deploy_a_template_with_validation_errors(cli, aws_env, certificate_arn, tmp_path):
    def weaken(tpl):
        for res in tpl["Resources"].values():
            is_listener = res["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
            if is_listener and res["Properties"].get("Protocol") == "HTTPS":
                res["Properties"]["SslPolicy"] = "ELBSecurityPolicy-TLS-1-0-2015-04"

    stack = unique("mcp-weak")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path, weaken), "--yes",
            *params(certificate_arn), timeout=180)
    assert r.code == 1 and "E9101" in r.stdout and "not deploying" in r.stderr
    assert cli("stack", "status", stack).code == 3  # nothing was created


def test_a_certificate_that_does_not_exist_is_exit_3_before_any_change_set(cli, aws_env, tmp_path):
    # (A resource failing during the execution: test_deploy_flow.py.)
    stack = unique("mcp-fail")
    missing = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--yes", *params(missing),
            timeout=180)
    assert r.code == 3 and r.stderr.startswith("mcpadmin: error: certificate ") and r.stderr.count("\n") == 1
    assert cli("stack", "status", stack).code == 3


def test_unreachable_endpoint_exits_5_within_seconds(cli, aws_env, certificate_arn, tmp_path):
    from tests.redis_server import free_port

    start = time.monotonic()
    r = cli("stack", "status", "anything", "--endpoint-url", f"http://127.0.0.1:{free_port()}")
    assert r.code == 5 and r.stderr.count("\n") == 1 and "cannot reach AWS" in r.stderr
    assert time.monotonic() - start < 10


def test_outputs_of_a_stack_are_printed(cli, aws_env, tmp_path):
    import boto3

    # moto gives Outputs only to stacks made by CreateStack (not change sets): make one directly.
    cf = boto3.client("cloudformation", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    stack = unique("mcp-outputs")
    cf.create_stack(StackName=stack, TemplateBody=json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"AlertTopicArn": {"Value": {"Ref": "Topic"}, "Description": "alerts"}}}))
    r = cli("stack", "outputs", stack, "-o", "json")
    assert r.code == 0, r.stderr
    (row,) = r.json()
    assert row["key"] == "AlertTopicArn" and row["value"].startswith("arn:aws:sns:")
    assert cli("stack", "outputs", "no-such-stack").code == 3


def test_template_command_prints_the_shipped_template(cli):
    r = cli("stack", "template")
    assert r.code == 0 and r.stdout == shipped_template()


def test_validate_reports_findings_with_rule_resource_and_line(cli, tmp_path):
    def open_port(tpl):
        for _name, res in tpl["Resources"].items():
            if res["Type"] == "AWS::ECS::Service":
                res["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] = "ENABLED"

    clean = cli("stack", "validate")
    assert clean.code == 0 and "no findings" in clean.stderr
    r = cli("stack", "validate", "--template", moto_variant(tmp_path, open_port), "-o", "json")
    assert r.code == 1
    (finding,) = [f for f in r.json() if f["rule"] == "E9103"]
    assert finding["severity"] == "error" and finding["resource"] and finding["line"]
    assert cli("stack", "validate", "--template", str(tmp_path / "missing.yaml")).code == 2
