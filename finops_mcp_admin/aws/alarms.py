"""The `audit alarms` report: each CloudWatch alarm's state, and whether the SNS topics it
notifies have a confirmed subscription, i.e. whether anybody is alerted (R23.2, R23.5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CheckFailed
from .session import AwsOptions, aws_errors, client


@dataclass
class AlarmReport:
    """One row per alarm, and a warning per alarm that alerts nobody."""

    stack: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def check(self) -> None:
        """CheckFailed when there is no alarm at all."""
        if not self.rows:
            raise CheckFailed(f"no CloudWatch alarms{' for stack ' + self.stack if self.stack else ''}")


def _subscriptions(sns: Any, alarms: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The subscriptions of every SNS topic the alarms notify, each topic asked once."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms:
        for arn in alarm.get("AlarmActions", []):
            if arn.startswith("arn:aws:sns:") and arn not in topics:
                topics[arn] = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
    return topics


def alarm_report(opts: AwsOptions, stack: str | None = None) -> AlarmReport:
    """The alarms (of one stack: name prefix `<stack>-`), their state and who they notify."""
    cw, sns = client("cloudwatch", opts), client("sns", opts)
    with aws_errors("CloudWatch alarms"):
        kwargs = {"AlarmNamePrefix": f"{stack}-"} if stack else {}
        alarms = [a for page in cw.get_paginator("describe_alarms").paginate(**kwargs)
                  for a in page.get("MetricAlarms", [])]
        topics = _subscriptions(sns, alarms)
    report = AlarmReport(stack)
    for alarm in alarms:
        subs = [s for arn in alarm.get("AlarmActions", []) for s in topics.get(arn, [])]
        confirmed = [s for s in subs if s.get("SubscriptionArn", "").startswith("arn:")]
        report.rows.append({"alarm": alarm["AlarmName"], "state": alarm.get("StateValue"),
                            "metric": f"{alarm.get('Namespace')}/{alarm.get('MetricName')}",
                            "threshold": alarm.get("Threshold"), "reason": alarm.get("StateReason"),
                            "subscriptions": f"{len(confirmed)} confirmed / {len(subs)}"})
        if not alarm.get("AlarmActions"):
            report.warnings.append(f"alarm {alarm['AlarmName']} notifies nobody (no alarm actions)")
        elif not confirmed:
            report.warnings.append(f"alarm {alarm['AlarmName']}: its SNS topic has no confirmed "
                                   "subscription; nobody will be alerted (R23.5)")
    return report
