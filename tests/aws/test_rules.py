"""The shipped template is clean (our rules and plain cfn-lint); each deliberately broken variant
triggers exactly the matching E91xx rule — one test per rule."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from finops_mcp_admin.aws.cloudformation import shipped_template, validate


@pytest.fixture(scope="module")
def base() -> dict:
    from cfnlint.decode.cfn_yaml import loads

    return json.loads(json.dumps(loads(shipped_template())))  # plain dicts and lists


def resources_of(tpl: dict, rtype: str, **props) -> list[dict]:
    out = []
    for res in tpl["Resources"].values():
        if res["Type"] == rtype and all(res.get("Properties", {}).get(k) == v for k, v in props.items()):
            out.append(res)
    return out


def rules_hit(tpl: dict) -> set[str]:
    return {f.rule for f in validate(json.dumps(tpl))}


def test_shipped_template_has_no_errors_or_warnings():
    assert validate(shipped_template()) == []


def test_shipped_template_passes_plain_cfn_lint(tmp_path):
    path = tmp_path / "mcp-server.yaml"
    path.write_text(shipped_template())
    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # the console script of the cfn-lint package
    r = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_tls_1_0_policy_triggers_e9101(base):
    tpl = copy.deepcopy(base)
    (https,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::Listener", Protocol="HTTPS")
    https["Properties"]["SslPolicy"] = "ELBSecurityPolicy-TLS-1-0-2015-04"
    assert rules_hit(tpl) == {"E9101"}
    del https["Properties"]["SslPolicy"]
    assert rules_hit(tpl) == {"E9101"}


def test_http_listener_forwarding_triggers_e9102(base):
    tpl = copy.deepcopy(base)
    (https,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::Listener", Protocol="HTTPS")
    (http,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::Listener", Protocol="HTTP")
    http["Properties"]["DefaultActions"] = copy.deepcopy(https["Properties"]["DefaultActions"])
    assert rules_hit(tpl) == {"E9102"}


def test_public_ip_on_the_service_triggers_e9103(base):
    tpl = copy.deepcopy(base)
    (service,) = resources_of(tpl, "AWS::ECS::Service")
    service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] = "ENABLED"
    assert "E9103" in rules_hit(tpl)


def test_server_group_open_to_the_world_triggers_e9104_and_e9105(base):
    tpl = copy.deepcopy(base)
    (service,) = resources_of(tpl, "AWS::ECS::Service")
    group = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"][0]["Ref"]
    props = tpl["Resources"][group]["Properties"]
    port = props["SecurityGroupIngress"][0]["FromPort"]
    props["SecurityGroupIngress"].append({"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                                          "CidrIp": "0.0.0.0/0"})
    assert {"E9104", "E9105"} <= rules_hit(tpl)


def test_alb_open_on_another_port_triggers_e9105(base):
    tpl = copy.deepcopy(base)
    (alb,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    group = alb["Properties"]["SecurityGroups"][0]["Ref"]
    tpl["Resources"][group]["Properties"]["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"})
    assert rules_hit(tpl) == {"E9105"}


def test_redis_without_tls_triggers_e9106(base):
    tpl = copy.deepcopy(base)
    (redis,) = resources_of(tpl, "AWS::ElastiCache::ReplicationGroup")
    redis["Properties"]["TransitEncryptionEnabled"] = False
    assert "E9106" in rules_hit(tpl)
    redis["Properties"]["TransitEncryptionEnabled"] = True
    redis["Properties"].pop("AuthToken")
    assert "E9106" in rules_hit(tpl)


def _auth_alarm(tpl: dict) -> tuple[str, dict]:
    for name, res in tpl["Resources"].items():
        if res["Type"] == "AWS::CloudWatch::Alarm" and "Auth" in json.dumps(res["Properties"].get("MetricName")):
            return name, res
    raise AssertionError("no auth-failure alarm in the shipped template")


def test_missing_alarm_triggers_e9107(base):
    tpl = copy.deepcopy(base)
    name, _ = _auth_alarm(tpl)
    del tpl["Resources"][name]
    for output in list(tpl.get("Outputs", {})):
        if name in json.dumps(tpl["Outputs"][output]):
            del tpl["Outputs"][output]
    assert rules_hit(tpl) == {"E9107"}


def test_alarm_threshold_50_triggers_e9107(base):
    tpl = copy.deepcopy(base)
    _, alarm = _auth_alarm(tpl)
    alarm["Properties"]["Threshold"] = 50
    assert rules_hit(tpl) == {"E9107"}


def test_alarm_without_sns_action_triggers_e9107(base):
    tpl = copy.deepcopy(base)
    _, alarm = _auth_alarm(tpl)
    alarm["Properties"]["AlarmActions"] = []
    assert "E9107" in rules_hit(tpl)


def test_missing_vpc_endpoint_triggers_e9108(base):
    tpl = copy.deepcopy(base)
    for name, res in list(tpl["Resources"].items()):
        if res["Type"] == "AWS::EC2::VPCEndpoint" and "secretsmanager" in json.dumps(res["Properties"]["ServiceName"]):
            del tpl["Resources"][name]
    assert rules_hit(tpl) == {"E9108"}


def test_alb_keeping_invalid_headers_triggers_e9109(base):
    tpl = copy.deepcopy(base)
    (alb,) = resources_of(tpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    for attr in alb["Properties"]["LoadBalancerAttributes"]:
        if attr["Key"] == "routing.http.drop_invalid_header_fields.enabled":
            attr["Value"] = "false"
    assert rules_hit(tpl) == {"E9109"}


def test_the_container_command_uses_real_serve_options(base):
    """The template and the Dockerfile start `mcpadmin serve` with flags that exist."""
    import re

    from tests.conftest import run_cli

    help_text = run_cli("serve", "--help").stdout
    (task,) = resources_of(base, "AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    assert container["EntryPoint"] == ["mcpadmin"] and container["Command"][0] == "serve"
    flags = [a for a in container["Command"] if isinstance(a, str) and a.startswith("--")]
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    flags += re.findall(r'"(--[a-z-]+)"', dockerfile)
    assert flags and all(f in help_text for f in flags), flags
