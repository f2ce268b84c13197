"""`mcpadmin stack tunnel`: stack outputs, task lookup (moto's server mode), the exact SSM
start_session request, the hand-over to the session-manager-plugin (a fake plugin script on PATH
that records what it was given), Ctrl-C shutdown, and the missing-plugin error.

moto 5.2 implements neither ssm start_session/terminate_session nor ECS managed agents, so the
request is checked as built, and the target choice on describe_tasks replies shaped as ECS
sends them (moto's plus the managedAgents/runtimeId fields it lacks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from finops_mcp_admin.aws.session import AwsOptions, client
from finops_mcp_admin.aws.tunnel import (
    DOCUMENT,
    RESPONSE_ENV,
    StackEndpoints,
    exec_target,
    find_target,
    forward,
    plugin_invocation,
    session_request,
    stack_endpoints,
)
from finops_mcp_admin.errors import CheckFailed
from tests.aws.test_deploy import unique
from tests.redis_server import free_port

TOKEN = "session-token-canary-7f3a"
OUTPUTS = {"ClusterName": "mcp-cluster", "ServiceName": "mcp-service", "ContainerName": "mcp-server",
           "CacheEndpointAddress": "master.mcp.abc123.use1.cache.amazonaws.com", "CacheEndpointPort": "6379",
           "RedisAuthSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-AbCdEf"}


def make_stack(aws_env, outputs: dict[str, str]) -> str:
    """A moto stack with these literal outputs (moto gives Outputs only to CreateStack stacks)."""
    import boto3

    cf = boto3.client("cloudformation", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    stack = unique("mcp-tunnel")
    cf.create_stack(StackName=stack, TemplateBody=json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()}}))
    return stack


@pytest.fixture
def fake_plugin(tmp_path, monkeypatch):
    """A session-manager-plugin on PATH that records its argv and the response variable."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "plugin.json"
    script = bindir / "session-manager-plugin"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""
        import json, os, sys, time
        if sys.argv[1:] == ["--version"]:
            print(os.environ.get("FAKE_PLUGIN_VERSION", "1.2.707.0"))
            sys.exit(0)
        with open(os.environ["FAKE_PLUGIN_LOG"], "w") as fh:
            json.dump({"argv": sys.argv, "pid": os.getpid(),
                       "response": os.environ.get(sys.argv[1])}, fh)
        time.sleep(float(os.environ.get("FAKE_PLUGIN_SLEEP", "0")))
        sys.exit(int(os.environ.get("FAKE_PLUGIN_EXIT", "0")))
    """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PLUGIN_LOG", str(log))
    return script, log


def test_the_endpoints_are_read_from_the_stack_outputs(aws_env):
    stack = make_stack(aws_env, OUTPUTS)
    where = stack_endpoints(client("cloudformation", AwsOptions()), stack)
    assert where == StackEndpoints("mcp-cluster", "mcp-service", "mcp-server",
                                   OUTPUTS["CacheEndpointAddress"], 6379, OUTPUTS["RedisAuthSecretArn"])


def test_a_stack_without_the_tunnel_outputs_is_one_line_naming_them(cli, aws_env, fake_plugin):
    stack = make_stack(aws_env, {"McpEndpoint": "https://mcp.example.com/mcp"})
    r = cli("stack", "tunnel", stack)
    assert r.code == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "ClusterName" in r.stderr and "RedisAuthSecretArn" in r.stderr
    assert cli("stack", "tunnel", "no-such-stack").code == 3


@pytest.fixture
def moto_task(aws_env):
    """(cluster, describe_tasks reply) of one task running in moto's ECS. On EC2 capacity: moto
    5.2.1's FARGATE run_task fails on its own awsvpc ENI model (no private_dns_name)."""
    import boto3

    ecs = boto3.client("ecs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    ec2 = boto3.client("ec2", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    cluster = unique("mcp-cluster")
    ecs.create_cluster(clusterName=cluster)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps(
        {"instanceId": instance["InstanceId"], "region": "us-east-1"}))
    ecs.register_task_definition(family="mcp-server", containerDefinitions=[
        {"name": "mcp-server", "image": "mcp@sha256:" + "0" * 64, "memory": 256, "cpu": 128}])
    arn = ecs.run_task(cluster=cluster, taskDefinition="mcp-server", count=1)["tasks"][0]["taskArn"]
    return cluster, ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"]


