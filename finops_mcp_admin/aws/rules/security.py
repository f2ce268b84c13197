"""cfn-lint custom rules (E91xx): the security properties of R18.3, R21, R23.2 and R23.5,
checked on the template itself — emulators such as moto ignore several of these resource types,
and a property checked before deployment is a property that cannot regress silently.

One class per rule, in the style of cfn-lint's own rules (id, description, source URL)."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch

SOURCE = "https://github.com/finops-mcp/finops-mcp-admin/blob/main/README.md#stack-rules"

#: ELB security policies that negotiate nothing below TLS 1.2.
TLS12_POLICIES = {
    "ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06", "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS-1-2-2017-01", "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-FS-1-2-2019-08", "ELBSecurityPolicy-FS-1-2-Res-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2020-10",
}
WORLD = {"0.0.0.0/0", "::/0"}
ENDPOINTS = {"s3": "Gateway", "logs": "Interface", "secretsmanager": "Interface",
             "ecr.api": "Interface", "ecr.dkr": "Interface", "sts": "Interface"}


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    props = resource.get("Properties", {})
    return props if isinstance(props, dict) else {}


def _ref(value: Any) -> str | None:
    """The logical id a value points at (Ref or Fn::GetAtt), else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).split(".")[0]
    return None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _ingress_rules(cfn: Any) -> list[tuple[str, list[str], dict[str, Any], str | None]]:
    """(group logical id or None, path, rule, defining resource) for inline and standalone rules."""
    out = []
    for name, res in cfn.get_resources(["AWS::EC2::SecurityGroup"]).items():
        for i, rule in enumerate(_props(res).get("SecurityGroupIngress", []) or []):
            if isinstance(rule, dict):
                out.append((name, ["Resources", name, "Properties", "SecurityGroupIngress", i], rule, name))
    for name, res in cfn.get_resources(["AWS::EC2::SecurityGroupIngress"]).items():
        props = _props(res)
        out.append((_ref(props.get("GroupId")), ["Resources", name, "Properties"], props, name))
    return out


def _alb_groups(cfn: Any) -> set[str]:
    groups = set()
    for res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::LoadBalancer"]).values():
        for sg in _props(res).get("SecurityGroups", []) or []:
            if _ref(sg):
                groups.add(_ref(sg))
    return groups


