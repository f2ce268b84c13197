"""The shipped template is clean (our rules and plain cfn-lint); each E91xx rule's every branch
is pinned by a minimal mutation of the shipped template that triggers exactly that rule.
(E9107, the alarm rule, has its own file: test_rules_monitoring.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finops_mcp_admin.aws.cloudformation import shipped_template, validate
from finops_mcp_admin.aws.rules.edge import TLS12_POLICY
from tests.aws.template_variants import custom_rules_hit, resource, resources_of, rules_hit, shipped

DIGEST = "@sha256:" + "a" * 64


def test_shipped_template_has_no_errors_or_warnings():
    assert validate(shipped_template()) == []


def test_shipped_template_passes_plain_cfn_lint(tmp_path):
    path = tmp_path / "mcp-server.yaml"
    path.write_text(shipped_template())
    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # the console script of the cfn-lint package
    r = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# --- E9101 TLS policy -------------------------------------------------------------------------

@pytest.mark.parametrize("policy", [
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06", "ELBSecurityPolicy-FS-1-2-Res-2020-10"])
def test_tls_1_2_floor_policies_including_post_quantum_are_accepted(policy):
    assert TLS12_POLICY.match(policy)


@pytest.mark.parametrize("policy", [
    "ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS-1-0-2015-04", "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-TLS13-1-1-2021-06", "ELBSecurityPolicy-TLS13-1-0-2021-06",
    "ELBSecurityPolicy-FS-2018-06", "ELBSecurityPolicy-FS-1-1-2019-08", "ELBSecurityPolicy-TLS13-1-2"])
def test_policies_admitting_tls_below_1_2_are_refused(policy):
    assert not TLS12_POLICY.match(policy)


def _https(tpl: dict) -> dict:
    (https,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::Listener", Protocol="HTTPS")
    return https["Properties"]


def _literal_policy(tpl: dict, policy: object) -> dict:
    """The listener's policy as a literal (the SslPolicy parameter removed with its last use)."""
    del tpl["Parameters"]["SslPolicy"]
    for group in tpl["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]:
        group["Parameters"] = [p for p in group["Parameters"] if p != "SslPolicy"]
    _https(tpl)["SslPolicy"] = policy
    return tpl


def test_tls_1_0_literal_or_missing_policy_triggers_e9101():
    tpl = _literal_policy(shipped(), "ELBSecurityPolicy-TLS-1-0-2015-04")
    assert rules_hit(tpl) == {"E9101"}
    del _https(tpl)["SslPolicy"]
    assert rules_hit(tpl) == {"E9101"}


def test_post_quantum_literal_policy_is_clean():
    tpl = _literal_policy(shipped(), "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09")
    assert rules_hit(tpl) == set()


def test_policy_parameter_default_or_allowed_value_below_tls_1_2_triggers_e9101():
    tpl = shipped()
    assert _https(tpl)["SslPolicy"] == {"Ref": "SslPolicy"}
    tpl["Parameters"]["SslPolicy"]["AllowedValues"].append("ELBSecurityPolicy-2016-08")
    assert rules_hit(tpl) == {"E9101"}  # a deployer may choose it
    tpl["Parameters"]["SslPolicy"]["Default"] = "ELBSecurityPolicy-2016-08"
    assert rules_hit(tpl) == {"E9101"}


def test_unresolvable_policy_triggers_e9101():
    tpl = _literal_policy(shipped(), {"Fn::ImportValue": "shared-tls-policy"})
    assert rules_hit(tpl) == {"E9101"}


def test_listener_without_certificate_triggers_e9101():
    tpl = shipped()
    del _https(tpl)["Certificates"]
    assert "E9101" in rules_hit(tpl)


# --- E9102 port 80 ----------------------------------------------------------------------------

def _http(tpl: dict) -> dict:
    (http,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::Listener", Protocol="HTTP")
    return http["Properties"]


def _mcp_rule(tpl: dict) -> dict:
    (rule,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::ListenerRule")
    return rule["Properties"]


def test_http_listener_forwarding_triggers_e9102():
    tpl = shipped()
    _http(tpl)["DefaultActions"] = _https(tpl)["DefaultActions"]
    assert rules_hit(tpl) == {"E9102"}


def test_http_redirect_to_http_triggers_e9102():
    tpl = shipped()
    _http(tpl)["DefaultActions"][0]["RedirectConfig"]["Protocol"] = "HTTP"
    assert rules_hit(tpl) == {"E9102"}


def test_missing_mcp_refusal_triggers_e9102():
    tpl = shipped()
    for name, res in list(tpl["Resources"].items()):
        if res["Type"] == "AWS::ElasticLoadBalancingV2::ListenerRule":
            del tpl["Resources"][name]
    assert rules_hit(tpl) == {"E9102"}


def test_mcp_path_redirected_instead_of_refused_triggers_e9102():
    tpl = shipped()
    _mcp_rule(tpl)["Actions"] = _http(tpl)["DefaultActions"]
    assert rules_hit(tpl) == {"E9102"}


def test_refusal_with_another_status_path_or_extra_condition_triggers_e9102():
    tpl = shipped()
    _mcp_rule(tpl)["Actions"][0]["FixedResponseConfig"]["StatusCode"] = "404"
    assert rules_hit(tpl) == {"E9102"}
    tpl = shipped()
    _mcp_rule(tpl)["Conditions"][0]["PathPatternConfig"]["Values"] = ["/api*"]
    assert rules_hit(tpl) == {"E9102"}
    tpl = shipped()
    _mcp_rule(tpl)["Conditions"].append({"Field": "host-header",
                                         "HostHeaderConfig": {"Values": ["a.example"]}})
    assert rules_hit(tpl) == {"E9102"}


# --- E9103 private subnets --------------------------------------------------------------------

def _service(tpl: dict) -> dict:
    (service,) = resources_of(tpl, "AWS::ECS::Service")
    return service["Properties"]


def test_public_ip_on_the_service_triggers_e9103():
    tpl = shipped()
    _service(tpl)["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] = "ENABLED"
    assert rules_hit(tpl) == {"E9103"}


def test_internet_gateway_route_in_the_service_subnets_triggers_e9103():
    tpl = shipped()
    tpl["Resources"]["PrivateIgwRoute"] = {"Type": "AWS::EC2::Route", "Properties": {
        "RouteTableId": {"Ref": "PrivateRouteTable"}, "DestinationCidrBlock": "0.0.0.0/0",
        "GatewayId": {"Ref": "InternetGateway"}}}
    assert rules_hit(tpl) == {"E9103"}


def test_service_in_the_public_subnets_triggers_e9103():
    tpl = shipped()
    _service(tpl)["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] = [
        {"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}]
    assert "E9103" in rules_hit(tpl)


def test_nat_route_is_not_an_internet_gateway_route():
    tpl = shipped()
    for name in ("NatEip", "NatGateway", "PrivateNatRoute"):
        del tpl["Resources"][name]["Condition"]  # EnableNatEgress=true, as a deployer may choose
    assert custom_rules_hit(tpl) == set()


def test_unassociated_foreign_or_public_ip_subnet_triggers_e9103():
    tpl = shipped()
    del tpl["Resources"]["PrivateSubnet1RouteTableAssociation"]
    assert "E9103" in rules_hit(tpl)
    tpl = shipped()
    _service(tpl)["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"][0] = "subnet-0123456789abcdef0"
    assert "E9103" in rules_hit(tpl)
    tpl = shipped()
    resource(tpl, "PrivateSubnet2")["MapPublicIpOnLaunch"] = True
    assert rules_hit(tpl) == {"E9103"}


# --- E9104 / E9105 ingress --------------------------------------------------------------------

def _alb_group(tpl: dict) -> dict:
    (alb,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    return resource(tpl, alb["Properties"]["SecurityGroups"][0]["Ref"])


def test_server_group_open_to_the_world_triggers_e9104_and_e9105():
    tpl = shipped()
    group = _service(tpl)["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"][0]["Ref"]
    rules = resource(tpl, group)["SecurityGroupIngress"]
    port = rules[0]["FromPort"]
    rules.append({"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIp": "0.0.0.0/0"})
    assert rules_hit(tpl) == {"E9104", "E9105"}


def test_alb_open_on_another_port_triggers_e9105():
    tpl = shipped()
    _alb_group(tpl)["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"})
    assert rules_hit(tpl) == {"E9105"}


def test_two_halves_of_the_address_space_trigger_e9105():
    tpl = shipped()
    _alb_group(tpl)["SecurityGroupIngress"] += [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/1"},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "128.0.0.0/1"}]
    assert rules_hit(tpl) == {"E9105"}


def test_halves_over_a_port_range_including_443_trigger_e9105():
    tpl = shipped()
    _alb_group(tpl)["SecurityGroupIngress"] += [
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 443, "CidrIp": "0.0.0.0/1"},
        {"IpProtocol": "6", "FromPort": 80, "ToPort": 443, "CidrIp": "128.0.0.0/1"}]
    assert rules_hit(tpl) == {"E9105"}


def test_string_ports_are_judged_like_numbers():
    tpl = shipped()
    for rule in _alb_group(tpl)["SecurityGroupIngress"]:
        rule["FromPort"], rule["ToPort"] = str(rule["FromPort"]), str(rule["ToPort"])
    assert rules_hit(tpl) == set()  # "443" is 443
    _alb_group(tpl)["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CidrIp": "0.0.0.0/0"})
    assert rules_hit(tpl) == {"E9105"}


def test_world_ipv6_on_udp_and_world_via_a_parameter_default_trigger_e9105():
    tpl = shipped()
    _alb_group(tpl)["SecurityGroupIngress"].append(
        {"IpProtocol": "udp", "FromPort": 443, "ToPort": 443, "CidrIpv6": "::/0"})
    assert rules_hit(tpl) == {"E9105"}
    tpl = shipped()
    tpl["Parameters"]["AdminCidr"] = {"Type": "String", "Default": "0.0.0.0/0"}
    _alb_group(tpl)["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443, "CidrIp": {"Ref": "AdminCidr"}})
    assert rules_hit(tpl) == {"E9105"}


# --- E9106 key store --------------------------------------------------------------------------

def test_redis_without_tls_or_at_rest_encryption_triggers_e9106():
    for prop in ("TransitEncryptionEnabled", "AtRestEncryptionEnabled"):
        tpl = shipped()
        resource(tpl, "RedisReplicationGroup")[prop] = False
        assert "E9106" in rules_hit(tpl)


@pytest.mark.parametrize("mode", ["preferred", None])
def test_transit_encryption_mode_other_than_required_triggers_e9106(mode):
    tpl = shipped()
    redis = resource(tpl, "RedisReplicationGroup")
    redis.pop("TransitEncryptionMode")
    if mode:
        redis["TransitEncryptionMode"] = mode
    assert rules_hit(tpl) == {"E9106"}


def test_literal_or_parameter_auth_token_triggers_e9106():
    tpl = shipped()
    resource(tpl, "RedisReplicationGroup")["AuthToken"] = "a-literal-token-of-32-characters-x"
    assert rules_hit(tpl) == {"E9106"}
    tpl = shipped()
    tpl["Parameters"]["RedisToken"] = {"Type": "String", "NoEcho": True}
    resource(tpl, "RedisReplicationGroup")["AuthToken"] = {"Ref": "RedisToken"}
    assert custom_rules_hit(tpl) == {"E9106"}  # (cfn-lint's own W1011 agrees)


def test_redis_without_auth_triggers_e9106():
    tpl = shipped()
    resource(tpl, "RedisReplicationGroup").pop("AuthToken")
    assert rules_hit(tpl) == {"E9106"}


# --- E9108 endpoints --------------------------------------------------------------------------

def _drop_endpoint(tpl: dict, service: str) -> None:
    for name, res in list(tpl["Resources"].items()):
        if res["Type"] == "AWS::EC2::VPCEndpoint" and res["Properties"]["ServiceName"]["Fn::Sub"].endswith(
                "." + service):
            del tpl["Resources"][name]


@pytest.mark.parametrize("service", ["secretsmanager", "ssmmessages", "kms", "ecr.dkr", "s3"])
def test_missing_vpc_endpoint_triggers_e9108(service):
    tpl = shipped()
    _drop_endpoint(tpl, service)
    assert rules_hit(tpl) == {"E9108"}


def test_ssmmessages_and_kms_endpoints_are_needed_only_for_ecs_exec():
    tpl = shipped()
    _service(tpl)["EnableExecuteCommand"] = False
    resource(tpl, "EcsCluster").pop("Configuration")
    _drop_endpoint(tpl, "ssmmessages")
    _drop_endpoint(tpl, "kms")
    assert custom_rules_hit(tpl) == set()


def test_interface_endpoint_without_private_dns_triggers_e9108():
    tpl = shipped()
    resource(tpl, "LogsEndpoint")["PrivateDnsEnabled"] = False
    assert rules_hit(tpl) == {"E9108"}


def test_s3_gateway_endpoint_off_the_service_route_tables_triggers_e9108():
    tpl = shipped()
    resource(tpl, "S3GatewayEndpoint")["RouteTableIds"] = [{"Ref": "PublicRouteTable"}]
    assert rules_hit(tpl) == {"E9108"}
    resource(tpl, "S3GatewayEndpoint").pop("RouteTableIds")
    assert "E9108" in rules_hit(tpl)


# --- E9109 headers ----------------------------------------------------------------------------

def test_alb_keeping_invalid_headers_triggers_e9109():
    tpl = shipped()
    (alb,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    for attr in alb["Properties"]["LoadBalancerAttributes"]:
        if attr["Key"] == "routing.http.drop_invalid_header_fields.enabled":
            attr["Value"] = "false"
    assert rules_hit(tpl) == {"E9109"}


# --- E9110 image pinned by digest -------------------------------------------------------------

def _container(tpl: dict) -> dict:
    (task,) = resources_of(tpl, "AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    return container


@pytest.mark.parametrize("pattern", [None, ".*", "^[^@]+(@sha256:[0-9a-f]{64})?$"])
def test_image_parameter_admitting_tags_triggers_e9110(pattern):
    tpl = shipped()
    tpl["Parameters"]["ImageUri"].pop("AllowedPattern")
    if pattern:
        tpl["Parameters"]["ImageUri"]["AllowedPattern"] = pattern
    assert rules_hit(tpl) == {"E9110"}


def test_image_parameter_default_tag_triggers_e9110():
    tpl = shipped()
    tpl["Parameters"]["ImageUri"]["Default"] = "python:3.11-slim"
    assert "E9110" in rules_hit(tpl)


def test_literal_images_must_carry_a_digest():
    tpl = shipped()
    _container(tpl)["Image"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp:1.0"
    assert "E9110" in rules_hit(tpl)
    _container(tpl)["Image"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp" + DIGEST
    assert "E9110" not in rules_hit(tpl)
    _container(tpl)["Image"] = {"Fn::Sub": "${AWS::AccountId}.dkr.ecr.us-east-1.amazonaws.com/mcp:1"}
    assert "E9110" in rules_hit(tpl)


# --- E9111 ECS Exec ---------------------------------------------------------------------------

def _exec_config(tpl: dict) -> dict:
    return resource(tpl, "EcsCluster")["Configuration"]["ExecuteCommandConfiguration"]


@pytest.mark.parametrize("logging", ["DEFAULT", "OVERRIDE"])
def test_ecs_exec_session_logging_triggers_e9111(logging):
    tpl = shipped()
    _exec_config(tpl)["Logging"] = logging
    if logging == "OVERRIDE":
        _exec_config(tpl)["LogConfiguration"] = {"CloudWatchLogGroupName": {"Ref": "AppLogGroup"},
                                                 "CloudWatchEncryptionEnabled": True}
    assert rules_hit(tpl) == {"E9111"}


def test_ecs_exec_without_session_key_triggers_e9111():
    tpl = shipped()
    _exec_config(tpl).pop("KmsKeyId")
    assert "E9111" in rules_hit(tpl)


@pytest.mark.parametrize("path", ["/var/lib/amazon/ssm", "/var/log/amazon/ssm"])
def test_read_only_root_without_ssm_agent_volume_triggers_e9111(path):
    tpl = shipped()
    mounts = _container(tpl)["MountPoints"]
    _container(tpl)["MountPoints"] = [m for m in mounts if m["ContainerPath"] != path]
    assert rules_hit(tpl) == {"E9111"}


def test_task_role_without_ssmmessages_triggers_e9111():
    tpl = shipped()
    statements = resource(tpl, "TaskRole")["Policies"][0]["PolicyDocument"]["Statement"]
    resource(tpl, "TaskRole")["Policies"][0]["PolicyDocument"]["Statement"] = [
        s for s in statements if s.get("Sid") != "SsmAgentChannels"]
    assert rules_hit(tpl) == {"E9111"}


def test_the_container_command_uses_real_serve_options():
    """The template and the Dockerfile start `mcpadmin serve` with flags that exist."""
    import re

    from tests.conftest import run_cli

    help_text = run_cli("serve", "--help").stdout
    container = _container(shipped())
    assert container["EntryPoint"] == ["mcpadmin"] and container["Command"][0] == "serve"
    flags = [a for a in container["Command"] if isinstance(a, str) and a.startswith("--")]
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    flags += re.findall(r'"(--[a-z-]+)"', dockerfile)
    assert flags and all(f in help_text for f in flags), flags
