"""`mcpadmin stack ...`: the hardened CloudFormation stack."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import CheckFailed
from . import _render as render
from ._options import EndpointOpt, OutputOpt, ProfileOpt, QuietOpt, RegionOpt, aws_options
from ._render import OutputFormat
from ._stdin import stdin_is_terminal

if TYPE_CHECKING:
    from ..aws.cloudformation import Finding, Plan
    from ..aws.stack_events import StackEvent
    from ..aws.tunnel import Tunnel

app = typer.Typer(no_args_is_help=True, help="Validate and deploy the hardened AWS stack.")

TemplateOpt = Annotated[str | None, typer.Option(
    "--template", "-t", help="Template file [default: the shipped mcp-server.yaml].")]
StackArg = Annotated[str, typer.Argument(help="Stack name.")]
FINDING_COLUMNS = [("rule", "RULE"), ("severity", "SEVERITY"), ("resource", "RESOURCE"), ("line", "LINE"),
                   ("message", "MESSAGE")]
CHANGE_COLUMNS = [("action", "ACTION"), ("logical_id", "RESOURCE"), ("resource_type", "TYPE"),
                  ("replacement", "REPLACEMENT")]


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

    checked = cfn.validate_template(template_path, region)
    if checked.findings:
        render.rows([f.to_public() for f in checked.findings], FINDING_COLUMNS, output,
                    quiet_field="rule", quiet=quiet)
        raise CheckFailed(f"{checked.label}: {len(checked.findings)} finding(s)")
    if output is not OutputFormat.table:
        render.rows([], FINDING_COLUMNS, output)
    render.note(f"{checked.label}: no findings", quiet)


def event_line(event: StackEvent, elapsed: float) -> str:
    """One progress line: elapsed time, resource, type, status, reason."""
    reason = f"  {event.reason}" if event.reason else ""
    return f"{elapsed:5.0f}s  {event.logical_id:<30} {event.resource_type:<40} {event.status}{reason}"


class _StackView:
    """`stack deploy | execute | delete` on the terminal: tables on stdout, progress and messages
    on stderr."""

    def __init__(self, output: OutputFormat, quiet: bool) -> None:
        self.output, self.quiet = output, quiet
        self._start = time.monotonic()

    def findings(self, errors: list[Finding]) -> None:
        render.rows([f.to_public() for f in errors], FINDING_COLUMNS, self.output)

    def changes(self, plan: Plan) -> None:
        render.rows([c.to_public() for c in plan.changes], CHANGE_COLUMNS, self.output)

    def confirm(self, question: str) -> bool:
        return typer.confirm(question, default=False, err=True)

    def event(self, event: StackEvent) -> None:
        render.note(event_line(event, time.monotonic() - self._start), self.quiet)

    def failures(self, failures: list[StackEvent]) -> None:
        if failures:
            render.note("failed resources of this operation:")
        for event in failures:
            render.note(f"  {event.logical_id} ({event.resource_type}): {event.status}: {event.reason}")

    def outputs(self, outputs: list[dict[str, Any]]) -> None:
        _print_outputs(outputs, self.output, self.quiet)

    def note(self, text: str) -> None:
        render.note(text, self.quiet)

    def warning(self, text: str) -> None:
        render.note(f"warning: {text}")


YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help="Go ahead without asking (required without a terminal).")]


@app.command()
def deploy(
    stack: StackArg,
    template_path: TemplateOpt = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Parameter Key=Value (repeatable; wins over --parameters-file). On an "
        "update, parameters not given keep their previous values.")] = None,
    parameters_file: Annotated[str | None, typer.Option(
        "--parameters-file", metavar="FILE", help="Parameters as JSON (the aws CLI's list of "
        "ParameterKey/ParameterValue, or a mapping) or a YAML mapping.")] = None,
    yes: YesOpt = False,
    no_execute: Annotated[bool, typer.Option(
        "--no-execute", help="Create the change set and stop (run it later with `stack execute`).")] = False,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Deploy the stack: check, change set, confirm, execute.

    Checks the parameters against the template, validates, makes a change set and shows it,
    confirms, executes it showing each resource's events, and prints the outputs. On an update,
    parameters not given keep their previous values.

    \b
    Example: mcpadmin stack deploy mcp-prod --parameters-file prod.json --param DesiredCount=2
    """
    from ..aws.deploy import DeployRequest
    from ..aws.deploy import deploy as run_deploy

    request = DeployRequest(stack, template_path, tuple(param or ()),
                            aws_options(region, profile, endpoint_url), execute=not no_execute,
                            assume_yes=yes, interactive=stdin_is_terminal(), parameters_file=parameters_file)
    run_deploy(request, _StackView(output, quiet))


