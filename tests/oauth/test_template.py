"""The stack's AuthMode/OAuthIssuer parameters reach the server as the settings it needs."""

from __future__ import annotations

import re

import pytest

from finops_mcp_admin.config import load_settings
from finops_mcp_admin.server.oauth.setup import oauth_setup
from finops_mcp_admin.server.run import ServeOptions, _scope_policy
from tests.aws.template_variants import resources_of, shipped

PARAMS = {"AuthMode": "oauth", "OAuthIssuer": "https://login.example.com/tenant",
          "DomainName": "mcp.example.com"}


def _container_env(tpl: dict, params: dict[str, str]) -> dict[str, str]:
    (task,) = resources_of(tpl, "AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    env = {}
    for entry in container["Environment"]:
        if "Fn::If" in entry:
            continue
        value = entry["Value"]
        if isinstance(value, dict) and "Ref" in value:
            value = params.get(value["Ref"], "")
        elif isinstance(value, dict) and "Fn::Sub" in value:
            value = re.sub(r"\$\{(\w+)\}", lambda m: params.get(m.group(1), "x"), value["Fn::Sub"])
        env[entry["Name"]] = value
    return env


def test_stack_parameters_configure_the_resource_server(monkeypatch, tmp_path):
    env = _container_env(shipped(), PARAMS)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("MCPADMIN_AUTH", "MCPADMIN_OAUTH_ISSUER", "MCPADMIN_PUBLIC_URL"):
        monkeypatch.setenv(name, env[name])
    settings = load_settings()
    # The container's command line: --host 0.0.0.0 --behind-proxy (the ALB terminates TLS).
    opts = ServeOptions(host="0.0.0.0", behind_proxy=True)
    setup = oauth_setup(settings, opts, _scope_policy(settings, opts))
    assert setup is not None and setup.issuer == "https://login.example.com/tenant"
    assert setup.resource_url == "https://mcp.example.com/mcp"
    assert setup.step.verifier.settings.audience == "https://mcp.example.com/mcp"


def test_default_parameters_keep_api_key_mode(monkeypatch, tmp_path):
    tpl = shipped()
    defaults = {k: str(v.get("Default", "")) for k, v in tpl["Parameters"].items()}
    env = _container_env(tpl, {**defaults, "DomainName": "mcp.example.com"})
    assert env["MCPADMIN_AUTH"] == "api-key" and env["MCPADMIN_OAUTH_ISSUER"] == ""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("MCPADMIN_AUTH", "MCPADMIN_OAUTH_ISSUER"):
        monkeypatch.setenv(name, env[name])
    settings = load_settings()
    opts = ServeOptions(host="0.0.0.0", behind_proxy=True)
    assert oauth_setup(settings, opts, _scope_policy(settings, opts)) is None


@pytest.mark.parametrize(("issuer", "ok"), [
    ("", True), ("https://login.example.com", True), ("https://login.example.com/realms/mcp", True),
    ("http://login.example.com", False), ("https://login.example.com/?x=1", False),
    ("https://login.example.com/#f", False)])
def test_oauth_issuer_parameter_pattern(issuer, ok):
    pattern = re.compile(shipped()["Parameters"]["OAuthIssuer"]["AllowedPattern"])
    assert bool(pattern.fullmatch(issuer)) is ok


def test_oauth_mode_rule_needs_issuer_and_egress():
    rule = shipped()["Rules"]["OAuthNeedsIssuerAndEgress"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuthMode"}, "api-key"]}]}
    asserts = [a["Assert"] for a in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "OAuthIssuer"}, ""]}]} in asserts
    assert {"Fn::Equals": [{"Ref": "EnableNatEgress"}, "true"]} in asserts
