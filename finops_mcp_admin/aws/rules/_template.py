"""Reading a decoded CloudFormation template the way the E91xx rules need it: references,
parameter values, security-group rules and the routes of the service's subnets.

Not a rule module (the leading underscore keeps cfn-lint from loading it as one)."""

from __future__ import annotations

import ipaddress
from typing import Any

SOURCE = "https://github.com/finops-mcp/finops-mcp-admin/blob/main/README.md#stack-rules"
NO_VALUE = {"Ref": "AWS::NoValue"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def props(resource: Any) -> dict[str, Any]:
    """A resource's Properties (empty when absent or malformed)."""
    value = resource.get("Properties", {}) if isinstance(resource, dict) else {}
    return value if isinstance(value, dict) else {}


def ref(value: Any) -> str | None:
    """The logical id a value points at (Ref or Fn::GetAtt), else None."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0]) if isinstance(target, list) else str(target).split(".")[0]
    return None


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def strings(value: Any) -> list[str]:
    """Every string inside a value (a plain string, Fn::Sub, Fn::Join, ...)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def parameters(cfn: Any) -> dict[str, Any]:
    params = (getattr(cfn, "template", None) or {}).get("Parameters", {})
    return params if isinstance(params, dict) else {}


def values(cfn: Any, value: Any) -> list[Any] | None:
    """The literal values a property can take at deploy time: a literal itself; a Ref to a
    parameter gives its Default and every AllowedValue; Fn::If gives both branches.
    None when the value cannot be known from the template (then a rule must not guess)."""
    if not isinstance(value, dict):
        return [value]
    if isinstance(value.get("Ref"), str):
        param = parameters(cfn).get(value["Ref"])
        if not isinstance(param, dict):
            return None
        found = ([param["Default"]] if "Default" in param else []) + list(param.get("AllowedValues") or [])
        return found or None
    branches = value.get("Fn::If")
    if isinstance(branches, list) and len(branches) == 3:
        out: list[Any] = []
        for branch in branches[1:]:
            if branch == NO_VALUE:
                continue
            resolved = values(cfn, branch)
            if resolved is None:
                return None
            out += resolved
        return out
    return None


def port(value: Any) -> int | None:
    """A port as an int: CloudFormation accepts 443 and "443" alike."""
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def network(value: Any) -> Network | None:
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return None


# --- security groups ------------------------------------------------------------------------


def ingress_rules(cfn: Any) -> list[tuple[str | None, list[Any], dict[str, Any], str]]:
    """(group logical id, path, rule, defining resource) for inline and standalone rules."""
    out: list[tuple[str | None, list[Any], dict[str, Any], str]] = []
    for name, res in cfn.get_resources(["AWS::EC2::SecurityGroup"]).items():
        for i, rule in enumerate(props(res).get("SecurityGroupIngress", []) or []):
            if isinstance(rule, dict):
                out.append((name, ["Resources", name, "Properties", "SecurityGroupIngress", i], rule, name))
    for name, res in cfn.get_resources(["AWS::EC2::SecurityGroupIngress"]).items():
        rule = props(res)
        out.append((ref(rule.get("GroupId")), ["Resources", name, "Properties"], rule, name))
    return out


def alb_groups(cfn: Any) -> set[str]:
    """Security groups of the template's load balancers."""
    groups = set()
    for res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::LoadBalancer"]).values():
        for sg in props(res).get("SecurityGroups", []) or []:
            if ref(sg):
                groups.add(str(ref(sg)))
    return groups


def awsvpc(service: Any) -> dict[str, Any]:
    """The AwsvpcConfiguration of an ECS service (empty when absent)."""
    config = (props(service).get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
    return config if isinstance(config, dict) else {}


def server_groups(cfn: Any) -> dict[str, str]:
    """Security groups of ECS services (the MCP server path): group -> service."""
    groups = {}
    for name, res in cfn.get_resources(["AWS::ECS::Service"]).items():
        for sg in awsvpc(res).get("SecurityGroups", []) or []:
            if ref(sg):
                groups[str(ref(sg))] = name
    return groups


# --- routing --------------------------------------------------------------------------------


def route_tables_of(cfn: Any, subnet: str) -> list[str]:
    """Route tables explicitly associated with a subnet of this template."""
    return [str(ref(props(res).get("RouteTableId")))
            for res in cfn.get_resources(["AWS::EC2::SubnetRouteTableAssociation"]).values()
            if ref(props(res).get("SubnetId")) == subnet and ref(props(res).get("RouteTableId"))]


def internet_routes(cfn: Any, table: str) -> list[str]:
    """Routes of a route table that lead to an internet gateway (also egress-only)."""
    gateways = set(cfn.get_resources(["AWS::EC2::InternetGateway", "AWS::EC2::EgressOnlyInternetGateway"]))
    out = []
    for name, res in cfn.get_resources(["AWS::EC2::Route"]).items():
        route = props(res)
        if ref(route.get("RouteTableId")) != table:
            continue
        for key in ("GatewayId", "EgressOnlyInternetGatewayId"):
            target = route.get(key)
            if ref(target) in gateways or (isinstance(target, str) and target.startswith(("igw-", "eigw-"))):
                out.append(name)
    return out


def service_route_tables(cfn: Any) -> set[str]:
    """Route tables of the subnets ECS services run in."""
    tables: set[str] = set()
    for service in cfn.get_resources(["AWS::ECS::Service"]).values():
        for subnet in awsvpc(service).get("Subnets", []) or []:
            if ref(subnet):
                tables.update(route_tables_of(cfn, str(ref(subnet))))
    return tables
