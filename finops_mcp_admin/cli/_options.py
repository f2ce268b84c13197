"""Options shared by commands, declared once (Annotated types) so help and env vars agree.

The AWS options only declare --region/--profile/--endpoint-url; aws_options() hands them to the
core, whose aws.session builds the clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._render import OutputFormat

if TYPE_CHECKING:
    from ..aws.session import AwsOptions

StoreOpt = Annotated[str | None, typer.Option(
    "--store", envvar="MCPADMIN_STORE", show_envvar=True, metavar="URL",
    help="Key store: sqlite:///path (default: $XDG_DATA_HOME/mcpadmin/mcpadmin.db) or "
         "redis[s]://[user@]host:port/db (password from MCPADMIN_REDIS_PASSWORD, or fetched from "
         "Secrets Manager by MCPADMIN_REDIS_PASSWORD_SECRET_ARN).")]
NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", envvar="MCPADMIN_NAMESPACE", show_envvar=True,
    help="Redis key prefix, so several environments can share one Redis [default: mcpadmin].")]
ServerNameOpt = Annotated[str | None, typer.Option(
    "--redis-server-name", envvar="MCPADMIN_REDIS_SERVER_NAME", show_envvar=True, metavar="NAME",
    help="rediss:// only: verify the TLS certificate against NAME (and send it as SNI) while "
         "connecting to the URL's host, e.g. 127.0.0.1 through `mcpadmin stack tunnel`.")]
OutputOpt = Annotated[OutputFormat, typer.Option(
    "--output", "-o", case_sensitive=False, help="Output format.")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only the essential value (key, ids); no messages.")]

RegionOpt = Annotated[str | None, typer.Option(
    envvar="AWS_REGION", help="AWS region [default: AWS_REGION / profile].")]
ProfileOpt = Annotated[str | None, typer.Option(envvar="AWS_PROFILE", help="AWS profile.")]
EndpointOpt = Annotated[str | None, typer.Option(
    envvar="AWS_ENDPOINT_URL", help="AWS endpoint URL (e.g. a test endpoint).")]


def aws_options(region: str | None, profile: str | None, endpoint_url: str | None) -> AwsOptions:
    """These --region/--profile/--endpoint-url values for the core (imported only when AWS is used)."""
    from ..aws.session import AwsOptions

    return AwsOptions(region, profile, endpoint_url)
