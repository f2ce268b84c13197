"""The default MCP app: `whoami` and tag-compliance tools that need no AWS.

Built on the official SDK (`mcp.server.mcpserver.MCPServer`), served over Streamable HTTP.
`get_tagging_policy` and `validate_resource_tags` need `tools:read`; `update_tagging_policy`
needs `tools:write` (the default scope map in run.py).
"""


import asyncio
import functools
import json
import logging
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

#: A pattern longer than this is refused: tag values are at most 256 characters (AWS).
MAX_PATTERN = 1024

READ_TOOLS = ("whoami", "get_tagging_policy", "validate_resource_tags")
WRITE_TOOLS = ("update_tagging_policy",)


def default_policy_text() -> str:
    """The policy shipped with the package."""
    return resources.files("finops_mcp_admin.data").joinpath("tagging-policy.json").read_text()


def check_policy(policy: Any) -> dict[str, Any]:
    """Validate a tagging policy document; InvalidInput with the first problem."""
    if not isinstance(policy, dict) or not isinstance(policy.get("required_tags"), list):
        raise InvalidInput("a tagging policy is an object with a required_tags list")
    for section in ("required_tags", "optional_tags"):
        for rule in policy.get(section, []):
            if not isinstance(rule, dict) or not isinstance(rule.get("key"), str) or not rule["key"]:
                raise InvalidInput(f"every entry of {section} needs a non-empty key")
            if "pattern" in rule:
                _check_pattern(rule["key"], rule["pattern"])
            if "allowed_values" in rule and not (isinstance(rule["allowed_values"], list) and
                                                  all(isinstance(v, str) for v in rule["allowed_values"])):
                raise InvalidInput(f"tag {rule['key']}: allowed_values must be a list of strings")
    applies = policy.get("applies_to", [])
    if not isinstance(applies, list) or not all(isinstance(t, str) for t in applies):
        raise InvalidInput("applies_to must be a list of resource types")
    return policy


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """A policy pattern compiled by RE2: linear-time matching, so a client-set pattern such as
    `(a+)+$` cannot stall the event loop (Python's re backtracks exponentially on it). RE2 has
    no backreferences or lookarounds: such patterns are refused."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print the refused pattern to stderr
    return re2.compile(pattern, options)


def _check_pattern(key: str, pattern: Any) -> None:
    import re2

    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
        raise InvalidInput(f"tag {key}: pattern must be a string of at most {MAX_PATTERN} characters")
    try:
        compile_pattern(pattern)
    except re2.error:
        raise InvalidInput(f"tag {key}: pattern is not a valid RE2 regular expression (no "
                           "backreferences or lookarounds)") from None


def validate_tags(policy: dict[str, Any], resource_type: str, tags: dict[str, str]) -> dict[str, Any]:
    """Check one resource's tags against the policy."""
    applies = policy.get("applies_to") or []
    if applies and resource_type not in applies:
        return {"resource_type": resource_type, "in_scope": False, "compliant": True, "violations": []}
    violations = []
    for rule in policy["required_tags"]:
        key = rule["key"]
        if key not in tags or not str(tags[key]).strip():
            violations.append({"tag": key, "problem": "missing"})
            continue
        violations += _value_problems(rule, str(tags[key]))
    for rule in policy.get("optional_tags", []):
        if rule["key"] in tags:
            violations += _value_problems(rule, str(tags[rule["key"]]))
    return {"resource_type": resource_type, "in_scope": True, "compliant": not violations,
            "violations": violations}


def _value_problems(rule: dict[str, Any], value: str) -> list[dict[str, str]]:
    problems = []
    if "allowed_values" in rule and value not in rule["allowed_values"]:
        problems.append({"tag": rule["key"], "problem": "value not allowed",
                         "allowed": ", ".join(rule["allowed_values"])})
    if "pattern" in rule and not compile_pattern(rule["pattern"]).fullmatch(value):
        problems.append({"tag": rule["key"], "problem": f"value does not match {rule['pattern']}"})
    return problems


