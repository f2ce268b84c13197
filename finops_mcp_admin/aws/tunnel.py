"""`stack tunnel`: the administrator's path to the stack's private key store.

SSM port forwarding through a running task (ECS Exec): the stack's outputs name the cluster,
service, container and cache endpoint; ECS names a task whose ExecuteCommandAgent runs; SSM
starts an `AWS-StartPortForwardingSessionToRemoteHost` session; the AWS `session-manager-plugin`
carries it, exactly as `aws ssm start-session` hands it over. No inbound port opens anywhere.

Secrets: the session token goes to the plugin in its environment (AWS_SSM_START_SESSION_RESPONSE,
as the AWS CLI does with plugins newer than 1.2.497.0), never in argv, where any local user can
read it (/proc/*/cmdline). The Redis AUTH token is not touched here at all: the commands that
use the tunnel read it from Secrets Manager themselves (MCPADMIN_REDIS_PASSWORD_SECRET_ARN).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import BackendUnavailable, CheckFailed, InvalidInput
from .session import AwsOptions, aws_errors, client

PLUGIN = "session-manager-plugin"
PLUGIN_INSTALL_URL = ("https://docs.aws.amazon.com/systems-manager/latest/userguide/"
                      "session-manager-working-with-install-plugin.html")
DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
#: Plugins newer than this read the StartSession response from the environment variable whose
#: name is their first argument (aws-cli's sessionmanager.py); older ones want it in argv.
RESPONSE_ENV = "AWS_SSM_START_SESSION_RESPONSE"
LAST_PLUGIN_WITHOUT_ENV = (1, 2, 497, 0)
_OUTPUTS = {"ClusterName": "cluster", "ServiceName": "service", "ContainerName": "container",
            "CacheEndpointAddress": "cache_host", "CacheEndpointPort": "cache_port",
            "RedisAuthSecretArn": "secret_arn"}


@dataclass(frozen=True)
class StackEndpoints:
    """What the tunnel needs from the stack's outputs."""

    cluster: str
    service: str
    container: str
    cache_host: str
    cache_port: int
    secret_arn: str

    @classmethod
    def from_outputs(cls, stack: str, outputs: list[dict[str, Any]]) -> StackEndpoints:
        """From describe_stacks Outputs; CheckFailed naming any output the stack lacks."""
        values = {o.get("OutputKey"): o.get("OutputValue") for o in outputs}
        missing = [key for key in _OUTPUTS if not values.get(key)]
        if missing:
            raise CheckFailed(f"stack {stack} has no output {', '.join(missing)}: deploy the current "
                              "template (mcpadmin stack deploy) before opening a tunnel")
        fields: dict[str, Any] = {attr: values[key] for key, attr in _OUTPUTS.items()}
        try:
            fields["cache_port"] = int(fields["cache_port"])
        except ValueError:
            raise CheckFailed(f"stack {stack}: CacheEndpointPort is not a port: "
                              f"{fields['cache_port']!r}") from None
        return cls(**fields)


def stack_endpoints(cf: Any, stack: str) -> StackEndpoints:
    """The stack's tunnel endpoints (NotFound when there is no such stack)."""
    with aws_errors(f"stack {stack}"):
        described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    return StackEndpoints.from_outputs(stack, described.get("Outputs", []))


def exec_target(tasks: list[dict[str, Any]], container: str) -> str | None:
    """The SSM target `ecs:<cluster>_<task id>_<runtime id>` of the first task (describe_tasks)
    whose `container` has its ExecuteCommandAgent RUNNING; None when there is none."""
    for task in tasks:
        cluster = str(task.get("clusterArn", "")).rsplit("/", 1)[-1]
        task_id = str(task.get("taskArn", "")).rsplit("/", 1)[-1]
        for box in task.get("containers", []):
            agents = box.get("managedAgents", [])
            ready = any(a.get("name") == "ExecuteCommandAgent" and a.get("lastStatus") == "RUNNING"
                        for a in agents)
            if box.get("name") == container and ready and box.get("runtimeId") and cluster and task_id:
                return f"ecs:{cluster}_{task_id}_{box['runtimeId']}"
    return None


def find_target(ecs: Any, where: StackEndpoints) -> str:
    """The SSM target of a running task of the stack's service (CheckFailed when none can take
    an ECS Exec session)."""
    what = f"service {where.service} in cluster {where.cluster}"
    with aws_errors(what):
        arns = ecs.list_tasks(cluster=where.cluster, serviceName=where.service,
                              desiredStatus="RUNNING").get("taskArns", [])
        if not arns:
            raise CheckFailed(f"{what} has no running task (DesiredCount 0, or the image not pushed yet?)")
        tasks = ecs.describe_tasks(cluster=where.cluster, tasks=arns[:100]).get("tasks", [])
    target = exec_target(tasks, where.container)
    if target is None:
        raise CheckFailed(f"no running task of {what} has its ECS Exec agent RUNNING (tasks started "
                          "before EnableExecuteCommand was turned on must be replaced first)")
    return target


def session_request(target: str, host: str, port: int, local_port: int) -> dict[str, Any]:
    """The ssm start_session request: forward 127.0.0.1:local_port to host:port via target."""
    return {"Target": target, "DocumentName": DOCUMENT,
            "Parameters": {"host": [host], "portNumber": [str(port)], "localPortNumber": [str(local_port)]}}


