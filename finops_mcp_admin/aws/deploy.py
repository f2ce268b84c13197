"""`stack deploy` as one flow: validate, check the parameters against AWS, create a change set,
show it, confirm, execute, wait, report the outputs. What is shown and how the question is asked
belong to a DeployView (the CLI supplies one); the decisions (refuse, stop, fail) are made here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import CheckFailed, InvalidInput
from . import cloudformation as cfn
from .session import AwsOptions, aws_errors, client


class DeployView(Protocol):
    """What a deploy shows, and the one question it asks."""

    def findings(self, errors: list[cfn.Finding]) -> None:
        """The validation errors that stop the deploy."""

    def changes(self, plan: cfn.Plan) -> None:
        """The change set, before it is executed."""

    def confirm(self, plan: cfn.Plan) -> bool:
        """Whether to execute the change set (asked only on a terminal without --yes)."""

    def status(self, status: str) -> None:
        """The stack's status, each time it changes."""

    def failures(self, failures: list[tuple[str, str, str]]) -> None:
        """The failed resources (logical id, status, reason) of a failed execution."""

    def outputs(self, outputs: list[dict[str, Any]]) -> None:
        """The stack's outputs after a successful execution."""

    def note(self, text: str) -> None:
        """A message (nothing to change, change set left unexecuted)."""

    def warning(self, text: str) -> None:
        """Something deployable but probably not meant (shown even with --quiet)."""


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy, where, and how much to do without asking."""

    stack: str
    template_path: str | None = None  # None: the shipped template
    params: tuple[str, ...] = ()  # Key=Value
    aws: AwsOptions = field(default_factory=AwsOptions)
    execute: bool = True  # False: create the change set and stop
    assume_yes: bool = False  # --yes
    interactive: bool = False  # stdin is a terminal, so the view may ask


def _validated(request: DeployRequest, view: DeployView) -> tuple[str, dict[str, str]]:
    """(template text, parameters), or CheckFailed when the template has errors."""
    text, label = cfn.read_template(request.template_path)
    params = cfn.parse_params(list(request.params))  # before the slow validation: a typo fails fast
    regions = [request.aws.region] if request.aws.region else None
    errors = [f for f in cfn.validate(text, regions) if f.severity == "error"]
    if errors:
        view.findings(errors)
        raise CheckFailed(f"{label}: {len(errors)} validation error(s): not deploying")
    return text, params


def _approved(request: DeployRequest, plan: cfn.Plan, view: DeployView) -> None:
    """Returns when the change set may run; refuses without --yes off a terminal."""
    if request.assume_yes:
        return
    if not request.interactive:
        raise InvalidInput(f"refusing to execute change set {plan.change_set} without --yes "
                           "when stdin is not a terminal")
    if not view.confirm(plan):
        raise CheckFailed(f"not executed; change set {plan.change_set} left for review")


def certificate_covers(names: list[str], domain: str) -> bool:
    """Whether a certificate for `names` (DomainName + SubjectAlternativeNames) is valid for
    `domain`: an exact name, or a wildcard standing for exactly one leftmost label (RFC 6125 6.4.3;
    `*.example.com` covers `mcp.example.com`, not `example.com` nor `a.mcp.example.com`)."""
    domain = domain.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == domain:
            return True
        label, dot, rest = domain.partition(".")
        if name.startswith("*.") and dot and label and name[2:] == rest:
            return True
    return False


def _template_values(text: str, params: dict[str, str]) -> dict[str, str]:
    """Each template parameter's value for this deploy: given, else its default, else ""."""
    from cfnlint.decode.cfn_yaml import loads

    declared = (loads(text) or {}).get("Parameters") or {}
    return {name: params.get(name, str((spec or {}).get("Default", ""))) for name, spec in declared.items()}


def _check_certificate(aws: AwsOptions, region: str, arn: str, domain: str) -> None:
    """InvalidInput unless the certificate is in the stack's region and covers domain."""
    parts = arn.split(":")
    cert_region = parts[3] if len(parts) > 5 else ""
    if cert_region != region:
        raise InvalidInput(f"certificate {arn} is in {cert_region or 'no region'}, the stack in {region}: "
                           "a load balancer can only use an ACM certificate of its own region")
    with aws_errors(f"certificate {arn}"):
        cert = client("acm", aws).describe_certificate(CertificateArn=arn)["Certificate"]
    names = [cert.get("DomainName", ""), *cert.get("SubjectAlternativeNames", [])]
    if domain and not certificate_covers(names, domain):
        covered = ", ".join(sorted({n for n in names if n}))
        raise InvalidInput(f"certificate {arn} covers {covered}, not DomainName {domain}")


def _s3_prefix_list(aws: AwsOptions, region: str) -> str:
    """The id of the region's S3 managed prefix list (com.amazonaws.<region>.s3)."""
    name = f"com.amazonaws.{region}.s3"
    with aws_errors(f"prefix list {name}"):
        lists = client("ec2", aws).describe_managed_prefix_lists(
            Filters=[{"Name": "prefix-list-name", "Values": [name]}]).get("PrefixLists", [])
    if not lists:
        raise CheckFailed(f"no managed prefix list {name} in {region}: pass --param S3PrefixListId=pl-...")
    return str(lists[0]["PrefixListId"])


def prechecked(aws: AwsOptions, region: str, text: str, params: dict[str, str],
               view: DeployView) -> dict[str, str]:
    """The parameters after the checks made before any change set: the certificate's region and
    names, a warning for an empty AlertEmail, S3PrefixListId filled in when not given."""
    values = _template_values(text, params)
    if values.get("CertificateArn"):
        _check_certificate(aws, region, values["CertificateArn"], values.get("DomainName", ""))
    if "AlertEmail" in values and not values["AlertEmail"]:
        view.warning("AlertEmail is empty: the alert topic gets no subscriber, so the security alarms "
                     "notify nobody (--param AlertEmail=secops@example.com, or subscribe to AlertTopicArn)")
    if "S3PrefixListId" in values and not values["S3PrefixListId"]:
        params = {**params, "S3PrefixListId": _s3_prefix_list(aws, region)}
        view.note(f"S3PrefixListId={params['S3PrefixListId']} (the S3 prefix list of {region})")
    return params


def deploy(request: DeployRequest, view: DeployView) -> None:
    """Validate, check, plan, confirm, execute and wait; CheckFailed when the stack does not end
    complete."""
    text, params = _validated(request, view)
    cf = client("cloudformation", request.aws)
    params = prechecked(request.aws, cf.meta.region_name, text, params, view)
    plan = cfn.plan(cf, request.stack, text, params)
    if plan.no_changes:
        view.note(f"stack {request.stack}: no changes to deploy")
        return
    view.changes(plan)
    if not request.execute:
        view.note(f"change set {plan.change_set} created and not executed")
        return
    _approved(request, plan, view)
    result = cfn.execute(cf, plan, on_status=view.status)
    if not result.ok:
        view.failures(result.failures)
        reason = result.reason or (result.failures[0][2] if result.failures else "see the events above")
        raise CheckFailed(f"stack {request.stack} ended {result.status}: {reason}")
    view.outputs(result.outputs)