class PolicyHolder:
    """The live policy; persisted atomically to its file when one was given."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        text = Path(path).read_text() if path else default_policy_text()
        try:
            self.policy = check_policy(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"tagging policy is not valid JSON: {exc.msg}") from None

    def replace(self, policy: dict[str, Any]) -> None:
        """Validate, persist (write-then-rename), then swap."""
        check_policy(policy)
        if self.path:
            directory = os.path.dirname(os.path.abspath(self.path))
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".policy-")
            with os.fdopen(fd, "w") as fh:
                json.dump(policy, fh, indent=2)
            os.replace(tmp, self.path)
        self.policy = policy


def build_mcp_app(policy: PolicyHolder, **server_options: Any) -> Any:
    """The SDK's Streamable-HTTP ASGI app with our tools (import cost ≈0.6 s: serve only),
    answering each request POST with one `application/json` body (MCP 2025-06-18 lets the server
    choose JSON or an event stream per POST).

    Why JSON: the official Python client closes an SSE answer as soon as it holds the response,
    before the chunked body's end arrives, so httpcore cannot pool the connection and every call
    paid a new TCP connection and TLS handshake (~5 ms a call over HTTPS, ~2 ms with JSON;
    docs/benchmarks.md). Why it is safe here: in JSON mode the SDK drops what a tool sends before
    its result (progress, log notifications) and refuses its own requests (sampling,
    elicitation), and our tools send none: they only return a result, and whoami's Context is
    read for the HTTP request and nothing else (tests/server/test_tools.py reads every tool's
    code and fails on a tool that could speak). The GET event stream stays for the session's
    own messages. A JSON answer has no keep-alive pings before it: fine for tools that answer in
    milliseconds. A request whose client leaves ends (EndWhenClientLeaves), as an event stream
    did. Wrapped apps (`--app`) and `--stdio` keep their event streams.

    server_options go to MCPServer (benchmarks/bench_peer.py passes the SDK's own bearer auth,
    `token_verifier=` and `auth=`, to serve this very app behind it)."""
    from mcp.server.transport_security import TransportSecuritySettings

    # Host/Origin checks are the envelope's job (exact allowlist, logged refusals); the SDK's
    # own check would silently turn on for loopback hosts.
    return EndWhenClientLeaves(build_mcp_server(policy, **server_options).streamable_http_app(
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)))


class EndWhenClientLeaves:
    """An ASGI app whose POSTs end when their client disconnects before the response's end.

    For the SDK's JSON mode: it awaits a request's response with nothing reading the connection
    (its event streams listen for the disconnect). A response that never comes then held the
    request's task, its session (in flight, so never idle) and uvicorn's shutdown forever: a
    client that sends two requests with one id at once gets both answers' slot taken by the
    second (the SDK keys them by id), and the first waits on. Once the app has read the body,
    a watcher task takes the rest of the receive channel; a disconnect after the response's end
    cancels nothing (the SDK hands a notification to the session after its 202). Native asyncio
    task and cancel, as sessions.py: 7-12 µs a request in-process; an anyio task group cost
    50-90 µs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        watcher: asyncio.Task[None] | None = None
        completed = ended = False

        async def watch() -> None:
            nonlocal ended
            while (await receive())["type"] != "http.disconnect":
                pass
            if not completed and task is not None:
                ended = True
                task.cancel()

        async def receive_body() -> Any:
            nonlocal watcher
            message = await receive()
            if not message.get("more_body") and watcher is None:
                watcher = asyncio.get_running_loop().create_task(watch())
            return message

        async def send_noting_end(message: Any) -> None:
            nonlocal completed
            if message["type"] == "http.response.body" and not message.get("more_body"):
                completed = True
            await send(message)

        try:
            await self.app(scope, receive_body, send_noting_end)
        except asyncio.CancelledError:
            if not ended or (task is not None and task.uncancel()):
                raise  # not ours, or someone else cancelled too (the envelope, shutdown)
        finally:
            if watcher is not None:
                watcher.cancel()


def build_mcp_server(policy: PolicyHolder, **server_options: Any) -> Any:
    """The SDK's MCPServer with the built-in tools registered (build_mcp_app serves it)."""
    # MCPServer() calls logging.basicConfig; a handler on the root logger makes that a no-op,
    # so the SDK cannot add its own console handler next to our JSON event log.
    if not logging.getLogger().handlers:
        logging.getLogger().addHandler(logging.NullHandler())
    from mcp.server.mcpserver import Context, MCPServer

    from .. import __version__

    # serverInfo.version in the initialize result (the SDK's default is empty).
    server = MCPServer("finops-mcp-admin", version=__version__, log_level="WARNING", **server_options)

    @server.tool()
    async def whoami(ctx: Context) -> dict[str, Any]:
        """The calling key's id, name and scopes."""
        request = ctx.request_context.request
        user = request.scope.get("user") if request is not None else None
        token = getattr(user, "access_token", None)
        if token is None:
            return {"key_id": None, "name": None, "scopes": []}
        claims = token.claims or {}
        oauth = {k: claims[k] for k in ("sub", "client_id") if k in claims}  # OAuth callers
        return {"key_id": claims.get("key_id", token.client_id), "name": claims.get("name"),
                "scopes": list(token.scopes), **oauth}

    @server.tool()
    def get_tagging_policy() -> dict[str, Any]:
        """The tagging policy resources are checked against."""
        return policy.policy

    @server.tool()
    def validate_resource_tags(resource_type: str, tags: dict[str, str]) -> dict[str, Any]:
        """Check a resource's tags (e.g. resource_type "ec2:instance") against the policy."""
        return validate_tags(policy.policy, resource_type, tags)

    @server.tool()
    def update_tagging_policy(new_policy: dict[str, Any]) -> dict[str, Any]:
        """Replace the tagging policy (needs tools:write)."""
        try:
            policy.replace(new_policy)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return {"updated": True, "required_tags": [r["key"] for r in new_policy["required_tags"]]}

    return server
