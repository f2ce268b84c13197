"""Parameters checked against the template (names, required, constraints), the
--parameters-file formats, UsePreviousValue on update and the one IAM capability needed."""

from __future__ import annotations

import json

import pytest

from finops_mcp_admin.aws.cloudformation import shipped_template
from finops_mcp_admin.aws.stack_params import (
    capabilities,
    check_given,
    check_required,
    declared,
    parameter_list,
    read_parameters_file,
    template_document,
)
from finops_mcp_admin.errors import InvalidInput

SHIPPED = declared(template_document(shipped_template()))


def role(**props):
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}, **props}}


@pytest.mark.parametrize(("resources", "transform", "expected"), [
    ({"Topic": {"Type": "AWS::SNS::Topic"}}, None, []),
    ({"Role": role()}, None, ["CAPABILITY_IAM"]),
    ({"Role": role(), "Named": role(RoleName="mcp-task")}, None, ["CAPABILITY_NAMED_IAM"]),
    ({"P": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"ManagedPolicyName": "x"}}}, None,
     ["CAPABILITY_NAMED_IAM"]),
    ({"Topic": {"Type": "AWS::SNS::Topic"}}, "AWS::Serverless-2016-10-31", ["CAPABILITY_AUTO_EXPAND"]),
])
def test_only_the_capability_the_template_needs(resources, transform, expected):
    document = {"Resources": resources, **({"Transform": transform} if transform else {})}
    assert capabilities(document) == expected


def test_the_shipped_template_needs_only_capability_iam():
    assert capabilities(template_document(shipped_template())) == ["CAPABILITY_IAM"]


@pytest.mark.parametrize(("given", "message"), [
    ({"Nope": "1"}, "unknown parameter Nope"),
    ({"VpcCidr": "10.0.0.0/8"}, "invalid --param VpcCidr='10.0.0.0/8': must be an IPv4 CIDR"),
    ({"EnableNatEgress": "yes"}, "must be one of true, false"),
    ({"DomainName": "a.b"}, "must be a lower-case DNS name"),
    ({"ContainerPort": "80"}, "must be at least 1024"),
    ({"ContainerPort": "http"}, "must be a number"),
])
def test_a_given_value_the_template_refuses_names_the_parameter(given, message):
    with pytest.raises(InvalidInput) as caught:
        check_given(SHIPPED, given)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_valid_values_pass_and_a_no_echo_value_is_never_quoted():
    check_given(SHIPPED, {"DomainName": "mcp.example.com", "DesiredCount": "0", "HostedZoneId": ""})
    secret = declared({"Parameters": {"Token": {"Type": "String", "NoEcho": True, "MinLength": 40}}})
    with pytest.raises(InvalidInput) as caught:
        check_given(secret, {"Token": "canary-secret-value-123"})
    assert "canary" not in str(caught.value) and "Token" in str(caught.value)


def test_required_parameters_are_given_kept_from_before_or_filled_in():
    with pytest.raises(InvalidInput, match="missing required parameter ImageUri"):
        check_required(SHIPPED, {}, previous=set(), filled_in={"S3PrefixListId"})
    required = {n for n, p in SHIPPED.items() if p.required}
    check_required(SHIPPED, {}, previous=required, filled_in=set())  # an update keeps them
    given = {n: "x" for n in required - {"S3PrefixListId"}}
    check_required(SHIPPED, given, previous=set(), filled_in={"S3PrefixListId"})


def test_an_update_sends_use_previous_value_for_what_is_not_given():
    sent = parameter_list(SHIPPED, {"DesiredCount": "1"}, previous={"AlertEmail", "DomainName", "Gone"})
    assert {"ParameterKey": "DesiredCount", "ParameterValue": "1"} in sent
    assert {"ParameterKey": "AlertEmail", "UsePreviousValue": True} in sent
    assert {"ParameterKey": "DomainName", "UsePreviousValue": True} in sent
    assert all(p["ParameterKey"] != "Gone" for p in sent)  # no longer declared: not sent
    assert all(p["ParameterKey"] != "VpcCidr" for p in sent)  # never set: the template default


@pytest.mark.parametrize(("name", "text"), [
    ("aws.json", json.dumps([{"ParameterKey": "DomainName", "ParameterValue": "mcp.example.com"},
                             {"ParameterKey": "DesiredCount", "ParameterValue": 2},
                             {"ParameterKey": "AlertEmail", "UsePreviousValue": True}])),
    ("map.json", json.dumps({"DomainName": "mcp.example.com", "DesiredCount": 2})),
    ("map.yaml", "DomainName: mcp.example.com\nDesiredCount: 2\n"),
])
def test_parameters_files_in_the_three_formats(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert read_parameters_file(str(path)) == {"DomainName": "mcp.example.com", "DesiredCount": "2"}


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "entry 1 has no ParameterKey"),
    ('[{"ParameterKey": "A"}]', "A has no ParameterValue"),
    ('{"A": {"nested": 1}}', "A must map to a single value"),
    ("just a string", "expected a mapping"),
    ("a: [b\n", "neither JSON nor YAML"),
])
def test_a_malformed_parameters_file_is_one_line_naming_the_problem(tmp_path, text, message):
    path = tmp_path / "p.txt"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        read_parameters_file(str(path))
    assert message in str(caught.value) and "\n" not in str(caught.value)
