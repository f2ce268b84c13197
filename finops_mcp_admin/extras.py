"""Optional parts of the install: which pip extra brings which top-level module.

The core install (keys, CORS, the local audit) needs only typer, redis, argon2-cffi and tabulate.
`mcpadmin serve` and the bridge need `[server]`; the stack, CloudWatch audit and Secrets Manager
need `[aws]`. Those modules are imported lazily, so a missing one surfaces as a
ModuleNotFoundError in the command that needs it; the CLI's error boundary turns it into one
line naming the extra."""

from __future__ import annotations

from .errors import BackendUnavailable

#: Top-level module -> the extra that installs it (its own or its dependencies').
EXTRA_OF_MODULE: dict[str, str] = {
    "mcp": "server", "uvicorn": "server", "re2": "server", "anyio": "server", "httpx": "server",
    "httpx_sse": "server", "starlette": "server", "sse_starlette": "server", "pydantic": "server",
    "pydantic_core": "server", "h11": "server", "jwt": "server", "httpx2": "server",
    "boto3": "aws", "botocore": "aws", "s3transfer": "aws", "cfnlint": "aws",
}

PACKAGE = "finops-mcp-admin"


class MissingExtra(BackendUnavailable):
    """A command needs an optional part of the install that is not there (exit 5)."""


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The one-line error for a module an extra would have installed; None for any other."""
    top = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return MissingExtra(f"this command needs the [{extra}] extra ({top} is not installed): "
                        f"pip install '{PACKAGE}[{extra}]'")
