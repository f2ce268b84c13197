"""E9112: write-tool calls and IP-allowlist refusals reach a human at once (issue 15)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from finops_mcp_admin.aws.rules._filter_pattern import UnsupportedPattern, matches, sample_events
from finops_mcp_admin.aws.rules._template import SOURCE, number, props, ref
from finops_mcp_admin.aws.rules.monitoring import container_log_groups, metric_key, sns_wiring_reasons
from finops_mcp_admin.security_events import schema

WRITE_CALL, READ_CALL = f"{schema.TOOL_CALL}:tools:write", f"{schema.TOOL_CALL}:tools:read"
#: What must be alarmed on: (what, the sample line it must count, sample lines it must not count).
WATCHED = (("write-tool call", WRITE_CALL, (READ_CALL, schema.AUTH_FAILURE)),
           ("ip_refused", schema.IP_REFUSED, (schema.AUTH_FAILURE, READ_CALL)))
#: One event in one period fires: Sum > 0, or Sum >= 1.
FIRES_ON_ONE = {("GreaterThanThreshold", 0.0), ("GreaterThanOrEqualToThreshold", 1.0)}


def _counts(pattern: str, wanted: str, others: tuple[str, ...]) -> bool | None:
    """True: the pattern counts `wanted` and none of `others`; False: it also counts another
    event; None: it does not count `wanted`."""
    events = sample_events()
    if not matches(pattern, events[wanted]):
        return None
    return not any(matches(pattern, events[other]) for other in others)


def alarm_reasons(alarm: dict[str, Any], topics: set[str]) -> list[str]:
    """How an alarm falls short of "one event alerts at once" (empty when it does not)."""
    reasons = []
    firing = (alarm.get("ComparisonOperator"), number(alarm.get("Threshold"), float("nan")))
    if alarm.get("Statistic") != "Sum" or firing not in FIRES_ON_ONE:
        reasons.append("must fire on one event: Statistic Sum with GreaterThanThreshold 0")
    if number(alarm.get("EvaluationPeriods"), 0) != 1 or number(alarm.get("DatapointsToAlarm", 1), 0) != 1:
        reasons.append("EvaluationPeriods and DatapointsToAlarm must be 1")
    return reasons + sns_wiring_reasons(alarm, topics)


class AccessAlarms(CloudFormationLintRule):
    """Metric filters that count the server's real write-tool-call and ip_refused lines, each
    feeding an alarm that fires on one event and notifies SNS."""

    id = "E9112"
    shortdesc = "Alarms on write-tool calls and on ip_refused, wired to SNS"
    description = ("A metric filter on the container's log group whose pattern matches a tool_call line of "
                   "a tools:write tool written by the server's event writer (not a read call), and one "
                   "matching an ip_refused line; value 1, a per-stack namespace; an alarm on each that "
                   "fires on one event (Sum > 0, 1 of 1 datapoints), actions enabled, to an SNS topic")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "monitoring", "R23"]

    def _filters(self, cfn: Any, wanted: str, others: tuple[str, ...],
                 problems: list[RuleMatch], broad: list[RuleMatch]) -> set[str]:
        """(namespace, metric) keys counted by correct filters for the `wanted` sample line."""
        groups = container_log_groups(cfn)
        counted = set()
        for name, res in cfn.get_resources(["AWS::Logs::MetricFilter"]).items():
            spec, path = props(res), ["Resources", name, "Properties"]
            pattern = spec.get("FilterPattern")
            if not isinstance(pattern, str):
                continue
            try:
                verdict = _counts(pattern, wanted, others)
            except UnsupportedPattern as exc:
                if wanted.split(":")[0] in pattern:
                    problems.append(RuleMatch(path, f"{name}: cannot check the pattern: {exc}"))
                continue
            if verdict is None:
                continue
            if not verdict:
                broad.append(RuleMatch(path, f"{name}: the pattern also counts other events"))
            elif ref(spec.get("LogGroupName")) not in groups:
                problems.append(RuleMatch(path, f"{name}: not on the server container's log group"))
            else:
                for transform in spec.get("MetricTransformations", []) or []:
                    namespace = transform.get("MetricNamespace") if isinstance(transform, dict) else None
                    value = transform.get("MetricValue") if isinstance(transform, dict) else None
                    if "${AWS::StackName}" in json.dumps(namespace) and str(value) == "1":
                        counted.add(metric_key(namespace, transform["MetricName"]))
                    else:
                        problems.append(RuleMatch(path, f"{name}: needs MetricValue 1 and a namespace "
                                                        "with ${AWS::StackName}"))
        return counted

    def match(self, cfn: Any) -> list[RuleMatch]:
        problems: list[RuleMatch] = []
        topics = set(cfn.get_resources(["AWS::SNS::Topic"]))
        alarms = {name: props(res) for name, res in cfn.get_resources(["AWS::CloudWatch::Alarm"]).items()}
        for what, wanted, others in WATCHED:
            try:
                broad: list[RuleMatch] = []
                counted = self._filters(cfn, wanted, others, problems, broad)
            except ImportError as exc:
                return [RuleMatch(["Resources"], f"cannot check the {what} filter: {exc}")]
            if not counted:
                # Filters counting other events too are only wrong when nothing counts this one
                # exactly (a catch-all filter for another metric is not this rule's business).
                problems += broad
                problems.append(RuleMatch(["Resources"], f"no metric filter on the server's log group "
                                                         f"counts exactly the server's {what} events"))
                continue
            watching = {n: a for n, a in alarms.items()
                        if metric_key(a.get("Namespace"), a.get("MetricName")) in counted}
            verdicts = {n: alarm_reasons(a, topics) for n, a in watching.items()}
            if any(not reasons for reasons in verdicts.values()):
                continue
            problems += [RuleMatch(["Resources", n, "Properties"], f"{n}: " + "; ".join(r))
                         for n, r in verdicts.items()]
            if not verdicts:
                problems.append(RuleMatch(["Resources"], f"no CloudWatch alarm on the {what} metric"))
        return problems
