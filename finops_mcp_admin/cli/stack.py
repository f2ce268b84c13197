"""`mcpadmin stack ...`: the hardened CloudFormation stack."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from ..errors import CheckFailed, InvalidInput
from . import _render as render
from ._options import EndpointOpt, OutputOpt, ProfileOpt, QuietOpt, RegionOpt, aws_client
from ._render import OutputFormat
from ._stdin import stdin_is_terminal

app = typer.Typer(no_args_is_help=True, help="Validate and deploy the hardened AWS stack.")

TemplateOpt = Annotated[str | None, typer.Option("--template", "-t", help="Template file [default: the shipped mcp-server.yaml].")]
StackArg = Annotated[str, typer.Argument(help="Stack name.")]
FINDING_COLUMNS = [("rule", "RULE"), ("severity", "SEVERITY"), ("resource", "RESOURCE"), ("line", "LINE"),
                   ("message", "MESSAGE")]


@app.command()
def template() -> None:
    """Print the shipped CloudFormation template (to customise it).

    \b
    Example: mcpadmin stack template > my-stack.yaml
    """
    from ..aws.cloudformation import shipped_template

    sys.stdout.write(shipped_template())


@app.command()
def validate(template_path: TemplateOpt = None, region: RegionOpt = None,
             output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False) -> None:
    """cfn-lint plus the E91xx security rules (exit 0 clean, 1 findings).

    \b
    Example: mcpadmin stack validate --template my-stack.yaml -o json
    """
    from ..aws import cloudformation as cfn

    text, label = cfn.read_template(template_path)
    findings = cfn.validate(text, [region] if region else None)
    if findings:
        render.rows([f.to_public() for f in findings], FINDING_COLUMNS, output, quiet_field="rule", quiet=quiet)
        raise CheckFailed(f"{label}: {len(findings)} finding(s)")
    if output is not OutputFormat.table:
        render.rows([], FINDING_COLUMNS, output)
    render.note(f"{label}: no findings", quiet)


def _progress(quiet: bool):
    """Status lines; on a terminal one line redrawn in place with the elapsed time."""
    start = time.monotonic()
    live = sys.stderr.isatty() and not quiet

    def show(status: str) -> None:
        if quiet:
            return
        elapsed = f"{time.monotonic() - start:5.0f}s"
        if live:
            sys.stderr.write(f"\r\x1b[K{elapsed}  {status}")
            if status.endswith(("COMPLETE", "FAILED")):
                sys.stderr.write("\n")
            sys.stderr.flush()
        else:
            sys.stderr.write(f"{elapsed}  {status}\n")

    return show


@app.command()
def deploy(
    stack: StackArg,
    template_path: TemplateOpt = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Parameter Key=Value (repeatable).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Execute without asking (required without a terminal).")] = False,
    no_execute: Annotated[bool, typer.Option(help="Create the change set and stop.")] = False,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Validate, create a change set, show it, confirm, execute, wait, print outputs.

    \b
    Example: mcpadmin stack deploy mcp-prod --param DomainName=mcp.example.com --param CertificateArn=arn:...
    """
    from ..aws import cloudformation as cfn

    text, label = cfn.read_template(template_path)
    params = cfn.parse_params(param or [])
    errors = [f for f in cfn.validate(text, [region] if region else None) if f.severity == "error"]
    if errors:
        render.rows([f.to_public() for f in errors], FINDING_COLUMNS, output)
        raise CheckFailed(f"{label}: {len(errors)} validation error(s): not deploying")
    cf = aws_client("cloudformation", region, profile, endpoint_url)
    plan = cfn.plan(cf, stack, text, params)
    if plan.no_changes:
        render.note(f"stack {stack}: no changes to deploy", quiet)
        return
    render.rows([c.to_public() for c in plan.changes],
                [("action", "ACTION"), ("logical_id", "RESOURCE"), ("resource_type", "TYPE"),
                 ("replacement", "REPLACEMENT")], output)
    if no_execute:
        render.note(f"change set {plan.change_set} created and not executed", quiet)
        return
    if not yes:
        if not stdin_is_terminal():
            raise InvalidInput(f"refusing to execute change set {plan.change_set} without --yes "
                               "when stdin is not a terminal")
        if not typer.confirm(f"Execute {len(plan.changes)} change(s) on stack {stack}?", default=False, err=True):
            raise CheckFailed(f"not executed; change set {plan.change_set} left for review")
    result = cfn.execute(cf, plan, on_status=_progress(quiet))
    if not result.ok:
        for logical_id, status, reason in result.failures:
            render.note(f"  {logical_id}: {status}: {reason}")
        raise CheckFailed(f"stack {stack} ended {result.status}: "
                          f"{result.reason or (result.failures[0][2] if result.failures else 'see the events above')}")
    _print_outputs(result.outputs, output, quiet)


def _print_outputs(outputs: list[dict], output: OutputFormat, quiet: bool) -> None:
    rows = [{"key": o.get("OutputKey"), "value": o.get("OutputValue"), "description": o.get("Description")}
            for o in outputs]
    if not rows:
        render.note("(the stack has no outputs)", quiet)
        return
    render.rows(rows, [("key", "OUTPUT"), ("value", "VALUE"), ("description", "DESCRIPTION")], output,
                quiet_field="value", quiet=quiet)


@app.command()
def status(stack: StackArg, region: RegionOpt = None, profile: ProfileOpt = None,
           endpoint_url: EndpointOpt = None, output: OutputOpt = OutputFormat.table) -> None:
    """The stack's status and reason (exit 3 if it does not exist).

    \b
    Example: mcpadmin stack status mcp-prod
    """
    from ..aws import cloudformation as cfn

    described = cfn.describe(aws_client("cloudformation", region, profile, endpoint_url), stack)
    render.record({"stack": described["StackName"], "status": described["StackStatus"],
                   "reason": described.get("StackStatusReason"),
                   "updated": str(described.get("LastUpdatedTime") or described.get("CreationTime"))}, output)


@app.command()
def outputs(stack: StackArg, region: RegionOpt = None, profile: ProfileOpt = None,
            endpoint_url: EndpointOpt = None, output: OutputOpt = OutputFormat.table,
            quiet: QuietOpt = False) -> None:
    """The stack's outputs (e.g. the MCP endpoint URL).

    \b
    Example: mcpadmin stack outputs mcp-prod -o json
    """
    from ..aws import cloudformation as cfn

    described = cfn.describe(aws_client("cloudformation", region, profile, endpoint_url), stack)
    _print_outputs(described.get("Outputs", []), output, quiet)