@app.command()
def execute(
    stack: StackArg,
    change_set: Annotated[str | None, typer.Option(
        "--change-set", metavar="NAME", help="The change set [default: the stack's only one ready].")] = None,
    yes: YesOpt = False,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Execute a reviewed change set.

    Runs a change set made earlier by `stack deploy --no-execute`, showing its events.

    \b
    Example: mcpadmin stack execute mcp-prod --change-set mcpadmin-0123456789ab
    """
    from ..aws.stack_ops import Consent, StackRequest, execute_reviewed

    execute_reviewed(StackRequest(stack, aws_options(region, profile, endpoint_url),
                                  Consent(yes, stdin_is_terminal()), change_set), _StackView(output, quiet))


@app.command()
def delete(
    stack: StackArg, yes: YesOpt = False,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Delete the stack (asks first).

    Follows the deletion to its end; resources with DeletionPolicy Retain stay.

    \b
    Example: mcpadmin stack delete mcp-staging --yes
    """
    from ..aws.stack_ops import Consent, StackRequest, delete_stack

    delete_stack(StackRequest(stack, aws_options(region, profile, endpoint_url),
                              Consent(yes, stdin_is_terminal())), _StackView(OutputFormat.table, quiet))


def _print_outputs(outputs: list[dict[str, Any]], output: OutputFormat, quiet: bool) -> None:
    rows = [{"key": o.get("OutputKey"), "value": o.get("OutputValue"), "description": o.get("Description")}
            for o in outputs]
    if not rows and output is OutputFormat.table:
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

    described = cfn.describe(aws_options(region, profile, endpoint_url), stack)
    render.record({"stack": described["StackName"], "status": described["StackStatus"],
                   "reason": described.get("StackStatusReason"),
                   "updated": described.get("LastUpdatedTime") or described.get("CreationTime")}, output)


@app.command()
def outputs(stack: StackArg, region: RegionOpt = None, profile: ProfileOpt = None,
            endpoint_url: EndpointOpt = None, output: OutputOpt = OutputFormat.table,
            quiet: QuietOpt = False) -> None:
    """The stack's outputs (e.g. the MCP endpoint URL).

    \b
    Example: mcpadmin stack outputs mcp-prod -o json
    """
    from ..aws import cloudformation as cfn

    described = cfn.describe(aws_options(region, profile, endpoint_url), stack)
    _print_outputs(described.get("Outputs", []), output, quiet)


class _TunnelView:
    """`stack tunnel` on the terminal: everything on stderr (stdout stays free of chatter)."""

    def opened(self, tunnel: Tunnel) -> None:
        where = tunnel.endpoints
        render.note("\n".join([
            f"Tunnel to stack {tunnel.stack}'s key store {where.cache_host}:{where.cache_port} through "
            f"{tunnel.target}, on 127.0.0.1:{tunnel.local_port}. In another shell:",
            f"  export MCPADMIN_STORE={tunnel.store_url}",
            f"  export MCPADMIN_REDIS_SERVER_NAME={where.cache_host}",
            f"  export MCPADMIN_REDIS_PASSWORD_SECRET_ARN={where.secret_arn}",
            "  mcpadmin keys list",
            "(the AUTH token is read from Secrets Manager by each command, with your AWS credentials; "
            "it is never printed, exported or put on a command line). Ctrl-C closes the tunnel.",
        ]))

    def closed(self, tunnel: Tunnel, note: str) -> None:
        render.note(f"tunnel closed: {note}")


@app.command()
def tunnel(
    stack: StackArg,
    local_port: Annotated[int | None, typer.Option(
        "--local-port", min=1, max=65535, help="Local port to listen on [default: a free one].")] = None,
    region: RegionOpt = None, profile: ProfileOpt = None, endpoint_url: EndpointOpt = None,
) -> None:
    """Forward a local port to the stack's private Redis through a running task (SSM/ECS Exec).

    Needs the AWS session-manager-plugin. Prints the MCPADMIN_* settings to use in another
    shell; runs until Ctrl-C.

    \b
    Example: mcpadmin stack tunnel mcp-prod --local-port 16379
    """
    from ..aws.tunnel import TunnelRequest, open_tunnel

    open_tunnel(TunnelRequest(stack, local_port, aws_options(region, profile, endpoint_url)), _TunnelView())
