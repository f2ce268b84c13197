"""E9101, E9102, E9109: the internet-facing edge — TLS policy, what plain HTTP may answer, and
header hygiene of the application load balancer (R18)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from finops_mcp_admin.aws.rules._template import SOURCE, props, ref, truthy, values

#: ELB security policy names state their minimum protocol version: TLS13-1-2 / TLS13-1-3 (TLS
#: 1.3 with a 1.2 or 1.3 floor), TLS-1-2 and FS-1-2 (TLS 1.2 only). Variants (Res, Ext1, FIPS,
#: PQ for hybrid post-quantum key exchange, ...) and dates follow. Everything else —
#: ELBSecurityPolicy-2016-08, TLS-1-0/1-1, TLS13-1-0/1-1, FS-2018-06 — still accepts TLS 1.0 or 1.1.
TLS12_POLICY = re.compile(
    r"^ELBSecurityPolicy-(?:TLS13-1-[23]|TLS-1-2|FS-1-2)(?:-[A-Za-z0-9]+)*-\d{4}-\d{2}$")
MCP_PATH = "/mcp*"


class ListenerTlsPolicy(CloudFormationLintRule):
    """HTTPS/TLS listeners use a TLS ≥ 1.2 policy and a certificate (R18.2, R18.3)."""

    id = "E9101"
    shortdesc = "HTTPS listener TLS policy and certificate"
    description = ("Every HTTPS/TLS listener names an ELB security policy whose floor is TLS 1.2 "
                   "(Refs resolved to the parameter's default and allowed values) and has a certificate")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "tls", "R18"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::Listener"]).items():
            listener = props(res)
            if listener.get("Protocol") not in ("HTTPS", "TLS"):
                continue
            path = ["Resources", name, "Properties"]
            if not listener.get("Certificates"):
                matches.append(RuleMatch(path, f"{name}: HTTPS listener without a certificate"))
            if listener.get("SslPolicy") is None:
                matches.append(RuleMatch(path, f"{name}: no SslPolicy: CloudFormation's default "
                                               "(ELBSecurityPolicy-2016-08) allows TLS 1.0"))
                continue
            policies = values(cfn, listener["SslPolicy"])
            if policies is None:
                matches.append(RuleMatch([*path, "SslPolicy"], f"{name}: SslPolicy cannot be resolved "
                                                               "to a policy name; cannot verify TLS 1.2+"))
                continue
            for policy in policies:
                if not (isinstance(policy, str) and TLS12_POLICY.match(policy)):
                    matches.append(RuleMatch([*path, "SslPolicy"],
                                             f"{name}: SslPolicy {policy} allows TLS below 1.2"))
        return matches


def _redirects_to_https(actions: Any) -> bool:
    return (isinstance(actions, list) and len(actions) == 1 and isinstance(actions[0], dict)
            and actions[0].get("Type") == "redirect"
            and (actions[0].get("RedirectConfig") or {}).get("Protocol") == "HTTPS")


def _refuses_mcp(rule: dict[str, Any]) -> bool:
    """Exactly: path-pattern /mcp* and nothing else as condition, a fixed 403 as the only action."""
    actions, conditions = rule.get("Actions"), rule.get("Conditions")
    if not (isinstance(actions, list) and len(actions) == 1 and isinstance(actions[0], dict)):
        return False
    action = actions[0]
    if action.get("Type") != "fixed-response" or str((action.get("FixedResponseConfig") or {})
                                                         .get("StatusCode")) != "403":
        return False
    if not (isinstance(conditions, list) and len(conditions) == 1 and isinstance(conditions[0], dict)):
        return False
    condition = conditions[0]
    patterns = (condition.get("PathPatternConfig") or {}).get("Values") or condition.get("Values")
    return condition.get("Field") == "path-pattern" and patterns == [MCP_PATH]


class HttpListenerRedirectsOnly(CloudFormationLintRule):
    """Plain HTTP redirects to HTTPS, except /mcp*, which is refused (R18.4, R18.6)."""

    id = "E9102"
    shortdesc = "HTTP listeners redirect, /mcp* refused"
    description = ("An HTTP listener's default action redirects to HTTPS and its only listener rule "
                   "answers path /mcp* with a fixed 403: a bearer key sent in plaintext must not be "
                   "taught to retry (R18.4, R18.6)")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "tls", "R18"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        listeners = cfn.get_resources(["AWS::ElasticLoadBalancingV2::Listener"])
        http = {name: props(res) for name, res in listeners.items() if props(res).get("Protocol") == "HTTP"}
        refused = set()
        for name, res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::ListenerRule"]).items():
            rule = props(res)
            listener = ref(rule.get("ListenerArn"))
            if listener not in http:
                continue
            if _refuses_mcp(rule):
                refused.add(listener)
            else:
                matches.append(RuleMatch(["Resources", name, "Properties"],
                                         f"{name}: the only rule allowed on HTTP listener {listener} "
                                         f"answers path-pattern {MCP_PATH} with a fixed 403"))
        for name in sorted(http):
            path = ["Resources", name, "Properties"]
            if not _redirects_to_https(http[name].get("DefaultActions")):
                matches.append(RuleMatch([*path, "DefaultActions"],
                                         f"{name}: HTTP listener's default action must redirect to HTTPS"))
            if name not in refused:
                matches.append(RuleMatch(path, f"{name}: no listener rule answers {MCP_PATH} with a fixed "
                                               "403 (a redirect would make clients resend the key)"))
        return matches


class AlbDropsInvalidHeaders(CloudFormationLintRule):
    """The ALB drops HTTP headers with invalid names (request-smuggling defence)."""

    id = "E9109"
    shortdesc = "ALB drops invalid header fields"
    description = "Application load balancers set routing.http.drop_invalid_header_fields.enabled to true"
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "alb"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ElasticLoadBalancingV2::LoadBalancer"]).items():
            alb = props(res)
            if alb.get("Type", "application") != "application":
                continue
            attrs = {a.get("Key"): a.get("Value") for a in alb.get("LoadBalancerAttributes", []) or []
                     if isinstance(a, dict)}
            if not truthy(attrs.get("routing.http.drop_invalid_header_fields.enabled")):
                matches.append(RuleMatch(["Resources", name, "Properties"],
                                         f"{name}: set routing.http.drop_invalid_header_fields.enabled=true"))
        return matches
