"""The events of one stack operation: which rows belong to it, each shown once and in order, and
which failures are reported. moto writes no per-resource events and ignores ClientRequestToken,
so these tests feed a real boto3 client, stubbed by botocore's Stubber, with responses shaped as
CloudFormation's DescribeStackEvents returns them (newest first, paged by NextToken)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from finops_mcp_admin.aws.stack_events import OperationEvents, StackEvent, newest_event_id
from finops_mcp_admin.cli.stack import event_line

STACK = "mcp-prod"
STACK_ID = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/6b4e1f40-0000-0000-0000-000000000000"
TOKEN = "mcpadmin-2f1d7c2e-ours"
T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def event(n: int, logical: str, status: str, reason: str = "", token: str | None = TOKEN,
          rtype: str = "AWS::ECS::Service") -> dict:
    row = {"StackId": STACK_ID, "EventId": f"e{n:03d}", "StackName": STACK, "LogicalResourceId": logical,
           "ResourceType": rtype, "Timestamp": T0 + timedelta(seconds=n), "ResourceStatus": status}
    if reason:
        row["ResourceStatusReason"] = reason
    if token:
        row["ClientRequestToken"] = token
    return row


def stack_row(n: int, status: str, reason: str = "", token: str | None = TOKEN) -> dict:
    return event(n, STACK, status, reason, token, "AWS::CloudFormation::Stack")


@pytest.fixture
def cf():
    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="y")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def page(events: list[dict], next_token: str | None = None) -> dict:
    return {"StackEvents": events, **({"NextToken": next_token} if next_token else {})}


def expect(cf, events: list[dict], next_token: str | None = None, token_in: str | None = None) -> None:
    params = {"StackName": STACK_ID, **({"NextToken": token_in} if token_in else {})}
    cf.stubber.add_response("describe_stack_events", page(events, next_token), params)


def test_only_events_after_the_boundary_with_our_token_or_none_are_shown_oldest_first_and_once(cf):
    old = [stack_row(2, "UPDATE_COMPLETE", token="previous-op"), stack_row(1, "UPDATE_IN_PROGRESS",
                                                                        token="previous-op")]
    expect(cf, [event(11, "EcsService", "UPDATE_IN_PROGRESS"), stack_row(10, "UPDATE_IN_PROGRESS"), *old])
    expect(cf, [stack_row(13, "UPDATE_COMPLETE"), event(12, "EcsService", "UPDATE_COMPLETE", token=None),
                event(11, "EcsService", "UPDATE_IN_PROGRESS"), stack_row(10, "UPDATE_IN_PROGRESS"), *old])
    events = OperationEvents(cf, STACK_ID, STACK, TOKEN, boundary="e002")
    first = events.poll()
    assert [(e.logical_id, e.status) for e in first] == [(STACK, "UPDATE_IN_PROGRESS"),
                                                         ("EcsService", "UPDATE_IN_PROGRESS")]
    second = events.poll()  # the newest two only: nothing shown twice, the old operation never
    assert [(e.logical_id, e.status) for e in second] == [("EcsService", "UPDATE_COMPLETE"),
                                                          (STACK, "UPDATE_COMPLETE")]


def test_an_event_of_another_operation_after_the_boundary_is_not_ours(cf):
    expect(cf, [event(5, "Other", "UPDATE_FAILED", "not ours", token="someone-else"),
                event(4, "EcsService", "UPDATE_IN_PROGRESS")])
    events = OperationEvents(cf, STACK_ID, STACK, TOKEN, boundary=None)
    assert [e.logical_id for e in events.poll()] == ["EcsService"]


def test_pages_are_followed_until_the_boundary(cf):
    expect(cf, [event(22, "B", "CREATE_COMPLETE"), event(21, "B", "CREATE_IN_PROGRESS")], next_token="p2")
    expect(cf, [event(20, "A", "CREATE_COMPLETE"), stack_row(3, "REVIEW_IN_PROGRESS", token=None),
                stack_row(2, "DELETE_COMPLETE", token=None)], token_in="p2")
    events = OperationEvents(cf, STACK_ID, STACK, TOKEN, boundary="e003")
    assert [e.event_id for e in events.poll()] == ["e020", "e021", "e022"]


def test_a_rollback_reports_only_this_operations_failed_resources_causes_first(cf):
    earlier_failure = event(3, "OldQueue", "CREATE_FAILED", "an older deploy's failure", token="old-op")
    expect(cf, [
        stack_row(19, "ROLLBACK_COMPLETE"),
        event(18, "Listener", "DELETE_COMPLETE"),
        stack_row(17, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [Listener]."),
        event(16, "EcsService", "CREATE_FAILED", "Resource creation cancelled"),
        event(15, "Listener", "CREATE_FAILED", "Certificate 'arn:...' not found (Service: "
              "ElasticLoadBalancingV2, Status Code: 400)", rtype="AWS::ElasticLoadBalancingV2::Listener"),
        event(14, "Listener", "CREATE_IN_PROGRESS", rtype="AWS::ElasticLoadBalancingV2::Listener"),
        stack_row(13, "CREATE_IN_PROGRESS", "User Initiated"),
        earlier_failure,
    ])
    events = OperationEvents(cf, STACK_ID, STACK, TOKEN, boundary="e003")
    assert len(events.poll()) == 7
    (failure,) = events.failures()  # the cause; the cancelled service and the stack row left out
    assert failure.logical_id == "Listener" and "not found" in failure.reason


def test_cancellations_are_reported_when_they_are_all_there_is(cf):
    expect(cf, [event(9, "EcsService", "UPDATE_FAILED", "Resource update cancelled")])
    events = OperationEvents(cf, STACK_ID, STACK, TOKEN, boundary=None)
    events.poll()
    assert [e.logical_id for e in events.failures()] == ["EcsService"]


def test_the_boundary_is_the_newest_event_or_none_without_a_stack(cf):
    cf.stubber.add_response("describe_stack_events", page([stack_row(7, "UPDATE_COMPLETE")]),
                            {"StackName": STACK})
    assert newest_event_id(cf, STACK) == "e007"
    cf.stubber.add_client_error("describe_stack_events", "ValidationError",
                                f"Stack [{STACK}] does not exist", 400, expected_params={"StackName": STACK})
    assert newest_event_id(cf, STACK) is None


def test_an_event_line_shows_elapsed_time_resource_type_status_and_reason():
    row = StackEvent.from_aws(event(15, "Listener", "CREATE_FAILED", "Certificate not found",
                                    rtype="AWS::ElasticLoadBalancingV2::Listener"))
    line = event_line(row, 83.4)
    assert line.split()[:4] == ["83s", "Listener", "AWS::ElasticLoadBalancingV2::Listener", "CREATE_FAILED"]
    assert line.endswith("  Certificate not found")
    assert event_line(StackEvent.from_aws(stack_row(1, "UPDATE_COMPLETE")), 2).endswith("UPDATE_COMPLETE")