def find_plugin() -> str:
    """The session-manager-plugin on PATH, new enough to take its token from the environment."""
    path = shutil.which(PLUGIN)
    if path is None:
        raise BackendUnavailable(f"{PLUGIN} not found on PATH: install the AWS Session Manager plugin "
                                 f"({PLUGIN_INSTALL_URL})")
    try:
        text = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(f"{PLUGIN} at {path} does not run: {exc}") from None
    version = tuple(int(p) for p in text.split(".")) if re.fullmatch(r"\d+(\.\d+){0,3}", text) else None
    if version is None or version <= LAST_PLUGIN_WITHOUT_ENV:
        # An older plugin takes the session token in argv, readable by every local user.
        raise BackendUnavailable(f"{PLUGIN} {text or '(unknown version)'} is too old (needs > 1.2.497.0, "
                                 f"which takes the session token from its environment): {PLUGIN_INSTALL_URL}")
    return path


def plugin_invocation(plugin: str, response: Mapping[str, Any], region: str, profile: str | None,
                      request: Mapping[str, Any], endpoint_url: str) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) handing a started session to the plugin as the AWS CLI does;
    the session token is only in the environment."""
    session = {"SessionId": response["SessionId"], "TokenValue": response["TokenValue"],
               "StreamUrl": response["StreamUrl"]}
    argv = [plugin, RESPONSE_ENV, region, "StartSession", profile or "", json.dumps(request), endpoint_url]
    return argv, {RESPONSE_ENV: json.dumps(session)}


def free_local_port() -> int:
    """A port free on 127.0.0.1 now (the plugin binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def forward(argv: list[str], extra_env: Mapping[str, str], terminate: Callable[[], None],
            stop_timeout: float = 5.0) -> int:
    """Run the plugin until it exits or we are interrupted; always stop it and terminate the
    session (terminate()) on the way out. The plugin runs in its own session, so a Ctrl-C reaches
    only us and the shutdown order is ours. Returns the plugin's exit code."""
    try:
        proc = subprocess.Popen(argv, env={**os.environ, **extra_env}, stdin=subprocess.DEVNULL,
                                stdout=2, start_new_session=True)  # its chatter is not our data: stderr
    except OSError as exc:
        terminate()
        raise BackendUnavailable(f"cannot run {argv[0]}: {exc.strerror}") from None
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        terminate()


@dataclass(frozen=True)
class TunnelRequest:
    """Which stack, which local port (None: a free one), which AWS."""

    stack: str
    local_port: int | None = None
    aws: AwsOptions = field(default_factory=AwsOptions)


@dataclass(frozen=True)
class Tunnel:
    """An open tunnel: what the administrator points mcpadmin at."""

    stack: str
    local_port: int
    endpoints: StackEndpoints
    target: str
    session_id: str

    @property
    def store_url(self) -> str:
        return f"rediss://127.0.0.1:{self.local_port}/0"


class TunnelView(Protocol):
    """What the tunnel shows."""

    def opened(self, tunnel: Tunnel) -> None:
        """The session started; the plugin is about to listen on the local port."""

    def closed(self, tunnel: Tunnel, note: str) -> None:
        """The session ended (note: how)."""


def open_tunnel(request: TunnelRequest, view: TunnelView) -> None:
    """Find the stack's task and cache, start the port-forwarding session, run the plugin until it
    exits or Ctrl-C, then terminate the session. BackendUnavailable when the plugin fails."""
    if request.local_port is not None and not 1 <= request.local_port <= 65535:
        raise InvalidInput(f"--local-port must be 1-65535, not {request.local_port}")
    plugin = find_plugin()  # first: nothing is started on AWS when the one outside tool is missing
    where = stack_endpoints(client("cloudformation", request.aws), request.stack)
    target = find_target(client("ecs", request.aws), where)
    local_port = request.local_port or free_local_port()
    ssm = client("ssm", request.aws)
    params = session_request(target, where.cache_host, where.cache_port, local_port)
    with aws_errors(f"SSM session to {target}"):
        response = ssm.start_session(**params)
    tunnel = Tunnel(request.stack, local_port, where, target, response["SessionId"])
    argv, env = plugin_invocation(plugin, response, ssm.meta.region_name, request.aws.profile, params,
                                  ssm.meta.endpoint_url)
    ended: list[str] = []

    def terminate() -> None:
        try:
            with aws_errors(f"SSM session {tunnel.session_id}"):
                ssm.terminate_session(SessionId=tunnel.session_id)
            ended.append(f"session {tunnel.session_id} terminated")
        except Exception as exc:  # reported, not raised: the tunnel is already down
            ended.append(f"session {tunnel.session_id} may still be open ({exc}); it ends when idle")

    view.opened(tunnel)
    try:
        code = forward(argv, env, terminate)
    except KeyboardInterrupt:
        view.closed(tunnel, ended[0] if ended else "interrupted")
        raise
    view.closed(tunnel, ended[0] if ended else "closed")
    if code != 0:
        raise BackendUnavailable(f"{PLUGIN} exited with status {code}")
