"""E9112: the write-tool-call and ip_refused filters are checked against lines the server's own
event writer produces, and each must feed an alarm that fires on one event — every branch
pinned by a broken variant of the shipped template."""

from __future__ import annotations

import json

import pytest

from finops_mcp_admin.aws.rules._filter_pattern import matches, sample_events
from tests.aws.template_variants import custom_rules_hit, resource, rules_hit, shipped


def test_sample_events_hold_a_write_call_a_read_call_and_an_ip_refusal():
    events = sample_events()
    write = json.loads(events["tool_call:tools:write"])
    assert (write["event"], write["tool"], write["scope"]) == (
        "tool_call", "update_tagging_policy", "tools:write")
    assert json.loads(events["tool_call:tools:read"])["scope"] == "tools:read"
    assert json.loads(events["ip_refused"])["event"] == "ip_refused"


def test_the_shipped_filters_count_exactly_their_events():
    tpl, events = shipped(), sample_events()
    writes = resource(tpl, "WriteToolCallsMetricFilter")["FilterPattern"]
    refused = resource(tpl, "IpRefusedMetricFilter")["FilterPattern"]
    assert [name for name, line in events.items() if matches(writes, line)] == ["tool_call:tools:write"]
    assert [name for name, line in events.items() if matches(refused, line)] == ["ip_refused"]


@pytest.mark.parametrize("name", ["WriteToolCallsAlarm", "IpRefusedAlarm"])
def test_a_missing_alarm_triggers_e9112(name):
    tpl = shipped()
    del tpl["Resources"][name]
    assert rules_hit(tpl) == {"E9112"}


@pytest.mark.parametrize(("pattern", "why"), [
    ('{ $.event = "tool_call" }', "counts read calls too"),
    ('{ $.event = "tool_call" && $.scope = "tools-write" }', "counts nothing"),
    ('{ $.event = "tool_call" || $.event = "auth_failure" }', "counts auth failures"),
])
def test_a_write_filter_that_does_not_count_exactly_write_calls_triggers_e9112(pattern, why):
    tpl = shipped()
    resource(tpl, "WriteToolCallsMetricFilter")["FilterPattern"] = pattern
    assert rules_hit(tpl) == {"E9112"}, why


def test_an_ip_filter_on_the_wrong_event_triggers_e9112():
    tpl = shipped()
    resource(tpl, "IpRefusedMetricFilter")["FilterPattern"] = '{ $.event = "ip_refuse" }'
    assert rules_hit(tpl) == {"E9112"}


@pytest.mark.parametrize(("field", "value"), [("Threshold", 10), ("Statistic", "Average"),
                                              ("EvaluationPeriods", 3), ("ActionsEnabled", False)])
def test_an_alarm_that_does_not_fire_on_one_event_triggers_e9112(field, value):
    tpl = shipped()
    resource(tpl, "WriteToolCallsAlarm")[field] = value
    assert custom_rules_hit(tpl) == {"E9112"}


def test_an_alarm_without_an_sns_action_triggers_e9112():
    tpl = shipped()
    resource(tpl, "IpRefusedAlarm")["AlarmActions"] = []
    assert "E9112" in rules_hit(tpl)


def test_the_shipped_template_passes_e9112():
    assert "E9112" not in rules_hit(shipped())


def test_audit_alarms_shows_the_write_and_ip_alarms_as_the_stack_creates_them(cli, aws_env):
    import time

    import boto3

    kw = {"endpoint_url": aws_env["AWS_ENDPOINT_URL"], "region_name": "us-east-1"}
    cw, sns = boto3.client("cloudwatch", **kw), boto3.client("sns", **kw)
    stack = f"accessalarms{int(time.time() * 1000)}"
    topic = sns.create_topic(Name=f"{stack}-AlertTopic")["TopicArn"]
    tpl = shipped()
    for name in ("WriteToolCallsAlarm", "IpRefusedAlarm"):
        spec = resource(tpl, name)
        cw.put_metric_alarm(  # as CloudFormation would, with the template's own settings
            AlarmName=f"{stack}-{name}-ABC123", Namespace=f"FinOpsMcp/{stack}",
            MetricName=spec["MetricName"], Statistic=spec["Statistic"], Period=spec["Period"],
            EvaluationPeriods=spec["EvaluationPeriods"], DatapointsToAlarm=spec["DatapointsToAlarm"],
            Threshold=spec["Threshold"], ComparisonOperator=spec["ComparisonOperator"],
            TreatMissingData=spec["TreatMissingData"], AlarmActions=[topic])
    r = cli("audit", "alarms", "--stack", stack, "-o", "json")
    assert r.code == 0, r.stderr
    metrics = {row["metric"] for row in r.json()}
    assert metrics == {f"FinOpsMcp/{stack}/WriteToolCalls", f"FinOpsMcp/{stack}/IpRefused"}