def _server_groups(cfn: Any) -> dict[str, str]:
    """Security groups of ECS services (the MCP server path): group -> service."""
    groups = {}
    for name, res in cfn.get_resources(["AWS::ECS::Service"]).items():
        vpc = (_props(res).get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
        for sg in vpc.get("SecurityGroups", []) or []:
            if _ref(sg):
                groups[_ref(sg)] = name
    return groups


def _strings(value: Any) -> list[str]:
    """Every string inside a value (ServiceName may be a plain string, Fn::Sub or Fn::Join)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _ports(rule: dict[str, Any]) -> tuple[Any, Any]:
    return rule.get("FromPort"), rule.get("ToPort")


class ListenerTlsPolicy(CloudFormationLintRule):
    """HTTPS listeners use a TLS ≥ 1.2 policy and a certificate (R18.2, R18.3)."""

    id = "E9101"
    shortdesc = "HTTPS listener TLS policy and certificate"
    description = "Every HTTPS/TLS listener names an ELB security policy that allows only TLS 1.2+ and has a certificate (R18.2, R18.3)"
    source_url = SOURCE
    tags = ["security", "tls", "R18"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::Listener"]).items():
            props = _props(res)
            if props.get("Protocol") not in ("HTTPS", "TLS"):
                continue
            path = ["Resources", name, "Properties"]
            policy = props.get("SslPolicy")
            if policy is None:
                matches.append(RuleMatch(path, f"{name}: no SslPolicy: the default policy allows TLS 1.0"))
            elif isinstance(policy, str) and policy not in TLS12_POLICIES:
                matches.append(RuleMatch(path + ["SslPolicy"], f"{name}: SslPolicy {policy} allows TLS below 1.2"))
            if not props.get("Certificates"):
                matches.append(RuleMatch(path, f"{name}: HTTPS listener without a certificate"))
        return matches


class HttpListenerRedirectsOnly(CloudFormationLintRule):
    """Plain HTTP listeners only redirect to HTTPS (R18.4)."""

    id = "E9102"
    shortdesc = "HTTP listeners only redirect"
    description = "An HTTP listener's actions (default and rule actions) must all be redirects to HTTPS (R18.4)"
    source_url = SOURCE
    tags = ["security", "tls", "R18"]

    @staticmethod
    def _bad(actions: Any) -> bool:
        if not isinstance(actions, list) or not actions:
            return True
        for action in actions:
            if not isinstance(action, dict) or action.get("Type") != "redirect":
                return True
            if (action.get("RedirectConfig") or {}).get("Protocol") != "HTTPS":
                return True
        return False

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        http_listeners = set()
        for name, res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::Listener"]).items():
            props = _props(res)
            if props.get("Protocol") != "HTTP":
                continue
            http_listeners.add(name)
            if self._bad(props.get("DefaultActions")):
                matches.append(RuleMatch(["Resources", name, "Properties", "DefaultActions"],
                                         f"{name}: HTTP listener must only redirect to HTTPS"))
        for name, res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::ListenerRule"]).items():
            props = _props(res)
            if _ref(props.get("ListenerArn")) in http_listeners and self._bad(props.get("Actions")):
                matches.append(RuleMatch(["Resources", name, "Properties", "Actions"],
                                         f"{name}: rule on an HTTP listener must only redirect to HTTPS"))
        return matches


class NoPublicIpInServerPath(CloudFormationLintRule):
    """No public IP on tasks or instances in the server path (R21.1)."""

    id = "E9103"
    shortdesc = "No public IP in the server path"
    description = "ECS services use AssignPublicIp DISABLED explicitly; instances and launch templates never associate a public IP (R21.1)"
    source_url = SOURCE
    tags = ["security", "network", "R21"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ECS::Service"]).items():
            vpc = (_props(res).get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
            if vpc.get("AssignPublicIp") != "DISABLED":
                matches.append(RuleMatch(["Resources", name, "Properties", "NetworkConfiguration"],
                                         f"{name}: AssignPublicIp must be DISABLED"))
        for name, res in cfn.get_resources(["AWS::EC2::Instance", "AWS::EC2::LaunchTemplate"]).items():
            props = _props(res)
            interfaces = props.get("NetworkInterfaces") or (props.get("LaunchTemplateData") or {}).get("NetworkInterfaces") or []
            for i, nic in enumerate(interfaces):
                if isinstance(nic, dict) and _truthy(nic.get("AssociatePublicIpAddress")):
                    matches.append(RuleMatch(["Resources", name, "Properties"],
                                             f"{name}: network interface {i} associates a public IP"))
        return matches


class ServerIngressOnlyFromAlb(CloudFormationLintRule):
    """The server's security group admits only the ALB's security group (R21.2, R21.3)."""

    id = "E9104"
    shortdesc = "Server ingress only from the ALB"
    description = "Every ingress rule of an ECS service's security group uses SourceSecurityGroupId of a load balancer's security group, never a CIDR (R21.3)"
    source_url = SOURCE
    tags = ["security", "network", "R21"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        server = _server_groups(cfn)
        albs = _alb_groups(cfn)
        for group, path, rule, resource in _ingress_rules(cfn):
            if group not in server:
                continue
            source = _ref(rule.get("SourceSecurityGroupId"))
            if rule.get("CidrIp") or rule.get("CidrIpv6") or rule.get("SourcePrefixListId") or source not in albs:
                matches.append(RuleMatch(path, f"{resource}: ingress to the server security group {group} "
                                               "must come only from the ALB security group"))
        return matches


class WorldOpenIngressOnlyAlbWebPorts(CloudFormationLintRule):
    """Ingress from anywhere only on 80/443 of the ALB (R21.2)."""

    id = "E9105"
    shortdesc = "World-open ingress only on the ALB's 80/443"
    description = "0.0.0.0/0 or ::/0 ingress is allowed only on ports 80 and 443 of a load balancer's security group (R21.2)"
    source_url = SOURCE
    tags = ["security", "network", "R21"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        albs = _alb_groups(cfn)
        for group, path, rule, resource in _ingress_rules(cfn):
            if rule.get("CidrIp") not in WORLD and rule.get("CidrIpv6") not in WORLD:
                continue
            if group not in albs:
                matches.append(RuleMatch(path, f"{resource}: open to the internet but not a load balancer's security group"))
            elif _ports(rule) not in ((80, 80), (443, 443)) or str(rule.get("IpProtocol")) not in ("tcp", "6"):
                matches.append(RuleMatch(path, f"{resource}: internet ingress on the ALB must be tcp 80 or 443 only"))
        return matches


class ElastiCacheEncryptedWithAuth(CloudFormationLintRule):
    """The shared key store is encrypted in transit and at rest, with AUTH (R19.6 store)."""

    id = "E9106"
    shortdesc = "ElastiCache encrypted and authenticated"
    description = "Replication groups enable TransitEncryptionEnabled and AtRestEncryptionEnabled and require AUTH (AuthToken or UserGroupIds); no unencrypted cache clusters"
    source_url = SOURCE
    tags = ["security", "encryption", "R19"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ElastiCache::ReplicationGroup"]).items():
            props = _props(res)
            path = ["Resources", name, "Properties"]
            if not _truthy(props.get("TransitEncryptionEnabled")):
                matches.append(RuleMatch(path, f"{name}: TransitEncryptionEnabled must be true"))
            if not _truthy(props.get("AtRestEncryptionEnabled")):
                matches.append(RuleMatch(path, f"{name}: AtRestEncryptionEnabled must be true"))
            if not props.get("AuthToken") and not props.get("UserGroupIds"):
                matches.append(RuleMatch(path, f"{name}: no AuthToken or UserGroupIds: Redis without AUTH"))
        for name, res in cfn.get_resources(["AWS::ElastiCache::CacheCluster"]).items():
            if not _truthy(_props(res).get("TransitEncryptionEnabled")):
                matches.append(RuleMatch(["Resources", name, "Properties"],
                                         f"{name}: cache cluster without encryption in transit"))
        return matches


class AuthFailureAlarm(CloudFormationLintRule):
    """An alarm fires on > 10 authentication failures in 5 minutes and notifies SNS (R23.2, R23.5)."""

    id = "E9107"
    shortdesc = "Auth-failure alarm wired to SNS"
    description = "A metric filter on auth_failure events feeds an alarm with threshold ≤ 10 over ≤ 5 minutes whose actions include an SNS topic (R23.2, R23.5)"
    source_url = SOURCE
    tags = ["security", "monitoring", "R23"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        metrics = set()
        for res in cfn.get_resources(["AWS::Logs::MetricFilter"]).values():
            props = _props(res)
            if "auth_failure" in json.dumps(props.get("FilterPattern", "")):
                for transform in props.get("MetricTransformations", []) or []:
                    if isinstance(transform, dict):
                        metrics.add((transform.get("MetricNamespace"), transform.get("MetricName")))
        if not metrics:
            return [RuleMatch(["Resources"], "no metric filter counts auth_failure events")]
        topics = set(cfn.get_resources(["AWS::SNS::Topic"]))
        problems = []
        for name, res in cfn.get_resources(["AWS::CloudWatch::Alarm"]).items():
            props = _props(res)
            if (props.get("Namespace"), props.get("MetricName")) not in metrics:
                continue
            path = ["Resources", name, "Properties"]
            window = _number(props.get("Period"), 10**9) * _number(
                props.get("DatapointsToAlarm", props.get("EvaluationPeriods")), 1)
            reasons = []
            if _number(props.get("Threshold"), 10**9) > 10:
                reasons.append(f"threshold {props.get('Threshold')} > 10")
            if window > 300:
                reasons.append(f"window {window}s > 300s")
            if props.get("Statistic") not in ("Sum", None) or props.get("ComparisonOperator") not in (
                    "GreaterThanThreshold", "GreaterThanOrEqualToThreshold"):
                reasons.append("must compare the Sum with GreaterThan[OrEqualTo]Threshold")
            if not any(_ref(a) in topics for a in props.get("AlarmActions", []) or []):
                reasons.append("AlarmActions include no SNS topic of this template")
            if not reasons:
                return []
            problems.append(RuleMatch(path, f"{name}: " + "; ".join(reasons)))
        return problems or [RuleMatch(["Resources"], "no CloudWatch alarm on the auth-failure metric")]


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class VpcEndpointsPresent(CloudFormationLintRule):
    """AWS API calls stay inside the VPC (R21.4)."""

    id = "E9108"
    shortdesc = "VPC endpoints present"
    description = "Gateway endpoint for S3 and interface endpoints for CloudWatch Logs, Secrets Manager, ECR (api, dkr) and STS (R21.4)"
    source_url = SOURCE
    tags = ["security", "network", "R21"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found: dict[str, str] = {}
        for res in cfn.get_resources(["AWS::EC2::VPCEndpoint"]).values():
            props = _props(res)
            names = _strings(props.get("ServiceName", ""))
            for suffix in ENDPOINTS:
                if any(n.endswith("." + suffix) for n in names):
                    found[suffix] = props.get("VpcEndpointType", "Gateway")
        missing = [f"{s} ({kind})" for s, kind in ENDPOINTS.items() if found.get(s) != kind]
        if missing:
            return [RuleMatch(["Resources"], "missing VPC endpoints: " + ", ".join(missing))]
        return []


class AlbDropsInvalidHeaders(CloudFormationLintRule):
    """The ALB drops HTTP headers with invalid names (request-smuggling defence)."""

    id = "E9109"
    shortdesc = "ALB drops invalid header fields"
    description = "Application load balancers set routing.http.drop_invalid_header_fields.enabled to true"
    source_url = SOURCE
    tags = ["security", "alb"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::LoadBalancer"]).items():
            props = _props(res)
            if props.get("Type", "application") != "application":
                continue
            attrs = {a.get("Key"): a.get("Value") for a in props.get("LoadBalancerAttributes", []) or []
                     if isinstance(a, dict)}
            if not _truthy(attrs.get("routing.http.drop_invalid_header_fields.enabled")):
                matches.append(RuleMatch(["Resources", name, "Properties"],
                                         f"{name}: set routing.http.drop_invalid_header_fields.enabled=true"))
        return matches
