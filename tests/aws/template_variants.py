"""Shared by the template and rule tests: the shipped template as plain dicts, and the E91xx
findings of a (deliberately broken) variant of it."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from finops_mcp_admin.aws.cloudformation import shipped_template, validate


@lru_cache(maxsize=1)
def _decoded() -> str:
    from cfnlint.decode.cfn_yaml import loads

    return json.dumps(loads(shipped_template()))  # plain dicts and lists


def shipped() -> dict[str, Any]:
    """A fresh, mutable copy of the shipped template."""
    return copy.deepcopy(json.loads(_decoded()))


def resources_of(tpl: dict, rtype: str, **props: Any) -> list[dict]:
    return [res for res in tpl["Resources"].values()
            if res["Type"] == rtype and all(res.get("Properties", {}).get(k) == v for k, v in props.items())]


def resource(tpl: dict, name: str) -> dict:
    return tpl["Resources"][name]["Properties"]


def findings(tpl: dict) -> list:
    return validate(json.dumps(tpl))


def rules_hit(tpl: dict) -> set[str]:
    return {f.rule for f in findings(tpl)}


def custom_rules_hit(tpl: dict) -> set[str]:
    """Only our E91xx rules (a mutation may also upset one of cfn-lint's own)."""
    return {rule for rule in rules_hit(tpl) if rule.startswith("E91")}