def test_a_task_whose_exec_agent_does_not_run_is_refused(aws_env, moto_task):
    cluster, _ = moto_task
    where = StackEndpoints(cluster, "mcp-service", "mcp-server", "cache", 6379, "arn")
    with pytest.raises(CheckFailed, match="ECS Exec agent RUNNING"):
        find_target(client("ecs", AwsOptions()), where)


def test_a_cluster_without_running_tasks_is_refused(aws_env):
    import boto3

    cluster = unique("mcp-empty")
    boto3.client("ecs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1").create_cluster(
        clusterName=cluster)
    where = StackEndpoints(cluster, "mcp-service", "mcp-server", "cache", 6379, "arn")
    with pytest.raises(CheckFailed, match="no running task"):
        find_target(client("ecs", AwsOptions()), where)


def test_the_target_is_cluster_task_and_runtime_id_of_a_task_with_a_running_agent(moto_task):
    cluster, tasks = moto_task
    task_id = tasks[0]["taskArn"].rsplit("/", 1)[-1]
    assert exec_target(tasks, "mcp-server") is None  # moto's reply: no agent, no runtime id
    stopped = json.loads(json.dumps(tasks[0], default=str))
    stopped["containers"][0].update(runtimeId="aaa-1", managedAgents=[
        {"name": "ExecuteCommandAgent", "lastStatus": "STOPPED"}])
    running = json.loads(json.dumps(tasks[0], default=str))
    running["containers"][0].update(runtimeId=f"{task_id}-265927825", managedAgents=[
        {"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}])
    assert exec_target([stopped], "mcp-server") is None
    assert exec_target([stopped, running], "other-container") is None
    assert exec_target([stopped, running], "mcp-server") == f"ecs:{cluster}_{task_id}_{task_id}-265927825"


def test_the_cli_follows_outputs_to_the_stacks_cluster(cli, aws_env, fake_plugin, moto_task):
    cluster, _ = moto_task
    stack = make_stack(aws_env, {**OUTPUTS, "ClusterName": cluster})
    r = cli("stack", "tunnel", stack)
    assert r.code == 1 and r.stderr.count("\n") == 1 and cluster in r.stderr and "ECS Exec" in r.stderr


def test_the_session_request_forwards_the_local_port_to_the_cache():
    assert session_request("ecs:c_t_r", "master.mcp.cache.amazonaws.com", 6379, 16379) == {
        "Target": "ecs:c_t_r", "DocumentName": "AWS-StartPortForwardingSessionToRemoteHost",
        "Parameters": {"host": ["master.mcp.cache.amazonaws.com"], "portNumber": ["6379"],
                       "localPortNumber": ["16379"]}}
    assert DOCUMENT == "AWS-StartPortForwardingSessionToRemoteHost"


def started(plugin: str, profile: str | None = "admin"):
    response = {"SessionId": "admin-0abc", "TokenValue": TOKEN, "StreamUrl": "wss://ssmmessages.example/x",
                "ResponseMetadata": {"RequestId": "r"}}
    request = session_request("ecs:c_t_r", "cache.example.internal", 6379, 16379)
    return plugin_invocation(plugin, response, "eu-west-1", profile, request, "https://ssm.eu-west-1.amazonaws.com")


def test_the_plugin_gets_the_aws_cli_arguments_and_the_token_only_in_its_environment(fake_plugin):
    script, log = fake_plugin
    argv, env = started(str(script))
    terminated = []
    assert forward(argv, env, lambda: terminated.append(True)) == 0
    seen = json.loads(log.read_text())
    request = session_request("ecs:c_t_r", "cache.example.internal", 6379, 16379)
    assert seen["argv"][1:] == [RESPONSE_ENV, "eu-west-1", "StartSession", "admin", json.dumps(request),
                                "https://ssm.eu-west-1.amazonaws.com"]
    assert json.loads(seen["response"]) == {"SessionId": "admin-0abc", "TokenValue": TOKEN,
                                            "StreamUrl": "wss://ssmmessages.example/x"}
    assert TOKEN not in " ".join(seen["argv"])
    assert terminated == [True]  # the session is terminated when the plugin ends
    assert started(str(script), profile=None)[0][4] == ""  # no profile: an empty argument, as the CLI


def test_ctrl_c_stops_the_plugin_and_terminates_the_session(fake_plugin, tmp_path):
    script, log = fake_plugin
    marker = tmp_path / "terminated"
    driver = textwrap.dedent(f"""
        import sys
        from finops_mcp_admin.aws.tunnel import forward
        argv, env = {started(str(script))!r}
        try:
            forward(argv, env, lambda: open({str(marker)!r}, "w").write("1"))
        except KeyboardInterrupt:
            sys.exit(130)
    """)
    proc = subprocess.Popen([sys.executable, "-c", driver], env={**os.environ, "FAKE_PLUGIN_SLEEP": "60"})
    deadline = time.monotonic() + 20
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = json.loads(log.read_text())["pid"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130
    assert marker.read_text() == "1"
    with pytest.raises(ProcessLookupError):  # the plugin is gone (reaped by forward)
        os.kill(pid, 0)


def test_a_failing_plugin_still_terminates_the_session_and_reports_its_status(fake_plugin, monkeypatch):
    script, _ = fake_plugin
    monkeypatch.setenv("FAKE_PLUGIN_EXIT", "3")
    terminated = []
    assert forward(*started(str(script)), lambda: terminated.append(True)) == 3
    assert terminated == [True]


def test_a_missing_plugin_is_one_line_naming_it_and_its_install_page(cli, tmp_path):
    # The AWS endpoint is unreachable: the plugin is checked before any AWS call.
    env = {"PATH": str(tmp_path), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    r = cli("stack", "tunnel", "mcp-prod", env=env)
    assert r.code == 5 and r.stderr.count("\n") == 1, r.stderr
    assert "session-manager-plugin" in r.stderr and "session-manager-working-with-install-plugin" in r.stderr
    assert "cannot reach AWS" not in r.stderr


def test_a_plugin_that_would_take_the_token_in_argv_is_refused(cli, aws_env, fake_plugin):
    r = cli("stack", "tunnel", make_stack(aws_env, OUTPUTS), env={"FAKE_PLUGIN_VERSION": "1.2.497.0"})
    assert r.code == 5 and r.stderr.count("\n") == 1 and "too old" in r.stderr


def test_the_opened_message_gives_the_settings_for_the_other_shell(capsys):
    from finops_mcp_admin.aws.tunnel import Tunnel
    from finops_mcp_admin.cli.stack import _TunnelView

    rows = [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()]
    where = StackEndpoints.from_outputs("mcp-prod", rows)
    _TunnelView().opened(Tunnel("mcp-prod", 16379, where, "ecs:c_t_r", "admin-0abc"))
    out = capsys.readouterr()
    assert out.out == ""
    lines = [line.strip() for line in out.err.splitlines()]
    assert "export MCPADMIN_STORE=rediss://127.0.0.1:16379/0" in lines
    assert f"export MCPADMIN_REDIS_SERVER_NAME={OUTPUTS['CacheEndpointAddress']}" in lines
    assert f"export MCPADMIN_REDIS_PASSWORD_SECRET_ARN={OUTPUTS['RedisAuthSecretArn']}" in lines
