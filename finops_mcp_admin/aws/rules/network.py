"""E9103, E9104, E9105, E9108: where the server runs and who can reach it (R21)."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from finops_mcp_admin.aws.rules._template import (
    SOURCE,
    Network,
    alb_groups,
    awsvpc,
    ingress_rules,
    internet_routes,
    network,
    port,
    props,
    ref,
    route_tables_of,
    server_groups,
    service_route_tables,
    strings,
    truthy,
    values,
)

EVERYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
PROTOCOLS = {"-1": "all", "all": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}
#: Endpoints the service needs with no internet route (R21.4): service suffix -> endpoint type.
ENDPOINTS = {"s3": "Gateway", "logs": "Interface", "secretsmanager": "Interface",
             "ecr.api": "Interface", "ecr.dkr": "Interface"}


class ServerInPrivateSubnets(CloudFormationLintRule):
    """The server runs without a public IP, in subnets whose routes reach no internet gateway (R21.1)."""

    id = "E9103"
    shortdesc = "Server in private subnets"
    description = ("ECS services use AssignPublicIp DISABLED and subnets of this template whose route "
                   "tables have no route to an internet gateway; instances never get a public IP (R21.1)")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "network", "R21"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        subnets = cfn.get_resources(["AWS::EC2::Subnet"])
        for name, res in cfn.get_resources(["AWS::ECS::Service"]).items():
            path = ["Resources", name, "Properties", "NetworkConfiguration"]
            config = awsvpc(res)
            if config.get("AssignPublicIp") != "DISABLED":
                matches.append(RuleMatch(path, f"{name}: AssignPublicIp must be DISABLED"))
            listed = config.get("Subnets")
            if not isinstance(listed, list) or not listed:
                matches.append(RuleMatch(path, f"{name}: Subnets must list subnets of this template"))
                continue
            for subnet in listed:
                matches += self._subnet(cfn, name, path, ref(subnet), subnets)
        for name, res in cfn.get_resources(["AWS::EC2::Instance", "AWS::EC2::LaunchTemplate"]).items():
            spec = props(res)
            launch = spec.get("LaunchTemplateData") or {}
            nics = spec.get("NetworkInterfaces") or launch.get("NetworkInterfaces")
            for i, nic in enumerate(nics or []):
                if isinstance(nic, dict) and truthy(nic.get("AssociatePublicIpAddress")):
                    matches.append(RuleMatch(["Resources", name, "Properties"],
                                             f"{name}: network interface {i} associates a public IP"))
        return matches

    @staticmethod
    def _subnet(cfn: Any, service: str, path: list[Any], subnet: str | None,
                subnets: dict[str, Any]) -> list[RuleMatch]:
        if subnet not in subnets:
            return [RuleMatch(path, f"{service}: subnet {subnet or '(not a Ref)'} is not a subnet of this "
                                    "template: its routes cannot be checked")]
        if truthy(props(subnets[subnet]).get("MapPublicIpOnLaunch")):
            return [RuleMatch(path, f"{service}: subnet {subnet} maps public IPs on launch")]
        tables = route_tables_of(cfn, subnet)
        if not tables:
            return [RuleMatch(path, f"{service}: subnet {subnet} has no route table association "
                                    "(the VPC's main route table would apply, unchecked)")]
        return [RuleMatch(path, f"{service}: subnet {subnet} routes to an internet gateway ({route})")
                for table in tables for route in internet_routes(cfn, table)]


class ServerIngressOnlyFromAlb(CloudFormationLintRule):
    """The server's security group admits only the ALB's security group (R21.2, R21.3)."""

    id = "E9104"
    shortdesc = "Server ingress only from the ALB"
    description = ("Every ingress rule of an ECS service's security group uses SourceSecurityGroupId of "
                   "a load balancer's security group, never a CIDR (R21.3)")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "network", "R21"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        server = server_groups(cfn)
        albs = alb_groups(cfn)
        for group, path, rule, resource in ingress_rules(cfn):
            if group not in server:
                continue
            source = ref(rule.get("SourceSecurityGroupId"))
            by_address = rule.get("CidrIp") or rule.get("CidrIpv6") or rule.get("SourcePrefixListId")
            if by_address or source not in albs:
                matches.append(RuleMatch(path, f"{resource}: ingress to the server security group {group} "
                                               "must come only from the ALB security group"))
        return matches


Entry = tuple[list[Any], str, str, int, int, Network]


def _entries(cfn: Any, rule: dict[str, Any], path: list[Any], resource: str) -> list[Entry]:
    """(path, resource, protocol, from, to, network) per resolvable CIDR of an ingress rule."""
    raw = str(rule.get("IpProtocol", "")).lower()
    protocol = PROTOCOLS.get(raw, raw)
    low, high = port(rule.get("FromPort")), port(rule.get("ToPort"))
    if protocol == "all" or low is None or high is None or low < 0:
        low, high = 0, 65535  # unknown or "all" ports: assume the widest
    out = []
    for key in ("CidrIp", "CidrIpv6"):
        if key not in rule:
            continue
        for value in values(cfn, rule[key]) or []:  # unresolvable (e.g. an import): not judged
            net = network(value)
            if net is not None:
                out.append((path, resource, protocol, low, high, net))
    return out


def _covers_everything(nets: list[Network]) -> bool:
    v4 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 4))
    v6 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 6))
    return v4 == [EVERYWHERE[0]] or v6 == [EVERYWHERE[1]]


class WorldOpenIngressOnlyAlbWebPorts(CloudFormationLintRule):
    """Ingress from anywhere only on 80/443 of the ALB (R21.2)."""

    id = "E9105"
    shortdesc = "World-open ingress only on the ALB's 80/443"
    description = ("Ingress whose CIDRs together cover the whole address space (0.0.0.0/0, or "
                   "0.0.0.0/1 + 128.0.0.0/1, ...) is allowed only on tcp 80 and 443 of a load "
                   "balancer's security group; ports given as strings count the same (R21.2)")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "network", "R21"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        albs = alb_groups(cfn)
        by_group: dict[str | None, list[Entry]] = defaultdict(list)
        for group, path, rule, resource in ingress_rules(cfn):
            by_group[group] += _entries(cfn, rule, path, resource)
        flagged: dict[str, RuleMatch] = {}
        for group, entries in by_group.items():
            for protocol in {e[2] for e in entries}:
                applying = [e for e in entries if e[2] in (protocol, "all")]
                for start in {e[3] for e in applying}:
                    open_here = [e for e in applying if e[3] <= start <= e[4]]
                    if not _covers_everything([e[5] for e in open_here]):
                        continue
                    web = group in albs and protocol == "tcp" and start in (80, 443)
                    for e in open_here:
                        if web and e[2] == "tcp" and e[3] == e[4] == start:
                            continue
                        flagged[repr(e[0])] = RuleMatch(
                            e[0], f"{e[1]}: {protocol} port {start} of {group} is open to the whole "
                                  "internet; only tcp 80/443 of a load balancer's security group may be")
        return list(flagged.values())


class VpcEndpointsPresent(CloudFormationLintRule):
    """AWS API calls stay inside the VPC, through endpoints that actually serve it (R21.4)."""

    id = "E9108"
    shortdesc = "VPC endpoints present and wired"
    description = ("Gateway endpoint for S3 on the service's route tables; interface endpoints with "
                   "private DNS for CloudWatch Logs, Secrets Manager, ECR (api, dkr), and ssmmessages "
                   "(plus kms for an encrypted session) when ECS Exec is enabled (R21.4)")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "network", "R21"]

    @staticmethod
    def _required(cfn: Any) -> dict[str, str]:
        required = dict(ENDPOINTS)
        services = cfn.get_resources(["AWS::ECS::Service"]).values()
        if any(truthy(props(s).get("EnableExecuteCommand")) for s in services):
            required["ssmmessages"] = "Interface"
        for cluster in cfn.get_resources(["AWS::ECS::Cluster"]).values():
            config = (props(cluster).get("Configuration") or {}).get("ExecuteCommandConfiguration") or {}
            if config.get("KmsKeyId"):
                required["kms"] = "Interface"
        return required

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        required = self._required(cfn)
        found: dict[str, str] = {}
        for name, res in cfn.get_resources(["AWS::EC2::VPCEndpoint"]).items():
            endpoint = props(res)
            kind = endpoint.get("VpcEndpointType", "Gateway")
            names = strings(endpoint.get("ServiceName", ""))
            for suffix in required:
                if any(n.endswith("." + suffix) for n in names):
                    found[suffix] = kind
            path = ["Resources", name, "Properties"]
            if kind == "Interface" and not truthy(endpoint.get("PrivateDnsEnabled")):
                matches.append(RuleMatch(path, f"{name}: interface endpoint without PrivateDnsEnabled: "
                                               "the SDKs' default names would still go to the internet"))
            if kind == "Gateway" and any(n.endswith(".s3") for n in names):
                tables = {ref(t) for t in endpoint.get("RouteTableIds", []) or []}
                missing = sorted(service_route_tables(cfn) - tables)
                if not tables or missing:
                    matches.append(RuleMatch(path, f"{name}: S3 gateway endpoint not on the service's route "
                                                   f"tables ({', '.join(missing) or 'none listed'})"))
        absent = [f"{s} ({kind})" for s, kind in required.items() if found.get(s) != kind]
        if absent:
            matches.append(RuleMatch(["Resources"], "missing VPC endpoints: " + ", ".join(absent)))
        return matches
