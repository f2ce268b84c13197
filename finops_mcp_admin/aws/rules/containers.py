"""E9110, E9111: what runs in the task and how an administrator gets into it — a digest-pinned
image, and ECS Exec that stores nothing of a session and works on a read-only root filesystem."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from finops_mcp_admin.aws.rules._template import SOURCE, parameters, props, ref, strings, truthy

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
#: Image references a digest-only pattern must refuse, and one it must accept.
TAGGED = ("123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp:1.0", "python:3.11-slim", "mcp",
          "mcp@sha256:abc", "mcp:latest@sha256:" + "0" * 63)
PINNED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mcp@sha256:" + "0" * 64
#: The SSM agent that ECS Exec starts inside the container writes its state and logs here.
SSM_AGENT_PATHS = ("/var/lib/amazon/ssm", "/var/log/amazon/ssm")
SSM_CHANNELS = ("ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel")


def _pattern_pins_digest(pattern: Any) -> bool:
    """A parameter's AllowedPattern accepts a digest reference and refuses every tag form.
    (CloudFormation uses Java regular expressions; the stack's pattern is the common subset.)"""
    if not isinstance(pattern, str):
        return False
    try:
        compiled = re.compile(pattern)
    except re.error:
        return False
    return bool(compiled.fullmatch(PINNED)) and not any(compiled.fullmatch(t) for t in TAGGED)


def image_problem(cfn: Any, image: Any) -> str | None:
    """Why an image reference is not digest-pinned at deploy time (None when it is)."""
    if isinstance(image, str):
        return None if DIGEST.search(image) else f"image {image} is not pinned by digest (@sha256:)"
    name = image.get("Ref") if isinstance(image, dict) else None
    param = parameters(cfn).get(name) if isinstance(name, str) else None
    if not isinstance(param, dict):
        return "image is neither a literal nor a parameter: cannot verify a digest pin"
    if not _pattern_pins_digest(param.get("AllowedPattern")):
        return f"parameter {name} has no AllowedPattern that admits only @sha256: digests"
    default = param.get("Default")
    if default is not None and not DIGEST.search(str(default)):
        return f"parameter {name} defaults to an image that is not pinned by digest"
    return None


class ImagePinnedByDigest(CloudFormationLintRule):
    """Containers run an image pinned by digest, never a movable tag (supply chain)."""

    id = "E9110"
    shortdesc = "Container image pinned by digest"
    description = ("Every container image is a literal ending in @sha256:<64 hex> or a Ref to a parameter "
                   "whose AllowedPattern refuses tags and whose default (if any) is digest-pinned")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "supply-chain"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for name, res in cfn.get_resources(["AWS::ECS::TaskDefinition"]).items():
            for i, container in enumerate(props(res).get("ContainerDefinitions", []) or []):
                if not isinstance(container, dict):
                    continue
                problem = image_problem(cfn, container.get("Image"))
                if problem:
                    matches.append(RuleMatch(["Resources", name, "Properties", "ContainerDefinitions", i,
                                              "Image"], f"{name}: {problem}"))
        return matches


def _writable(container: dict[str, Any], volumes: set[str], target: str) -> bool:
    for mount in container.get("MountPoints", []) or []:
        path = str(mount.get("ContainerPath", "")).rstrip("/")
        if (mount.get("SourceVolume") in volumes and not truthy(mount.get("ReadOnly"))
                and (target == path or target.startswith(path + "/"))):
            return True
    return False


class EcsExecStoresNothing(CloudFormationLintRule):
    """ECS Exec sessions are never logged, are KMS-encrypted, and can start on a read-only root."""

    id = "E9111"
    shortdesc = "ECS Exec: no session logging, encrypted, workable"
    description = ("A service with EnableExecuteCommand runs on a cluster whose ExecuteCommandConfiguration "
                   "has Logging NONE (DEFAULT/OVERRIDE copy a shell's stdout - plaintext keys - to logs) "
                   "and a KmsKeyId; its task role grants the ssmmessages channels; containers with a "
                   "read-only root filesystem mount writable volumes for the SSM agent")
    source_url = SOURCE
    tags: ClassVar[list[str]] = ["security", "ecs-exec", "R18"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        resources = cfn.template.get("Resources", {})
        for name, res in cfn.get_resources(["AWS::ECS::Service"]).items():
            service = props(res)
            if not truthy(service.get("EnableExecuteCommand")):
                continue
            path = ["Resources", name, "Properties", "EnableExecuteCommand"]
            cluster = resources.get(ref(service.get("Cluster")) or "", {})
            config = (props(cluster).get("Configuration") or {}).get("ExecuteCommandConfiguration") or {}
            if config.get("Logging") != "NONE":
                logging = config.get("Logging", "DEFAULT")
                matches.append(RuleMatch(path, f"{name}: ECS Exec logging must be NONE on its cluster "
                                               f"(is {logging}): session stdout would be stored"))
            if not config.get("KmsKeyId"):
                matches.append(RuleMatch(path, f"{name}: ECS Exec sessions need a KmsKeyId on the cluster"))
            task = props(resources.get(ref(service.get("TaskDefinition")) or "", {}))
            matches += [RuleMatch(path, f"{name}: {p}") for p in self._task_problems(resources, task)]
        return matches

    @staticmethod
    def _task_problems(resources: dict[str, Any], task: dict[str, Any]) -> list[str]:
        problems = []
        role = props(resources.get(ref(task.get("TaskRoleArn")) or "", {}))
        granted = set(strings(role.get("Policies", [])))
        if not (set(SSM_CHANNELS) <= granted or "ssmmessages:*" in granted):
            problems.append("the task role does not grant the ssmmessages channels ECS Exec needs")
        volumes = {str(v.get("Name")) for v in task.get("Volumes", []) or [] if isinstance(v, dict)}
        for container in task.get("ContainerDefinitions", []) or []:
            if not (isinstance(container, dict) and truthy(container.get("ReadonlyRootFilesystem"))):
                continue
            for target in SSM_AGENT_PATHS:
                if not _writable(container, volumes, target):
                    problems.append(f"container {container.get('Name')} has a read-only root filesystem "
                                    f"and no writable volume at {target}: the SSM agent cannot start")
        return problems
