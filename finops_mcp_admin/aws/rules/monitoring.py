"""E9107: authentication failures reach a human — exactly as R23.2 and R23.5 say."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from finops_mcp_admin.aws.rules._filter_pattern import UnsupportedPattern, matches, sample_events
from finops_mcp_admin.aws.rules._template import SOURCE, number, props, ref, truthy
from finops_mcp_admin.security_events import schema

#: R23.2: more than 10 failures summed over one 5-minute period, 1 of 1 datapoints.
R23_2 = (("Statistic", "Sum"), ("Period", 300), ("EvaluationPeriods", 1), ("DatapointsToAlarm", 1),
         ("Threshold", 10), ("ComparisonOperator", "GreaterThanThreshold"))


def metric_key(namespace: Any, metric: Any) -> str:
    """One (namespace, metric name) pair as a comparable key, whatever intrinsics they hold."""
    return json.dumps([namespace, metric], sort_keys=True)


def sns_wiring_reasons(alarm: dict[str, Any], topics: set[str], requirement: str = "") -> list[str]:
    """How an alarm fails to notify a human: actions disabled, or no SNS topic of the template."""
    reasons = []
    if "ActionsEnabled" in alarm and not truthy(alarm["ActionsEnabled"]):
        reasons.append("ActionsEnabled is false")
    if not any(ref(a) in topics for a in alarm.get("AlarmActions", []) or []):
        reasons.append(f"AlarmActions include no SNS topic of this template{requirement}")
    return reasons


def container_log_groups(cfn: Any) -> set[str]:
    """Log groups (logical ids) the task definitions' containers write to with awslogs."""
    groups = set()
    for res in cfn.get_resources(["AWS::ECS::TaskDefinition"]).values():
        for container in props(res).get("ContainerDefinitions", []) or []:
            config = (container.get("LogConfiguration") or {}) if isinstance(container, dict) else {}
            group = ref((config.get("Options") or {}).get("awslogs-group"))
            if config.get("LogDriver") == "awslogs" and group:
                groups.add(group)
    return groups


def r23_reasons(alarm: dict[str, Any], topics: set[str]) -> list[str]:
    """How an alarm differs from R23.2 / R23.5 (empty when it is exactly right)."""
    reasons = []
    for field, expected in R23_2:
        actual = alarm.get(field, 1 if field == "DatapointsToAlarm" else None)
        same = number(actual, float("nan")) == expected if isinstance(expected, int) else actual == expected
        if not same:
            reasons.append(f"{field} {actual} (R23.2: {expected})")
    return reasons + sns_wiring_reasons(alarm, topics, " (R23.5)")


class AuthFailureAlarm(CloudFormationLintRule):
    """A metric filter that really counts the server's auth_failure lines feeds an R23.2 alarm to SNS."""

    id = "E9107"
    shortdesc = "Auth-failure alarm exactly as R23.2, wired to SNS"
    description = ("A metric filter on the container's log group whose pattern matches an auth_failure "
                   "line written by the server's own event writer (and not other events) counts into "
                   "a per-stack namespace; an alarm on it is Sum over 300 s, 1 of 1 datapoints, "
                   "GreaterThanThreshold 10, actions enabled, notifying an SNS topic (R23.2, R23.5)")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "monitoring", "R23"]

    def _counted(self, cfn: Any, problems: list[RuleMatch]) -> dict[str, str]:
        """(namespace, metric) keys counted by correct auth-failure filters -> filter name."""
        events = sample_events()
        groups = container_log_groups(cfn)
        counted = {}
        for name, res in cfn.get_resources(["AWS::Logs::MetricFilter"]).items():
            spec, path = props(res), ["Resources", name, "Properties"]
            pattern = spec.get("FilterPattern")
            if not isinstance(pattern, str):
                continue
            try:
                if not matches(pattern, events[schema.AUTH_FAILURE]):
                    continue
                if matches(pattern, events[schema.CORS_REJECTED]):
                    problems.append(RuleMatch(path, f"{name}: the pattern also counts other events"))
                    continue
            except UnsupportedPattern as exc:
                if schema.AUTH_FAILURE in pattern:
                    problems.append(RuleMatch(path, f"{name}: cannot check the pattern: {exc}"))
                continue
            if ref(spec.get("LogGroupName")) not in groups:
                problems.append(RuleMatch(path, f"{name}: not on the log group the server's container "
                                                f"writes to ({', '.join(sorted(groups)) or 'none'})"))
                continue
            for transform in spec.get("MetricTransformations", []) or []:
                namespace = transform.get("MetricNamespace") if isinstance(transform, dict) else None
                if "${AWS::StackName}" not in json.dumps(namespace):
                    problems.append(RuleMatch(path, f"{name}: namespace {namespace} is shared by every "
                                                    "stack in the account; include ${AWS::StackName}"))
                elif str(transform.get("MetricValue")) != "1":
                    problems.append(RuleMatch(path, f"{name}: MetricValue must be 1 (one per failure)"))
                else:
                    counted[metric_key(namespace, transform.get("MetricName"))] = name
        return counted

    def match(self, cfn: Any) -> list[RuleMatch]:
        problems: list[RuleMatch] = []
        try:
            counted = self._counted(cfn, problems)
        except ImportError as exc:
            return [RuleMatch(["Resources"], f"cannot check the auth-failure filter: {exc}")]
        if not counted:
            return problems or [RuleMatch(["Resources"], "no metric filter on the server's log group "
                                                         "counts the server's auth_failure events")]
        topics = set(cfn.get_resources(["AWS::SNS::Topic"]))
        alarm_problems = []
        for name, res in cfn.get_resources(["AWS::CloudWatch::Alarm"]).items():
            alarm = props(res)
            if metric_key(alarm.get("Namespace"), alarm.get("MetricName")) not in counted:
                continue
            reasons = r23_reasons(alarm, topics)
            if not reasons:
                return problems  # one exact alarm suffices; other alarms may watch the metric too
            alarm_problems.append(RuleMatch(["Resources", name, "Properties"],
                                            f"{name}: " + "; ".join(reasons)))
        return problems + (alarm_problems or [RuleMatch(["Resources"],
                                                        "no CloudWatch alarm on the auth-failure metric")])
