"""E9106: the shared key store (ElastiCache Redis) is encrypted and authenticated (R19)."""

from __future__ import annotations

from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from finops_mcp_admin.aws.rules._template import SOURCE, props, truthy

DYNAMIC_SECRET = "{{resolve:secretsmanager:"


def _literal_token(token: Any) -> bool:
    """True unless the token is a Secrets Manager dynamic reference (plain or inside Fn::Sub):
    a literal — or a Ref to a parameter — lands in the template, its parameters or the
    CloudFormation console."""
    if isinstance(token, str):
        return not token.startswith(DYNAMIC_SECRET)
    if isinstance(token, dict) and set(token) == {"Fn::Sub"}:
        body = token["Fn::Sub"]
        text = body[0] if isinstance(body, list) and body else body
        return not (isinstance(text, str) and text.startswith(DYNAMIC_SECRET) and text.endswith("}}"))
    return True


class ElastiCacheEncryptedWithAuth(CloudFormationLintRule):
    """The key store is encrypted in transit (required mode) and at rest, with AUTH from Secrets Manager."""

    id = "E9106"
    shortdesc = "ElastiCache encrypted and authenticated"
    description = ("Replication groups set TransitEncryptionEnabled, TransitEncryptionMode required "
                   "(never preferred: plaintext clients would be accepted) and AtRestEncryptionEnabled, "
                   "and authenticate with UserGroupIds or an AuthToken that is a Secrets Manager "
                   "dynamic reference, never a literal; no cache cluster without TLS")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "encryption", "R19"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ElastiCache::ReplicationGroup"]).items():
            group = props(res)
            path = ["Resources", name, "Properties"]
            if not truthy(group.get("TransitEncryptionEnabled")):
                matches.append(RuleMatch(path, f"{name}: TransitEncryptionEnabled must be true"))
            if group.get("TransitEncryptionMode") != "required":
                matches.append(RuleMatch(path, f"{name}: TransitEncryptionMode must be required "
                                               f"(is {group.get('TransitEncryptionMode')})"))
            if not truthy(group.get("AtRestEncryptionEnabled")):
                matches.append(RuleMatch(path, f"{name}: AtRestEncryptionEnabled must be true"))
            if "AuthToken" in group:
                if _literal_token(group["AuthToken"]):
                    matches.append(RuleMatch([*path, "AuthToken"], f"{name}: AuthToken must be a "
                                             f"{DYNAMIC_SECRET}...}} dynamic reference, not a literal"))
            elif not group.get("UserGroupIds"):
                matches.append(RuleMatch(path, f"{name}: no AuthToken or UserGroupIds: Redis without AUTH"))
        for name, res in cfn.get_resources(["AWS::ElastiCache::CacheCluster"]).items():
            if not truthy(props(res).get("TransitEncryptionEnabled")):
                matches.append(RuleMatch(["Resources", name, "Properties"],
                                         f"{name}: cache cluster without encryption in transit"))
        return matches

