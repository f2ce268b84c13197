"""What the shipped template promises beyond the E91xx rules: the bootstrap key hashes reach the
server in a form it parses, the admin tunnel has the outputs it needs, the task role holds no AWS
read permission, nothing reaches the internet by default, and monitoring/endpoint/image pieces
exist (issue 10)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from finops_mcp_admin.server.auth import parse_static_hashes
from tests.aws.template_variants import resource, resources_of, shipped
from tests.conftest import run_cli


def _container(tpl: dict) -> dict:
    (task,) = resources_of(tpl, "AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    return container


def _real_hash(key_id: str | None = None) -> str:
    token = f"mcpk_{(key_id or 'AbCdEfGhIjKl')}_{uuid.uuid4().hex}{uuid.uuid4().hex[:10]}"
    r = run_cli("keys", "hash", stdin=token)
    assert r.code == 0, r.stderr
    phc = r.stdout.strip()
    return f"{key_id}:{phc}" if key_id else phc


@pytest.fixture(scope="module")
def two_hashes() -> list[str]:
    return [_real_hash(), _real_hash("Zz0123456789")]


def test_bootstrap_hashes_parameter_accepts_comma_joined_keys_hash_output(two_hashes):
    pattern = re.compile(shipped()["Parameters"]["BootstrapKeyHashes"]["AllowedPattern"])
    assert "," in two_hashes[0]  # PHC parameters: m=...,t=...,p=...
    for value in ("", two_hashes[0], ",".join(two_hashes)):
        assert pattern.fullmatch(value), value
    for value in ("not-a-hash", two_hashes[0] + ",", " ".join(two_hashes),
                  two_hashes[0].replace("argon2id", "argon2i")):
        assert not pattern.fullmatch(value), value


def test_the_server_splits_the_parameter_value_into_the_same_hashes(two_hashes):
    entries = parse_static_hashes(",".join(two_hashes))
    assert [e.phc for e in entries] == [two_hashes[0], two_hashes[1].split(":", 1)[1]]
    assert [e.key_id for e in entries] == [None, "Zz0123456789"]


def test_bootstrap_hashes_reach_the_container_as_mcp_api_key_hashes():
    tpl = shipped()
    (entry,) = [e for e in _container(tpl)["Environment"] if "Fn::If" in e]
    condition, value, absent = entry["Fn::If"]
    assert value == {"Name": "MCP_API_KEY_HASHES", "Value": {"Ref": "BootstrapKeyHashes"}}
    assert absent == {"Ref": "AWS::NoValue"}
    assert tpl["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BootstrapKeyHashes"}, ""]}]}


def test_outputs_give_the_tunnel_what_it_needs():
    outputs = shipped()["Outputs"]
    assert outputs["ClusterName"]["Value"] == {"Ref": "EcsCluster"}
    assert outputs["ServiceName"]["Value"] == {"Fn::GetAtt": ["EcsService", "Name"]}
    assert outputs["CacheEndpointAddress"]["Value"] == {
        "Fn::GetAtt": ["RedisReplicationGroup", "PrimaryEndPoint.Address"]}
    assert outputs["CacheEndpointPort"]["Value"] == {
        "Fn::GetAtt": ["RedisReplicationGroup", "PrimaryEndPoint.Port"]}
    assert outputs["RedisAuthSecretArn"]["Value"] == {"Ref": "RedisAuthSecret"}
    assert outputs["ContainerName"]["Value"] == _container(shipped())["Name"]
    assert outputs["McpEndpoint"]["Value"] == {"Fn::Sub": "https://${DomainName}/mcp"}


def test_ecs_exec_is_on_with_logging_none_and_a_session_key():
    tpl = shipped()
    (service,) = resources_of(tpl, "AWS::ECS::Service")
    assert service["Properties"]["EnableExecuteCommand"] is True
    config = resource(tpl, "EcsCluster")["Configuration"]["ExecuteCommandConfiguration"]
    assert config == {"Logging": "NONE", "KmsKeyId": {"Fn::GetAtt": ["ExecSessionKey", "Arn"]}}


def test_task_role_has_no_aws_read_permission_by_default():
    role = resource(shipped(), "TaskRole")
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                 else s["Action"])}
    assert actions == {"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                       "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel", "kms:Decrypt"}
    assert role["ManagedPolicyArns"] == {"Fn::If": [
        "HasTaskRolePolicies", {"Ref": "TaskRoleManagedPolicyArns"}, {"Ref": "AWS::NoValue"}]}
    param = shipped()["Parameters"]["TaskRoleManagedPolicyArns"]
    assert (param["Type"], param["Default"]) == ("CommaDelimitedList", "")


def test_nothing_reaches_the_internet_unless_nat_egress_is_enabled():
    tpl = shipped()
    assert tpl["Parameters"]["EnableNatEgress"]["Default"] == "false"
    for name, res in tpl["Resources"].items():
        text = json.dumps(res)
        if res["Type"] in ("AWS::EC2::NatGateway", "AWS::EC2::EIP") or (
                "0.0.0.0/0" in text and res["Type"] in ("AWS::EC2::SecurityGroupEgress", "AWS::EC2::Route")
                and name != "PublicDefaultRoute"):
            assert res.get("Condition") == "NatEgress", name
        if res["Type"] == "AWS::EC2::SecurityGroup":
            for rule in res["Properties"].get("SecurityGroupEgress", []):
                if "0.0.0.0/0" in json.dumps(rule):
                    assert rule["Fn::If"][0] == "NatEgress" and rule["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def test_alb_access_logs_go_to_an_encrypted_private_expiring_bucket():
    tpl = shipped()
    bucket = resource(tpl, "AccessLogBucket")
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "AES256"  # the only encryption ALB log delivery supports
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] > 0
    policy = json.dumps(resource(tpl, "AccessLogBucketPolicy"))
    assert "logdelivery.elasticloadbalancing.amazonaws.com" in policy
    (alb,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attrs = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attrs["access_logs.s3.enabled"] == "true"
    assert attrs["access_logs.s3.bucket"] == {"Ref": "AccessLogBucket"}


def test_alarms_cover_5xx_and_unhealthy_targets_and_notify_the_topic():
    alarms = {res["Properties"]["MetricName"]: res["Properties"]
              for res in resources_of(shipped(), "AWS::CloudWatch::Alarm")}
    for metric in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "UnHealthyHostCount"):
        assert alarms[metric]["AlarmActions"] == [{"Ref": "AlertTopic"}], metric


def test_dns_alias_only_with_a_hosted_zone():
    tpl = shipped()
    (record,) = resources_of(tpl, "AWS::Route53::RecordSet")
    assert tpl["Resources"]["DnsRecord"]["Condition"] == "HasHostedZone"
    assert record["Properties"]["Name"] == {"Ref": "DomainName"}
    assert record["Properties"]["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}


def test_image_repository_is_immutable_and_scanned():
    tpl = shipped()
    repo = resource(tpl, "ImageRepository")
    assert repo["ImageTagMutability"] == "IMMUTABLE"
    assert repo["ImageScanningConfiguration"]["ScanOnPush"] is True
    assert tpl["Resources"]["ImageRepository"]["Condition"] == "CreateRepository"


def test_redis_secret_cmk_is_optional():
    tpl = shipped()
    assert tpl["Resources"]["RedisSecretKey"]["Condition"] == "RedisSecretCmk"
    assert resource(tpl, "RedisAuthSecret")["KmsKeyId"] == {
        "Fn::If": ["RedisSecretCmk", {"Ref": "RedisSecretKey"}, {"Ref": "AWS::NoValue"}]}
