"""E9107: the auth-failure metric filter is checked against a line the server's own event writer
produces, and the alarm on it must be exactly R23.2 — every branch pinned by a broken variant;
plus the small CloudWatch filter-pattern matcher the rule relies on."""

from __future__ import annotations

import json

import pytest

from finops_mcp_admin.aws.rules._filter_pattern import UnsupportedPattern, matches, parse, sample_events
from tests.aws.template_variants import custom_rules_hit, resource, rules_hit, shipped

# --- the matcher ------------------------------------------------------------------------------

LINE = json.dumps({"event": "auth_failure", "reason": "invalid_key", "status": 401, "nested": {"a": "b"}})


@pytest.mark.parametrize(("pattern", "expected"), [
    ('{ $.event = "auth_failure" }', True),
    ('{ $.event = "cors_rejected" }', False),
    ('{$.event="auth_failure"}', True),
    ('{ $.event != "auth_failure" }', False),
    ('{ $.event != "cors_rejected" }', True),
    ('{ $.event = "auth_*" }', True),
    ('{ $.event = "auth" }', False),
    ('{ $.event = "auth_failure" && $.reason = "invalid_key" }', True),
    ('{ $.event = "auth_failure" && $.reason = "expired" }', False),
    ('{ $.event = "nothing" || $.reason = "invalid_key" }', True),
    ('{ $.status = 401 }', True),
    ('{ $.status = "401" }', False),
    ('{ $.nested.a = "b" }', True),
    ('{ $.missing = "x" }', False),
    ('{ $.missing != "x" }', False),
])
def test_filter_pattern_matcher_follows_cloudwatch_semantics(pattern, expected):
    assert matches(pattern, LINE) is expected


@pytest.mark.parametrize("pattern", ['auth_failure', '{ ($.event = "auth_failure") }',
                                     '{ $.event IS NULL }', '[ip, user, ...]'])
def test_syntax_outside_the_subset_is_refused_not_guessed(pattern):
    with pytest.raises(UnsupportedPattern):
        parse(pattern)


def test_non_json_lines_never_match():
    assert not matches('{ $.event = "auth_failure" }', "auth_failure from 203.0.113.7")


def test_sample_events_come_from_the_servers_writer():
    events = sample_events()
    auth = json.loads(events["auth_failure"])
    assert auth["event"] == "auth_failure" and auth["client_ip"] == "203.0.113.7" and auth["ts"].endswith("Z")
    assert json.loads(events["cors_rejected"])["event"] == "cors_rejected"


def test_the_shipped_filter_counts_the_real_auth_failure_line_and_nothing_else():
    pattern = resource(shipped(), "AuthFailuresMetricFilter")["FilterPattern"]
    events = sample_events()
    assert matches(pattern, events["auth_failure"])
    assert not matches(pattern, events["cors_rejected"])


# --- E9107 ------------------------------------------------------------------------------------

def _alarm(tpl: dict) -> dict:
    return resource(tpl, "AuthFailuresAlarm")


def _filter(tpl: dict) -> dict:
    return resource(tpl, "AuthFailuresMetricFilter")


def test_missing_alarm_triggers_e9107():
    tpl = shipped()
    del tpl["Resources"]["AuthFailuresAlarm"]
    assert rules_hit(tpl) == {"E9107"}


@pytest.mark.parametrize(("field", "value"), [
    ("Statistic", "Average"), ("Period", 60), ("Period", 600), ("EvaluationPeriods", 2),
    ("Threshold", 50), ("Threshold", 5), ("ComparisonOperator", "GreaterThanOrEqualToThreshold"),
    ("ActionsEnabled", False)])
def test_alarm_differing_from_r23_2_triggers_e9107(field, value):
    tpl = shipped()
    _alarm(tpl)[field] = value
    if field == "EvaluationPeriods":
        _alarm(tpl)["DatapointsToAlarm"] = 2  # 2 of 2: a burst in one period no longer alarms
    assert custom_rules_hit(tpl) == {"E9107"}


def test_alarm_without_sns_action_triggers_e9107():
    tpl = shipped()
    _alarm(tpl)["AlarmActions"] = []
    assert "E9107" in rules_hit(tpl)


@pytest.mark.parametrize("pattern", ['{ $.event = "auth_failures" }', '{ $.type = "auth_failure" }',
                                     '{ $.event = "AUTH_FAILURE" }'])
def test_filter_that_misses_the_servers_auth_failure_line_triggers_e9107(pattern):
    tpl = shipped()
    _filter(tpl)["FilterPattern"] = pattern
    assert rules_hit(tpl) == {"E9107"}


def test_filter_that_also_counts_other_events_triggers_e9107():
    tpl = shipped()
    _filter(tpl)["FilterPattern"] = '{ $.event = "*" }'
    assert rules_hit(tpl) == {"E9107"}


def test_filter_in_syntax_the_rule_cannot_check_triggers_e9107():
    tpl = shipped()
    _filter(tpl)["FilterPattern"] = '{ ($.event = "auth_failure") }'
    assert rules_hit(tpl) == {"E9107"}


def test_filter_on_another_log_group_triggers_e9107():
    tpl = shipped()
    _filter(tpl)["LogGroupName"] = {"Ref": "FlowLogGroup"}
    assert rules_hit(tpl) == {"E9107"}


def test_namespace_shared_by_every_stack_triggers_e9107():
    tpl = shipped()
    _filter(tpl)["MetricTransformations"][0]["MetricNamespace"] = "FinOpsMCP"
    _alarm(tpl)["Namespace"] = "FinOpsMCP"
    assert rules_hit(tpl) == {"E9107"}


def test_alarm_on_another_namespace_than_the_filter_triggers_e9107():
    tpl = shipped()
    _alarm(tpl)["Namespace"] = {"Fn::Sub": "Other/${AWS::StackName}"}
    assert rules_hit(tpl) == {"E9107"}
