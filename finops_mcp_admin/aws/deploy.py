"""`stack deploy` as one flow, like `rain deploy`: read and check the parameters against the
template, validate, check them against AWS, clear a stack whose creation failed, create a change
set, show it, confirm, execute following its events, report the outputs. What is shown and how a
question is asked belong to the StackView (the CLI supplies one); the decisions are made here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import AdminError, CheckFailed, InvalidInput
from . import cloudformation as cfn
from . import stack_params as sp
from .session import AwsOptions, aws_errors, client
from .stack_ops import Consent, StackView, approve, delete_and_wait, run_change_set

DeployView = StackView  # the name the CLI knows it by

#: Parameters the deploy finds by itself when they are not given.
FILLED_IN = frozenset({"S3PrefixListId"})


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
    parameters_file: str | None = None  # --parameters-file (--param wins)

    @property
    def consent(self) -> Consent:
        return Consent(self.assume_yes, self.interactive)


@dataclass(frozen=True)
class Template:
    """A template read, parsed and found free of validation errors."""

    text: str
    document: dict[str, Any]
    params: dict[str, sp.Declared]


def given_parameters(request: DeployRequest) -> dict[str, str]:
    """--parameters-file, then --param on top."""
    from_file = sp.read_parameters_file(request.parameters_file) if request.parameters_file else {}
    return {**from_file, **sp.parse_params(list(request.params))}


def _validated(request: DeployRequest, view: StackView) -> tuple[Template, dict[str, str]]:
    """The template and the given parameters, checked before any AWS call: a parameter the template
    does not declare or a value it refuses is exit 2 at once, before the slow validation."""
    text, label = cfn.read_template(request.template_path)
    document = sp.template_document(text)
    params = sp.declared(document)
    given = given_parameters(request)
    sp.check_given(params, given)
    regions = [request.aws.region] if request.aws.region else None
    errors = [f for f in cfn.validate(text, regions) if f.severity == "error"]
    if errors:
        view.findings(errors)
        raise CheckFailed(f"{label}: {len(errors)} validation error(s): not deploying")
    return Template(text, document, params), given


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


def prechecked(aws: AwsOptions, region: str, params: dict[str, sp.Declared], given: dict[str, str],
               previous: dict[str, str], view: StackView) -> dict[str, str]:
    """The given parameters after the checks made before any change set: the certificate's region
    and names, a warning for an empty AlertEmail, S3PrefixListId filled in when it has no value.
    A parameter not given is judged by its previous value, else its default."""
    values = {name: given.get(name, previous.get(name, p.default)) for name, p in params.items()}
    if values.get("CertificateArn"):
        _check_certificate(aws, region, values["CertificateArn"], values.get("DomainName", ""))
    if "AlertEmail" in values and not values["AlertEmail"]:
        view.warning("AlertEmail is empty: the alert topic gets no subscriber, so the security alarms "
                     "notify nobody (--param AlertEmail=secops@example.com, or subscribe to AlertTopicArn)")
    if "S3PrefixListId" in values and not values["S3PrefixListId"]:
        given = {**given, "S3PrefixListId": _s3_prefix_list(aws, region)}
        view.note(f"S3PrefixListId={given['S3PrefixListId']} (the S3 prefix list of {region})")
    return given


def _clear_failed_creation(cf: Any, request: DeployRequest, state: dict[str, Any], view: StackView) -> None:
    """A stack in ROLLBACK_COMPLETE (its creation failed, it holds nothing) cannot be updated:
    delete it, after asking, so that the deploy creates it again."""
    stack = request.stack
    approve(request.consent, view,
            f"Stack {stack} is ROLLBACK_COMPLETE: its creation failed and it holds nothing. "
            "Delete it and create it again?",
            refused=f"stack {stack} is ROLLBACK_COMPLETE (its creation failed; it holds nothing): deploy "
                    f"with --yes to delete and re-create it, or run mcpadmin stack delete {stack} first",
            declined=f"not deployed: stack {stack} left as ROLLBACK_COMPLETE")
    view.note(f"deleting stack {stack} (ROLLBACK_COMPLETE) to create it again")
    delete_and_wait(cf, state, view)


def _planned(cf: Any, request: DeployRequest, template: Template, given: dict[str, str],
             previous: dict[str, str], create: bool, created: bool) -> cfn.Plan:
    change_set = cfn.ChangeSetRequest(
        request.stack, template.text, sp.parameter_list(template.params, given, set(previous)),
        sp.capabilities(template.document), create)
    try:
        return cfn.plan(cf, change_set)
    except CheckFailed:
        if created:  # the failed change set made an empty REVIEW_IN_PROGRESS stack: remove it too
            cfn.discard(cf, cfn.Plan(request.stack, None), created_stack=True)
        raise


def deploy(request: DeployRequest, view: StackView) -> None:
    """Check, validate, plan, confirm, execute and wait; CheckFailed when the stack does not end
    complete. A refused or declined deploy deletes the change set it made (and the empty stack)."""
    template, given = _validated(request, view)
    cf = client("cloudformation", request.aws)
    with aws_errors(f"stack {request.stack}"):
        state = cfn.stack_state(cf, request.stack)
    previous = cfn.previous_values(state)
    sp.check_required(template.params, given, set(previous), set(FILLED_IN))
    given = prechecked(request.aws, cf.meta.region_name, template.params, given, previous, view)
    if state is not None and state["StackStatus"] == "ROLLBACK_COMPLETE":
        _clear_failed_creation(cf, request, state, view)
        state = None
    created = state is None  # this deploy makes the stack (a REVIEW_IN_PROGRESS one was there)
    create = created or (state is not None and state["StackStatus"] == "REVIEW_IN_PROGRESS")
    plan = _planned(cf, request, template, given, previous, create, created)
    if plan.no_changes:
        view.note(f"stack {request.stack}: no changes to deploy")
        return
    view.changes(plan)
    if not request.execute:
        view.note(f"change set {plan.change_set} created and not executed "
                  f"(run it with: mcpadmin stack execute {request.stack} --change-set {plan.change_set})")
        return
    try:
        approve(request.consent, view, f"Execute {len(plan.changes)} change(s) on stack {plan.stack}?",
                refused=f"refusing to execute change set {plan.change_set} without --yes when stdin is "
                        "not a terminal (the change set was deleted; --no-execute keeps one for review)",
                declined=f"not executed: change set {plan.change_set} deleted")
    except AdminError:
        cfn.discard(cf, plan, created_stack=created)
        raise
    run_change_set(cf, plan, create, view)
