"""`stack deploy` checks made with AWS before any change set (moto's server mode): the ACM
certificate's region and names, an empty AlertEmail, the S3 prefix list filled in."""

from __future__ import annotations

import boto3
import pytest

from finops_mcp_admin.aws.deploy import certificate_covers
from tests.aws.test_deploy import moto_variant, params, unique


def request_cert(aws_env, domain: str, region: str = "us-east-1", sans: list[str] | None = None) -> str:
    acm = boto3.client("acm", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=region)
    return acm.request_certificate(DomainName=domain, **({"SubjectAlternativeNames": sans} if sans else {}))[
        "CertificateArn"]


def without(args: list[str], key: str) -> list[str]:
    out: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if not value.startswith(f"{key}="):
            out += [flag, value]
    return out


@pytest.mark.parametrize(("names", "domain", "covered"), [
    (["mcp.example.com"], "mcp.example.com", True),
    (["MCP.Example.com."], "mcp.example.com", True),
    (["*.example.com"], "mcp.example.com", True),
    (["*.example.com"], "example.com", False),
    (["*.example.com"], "a.mcp.example.com", False),
    (["other.example.com", "*.mcp.example.com"], "mcp.example.com", False),
    (["example.com", "mcp.example.com"], "mcp.example.com", True),
    (["*.com"], "example.com", True),  # one label: ACM itself never issues this
])
def test_certificate_names_cover_the_domain_exactly_or_by_one_wildcard_label(names, domain, covered):
    assert certificate_covers(names, domain) is covered


def test_a_certificate_of_another_region_is_refused_before_any_change_set(cli, aws_env, tmp_path):
    cert = request_cert(aws_env, "mcp.example.com", region="eu-west-1")
    stack = unique("mcp-cert-region")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--yes", *params(cert),
            timeout=180)
    assert r.code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "eu-west-1" in r.stderr and "us-east-1" in r.stderr
    assert cli("stack", "status", stack).code == 3  # nothing created, not even a change set


def test_a_certificate_that_does_not_cover_the_domain_is_refused(cli, aws_env, tmp_path):
    cert = request_cert(aws_env, "other.example.com", sans=["*.mcp.example.com"])
    stack = unique("mcp-cert-name")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--yes", *params(cert),
            timeout=180)
    assert r.code == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "not DomainName mcp.example.com" in r.stderr
    assert cli("stack", "status", stack).code == 3


def test_a_wildcard_certificate_passes_an_empty_alert_email_warns_and_the_prefix_list_is_filled(
        cli, aws_env, tmp_path):
    cert = request_cert(aws_env, "*.example.com")
    ec2 = boto3.client("ec2", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    (s3_list,) = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}])["PrefixLists"]
    stack = unique("mcp-prechecks")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--no-execute", "--quiet",
            *without(params(cert), "S3PrefixListId"), timeout=180)
    assert r.code == 0, r.stderr
    assert "warning: AlertEmail is empty" in r.stderr  # shown even with --quiet
    cf = boto3.client("cloudformation", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    # moto lists every stack's change sets whatever StackName says: keep this stack's own.
    (summary,) = [c for c in cf.list_change_sets(StackName=stack)["Summaries"]
                  if c["StackName"] == stack]
    described = cf.describe_change_set(StackName=stack, ChangeSetName=summary["ChangeSetName"])
    given = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    assert given["S3PrefixListId"] == s3_list["PrefixListId"]


def test_a_given_alert_email_does_not_warn(cli, aws_env, tmp_path):
    stack = unique("mcp-alerts")
    r = cli("stack", "deploy", stack, "--template", moto_variant(tmp_path), "--no-execute",
            *params(request_cert(aws_env, "mcp.example.com")), "--param", "AlertEmail=secops@example.com",
            timeout=180)
    assert r.code == 0, r.stderr
    assert "AlertEmail" not in r.stderr
