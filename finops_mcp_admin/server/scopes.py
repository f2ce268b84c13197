"""Which scope a request needs: every MCP method mapped to a scope, deny by default, and the
JSON-RPC messages of a body read exactly as the MCP SDK will read them (no parser differential)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._asgi import BadBody

TOOLS_READ = "tools:read"
TOOLS_WRITE = "tools:write"
RESOURCES_READ = "resources:read"
PROMPTS_READ = "prompts:read"
LOGGING_WRITE = "logging:write"

#: The scope each client-to-server request needs; None: a valid key is enough. `tools/call`,
#: `completion/complete` and `subscriptions/listen` depend on their params (ScopePolicy).
#: A method missing here is refused (a new protocol method is denied until it is mapped).
METHOD_SCOPES: dict[str, str | None] = {
    "initialize": None, "ping": None, "server/discover": None,
    "tools/list": TOOLS_READ,
    # Tasks (2025-11-25) carry the results of task-augmented tool calls.
    "tasks/get": TOOLS_READ, "tasks/result": TOOLS_READ, "tasks/list": TOOLS_READ,
    "tasks/cancel": TOOLS_READ,
    "resources/list": RESOURCES_READ, "resources/templates/list": RESOURCES_READ,
    "resources/read": RESOURCES_READ, "resources/subscribe": RESOURCES_READ,
    "resources/unsubscribe": RESOURCES_READ,
    "prompts/list": PROMPTS_READ, "prompts/get": PROMPTS_READ,
    "logging/setLevel": LOGGING_WRITE,  # changes what the session is sent
}
_COMPLETION = {"ref/prompt": PROMPTS_READ, "ref/resource": RESOURCES_READ}
_LISTEN = {"toolsListChanged": TOOLS_READ, "promptsListChanged": PROMPTS_READ,
           "resourcesListChanged": RESOURCES_READ, "resourceSubscriptions": RESOURCES_READ}
_PARAM_DEPENDENT = ("tools/call", "completion/complete", "subscriptions/listen")


@dataclass(frozen=True)
class Denial:
    """Why a request is refused: the scope it lacks, or None when no scope would grant it."""

    reason: str
    scope: str | None


@dataclass(frozen=True)
class ScopePolicy:
    """Which scope each tool and method needs.

    default_scope: for tools not in tool_scopes; None refuses them (the default under `--app`,
    whose tools nobody has reviewed). method_scopes: config additions to METHOD_SCOPES, e.g.
    a wrapped app's own methods."""

    tool_scopes: Mapping[str, str] = field(default_factory=dict)
    default_scope: str | None = TOOLS_READ
    method_scopes: Mapping[str, str] = field(default_factory=dict)

    def required(self, tool: str) -> str | None:
        """The scope a call of this tool needs (None: the tool is refused)."""
        return self.tool_scopes.get(tool, self.default_scope)

    def scopes_supported(self) -> list[str]:
        """Every scope this server checks (RFC 9728 `scopes_supported`)."""
        scopes = {s for s in METHOD_SCOPES.values() if s} | set(self.tool_scopes.values())
        scopes |= set(self.method_scopes.values()) | {TOOLS_READ}
        if self.default_scope:
            scopes.add(self.default_scope)
        return sorted(scopes)

    def check(self, messages: list[dict[str, Any]], granted: Collection[str]) -> Denial | None:
        """The first message (of a batch: any one refuses the whole body) the key may not send."""
        for message in messages:
            method = message.get("method")
            if method is None:  # a response to a server request (sampling, roots, elicitation)
                continue
            if method.startswith("notifications/") and "id" not in message:
                continue  # notifications return nothing and act on the caller's own session
            what, scopes = self._needs(method, message.get("params"))
            if scopes is None:
                return Denial(f"{what} is not in the scope map", None)
            for scope in scopes:
                if scope not in granted:
                    return Denial(f"{what} needs {scope}", scope)
        return None

    def _needs(self, method: str, params: Any) -> tuple[str, tuple[str, ...] | None]:
        """(what, scopes all needed); scopes None when nothing grants the method."""
        params = params if isinstance(params, dict) else {}
        if method == "tools/call":
            name = params["name"]  # a str: checked by jsonrpc_messages
            scope = self.required(name)
            return f"tool {name[:64]}", None if scope is None else (scope,)
        what = f"method {method[:64]}"
        if method in self.method_scopes and method not in _PARAM_DEPENDENT:
            return what, (self.method_scopes[method],)
        if method == "completion/complete":
            ref = params.get("ref")
            kind = ref.get("type") if isinstance(ref, dict) else None
            scope = _COMPLETION.get(kind) if isinstance(kind, str) else None
            return what, None if scope is None else (scope,)
        if method == "subscriptions/listen":
            wanted = params.get("notifications")
            if not isinstance(wanted, dict) or not set(wanted) <= set(_LISTEN):
                return what, None
            return what, tuple(sorted({_LISTEN[k] for k, v in wanted.items() if v}))
        if method not in METHOD_SCOPES:
            return what, None
        scope = METHOD_SCOPES[method]
        return what, () if scope is None else (scope,)


#: Deepest JSON nesting accepted. json.loads recurses per level: a 200k-deep body raised
#: RecursionError (a 500); MCP messages nest a handful of levels, tool arguments a few more.
MAX_NESTING = 128
# A JSON string (escapes included) or one bracket: brackets inside strings do not nest.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def check_nesting(text: str, limit: int = MAX_NESTING) -> None:
    """BadBody when the JSON text nests deeper than `limit`, before any recursive parser sees it.
    Counting brackets is enough for almost every body, so the scan runs only past that."""
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                raise BadBody(f"JSON nested deeper than {limit} levels")
        elif char in "]}":
            depth -= 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise BadBody("duplicate key in JSON object")
    return dict(pairs)


def _parse(text: str) -> Any:
    """The JSON value of a body, duplicate keys refused wherever they could decide a scope.

    In UTF-8 without a backslash a JSON key can only be spelt literally, so a key that appears
    at most once in the text cannot be duplicated in any object: such bodies skip the
    duplicate-key hook (a Python call per object, 2-3x the parse). Completions and subscriptions
    (keys "ref", "notifications") always take the strict parse. Unrolled: generator
    expressions here cost more than the parse of a ping."""
    try:
        if ("\\" not in text and text.count('"method"') < 2 and text.count('"params"') < 2
                and text.count('"name"') < 2 and '"ref"' not in text
                and '"notifications"' not in text):
            return json.loads(text)
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise BadBody(str(exc) or "invalid JSON") from None


def jsonrpc_messages(body: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages of a body (one message or a batch); BadBody if it is not one.

    The body is read exactly as the SDK will read it: `json.loads(bytes)` auto-detects UTF-16
    and UTF-32, so anything but UTF-8 is refused here; a method name that is not a string, or a
    `tools/call` without a tool name, is refused before any scope is decided."""
    # json.detect_encoding (what json.loads(bytes) uses) says UTF-8 unless the body opens with
    # a UTF-16/32 BOM or has a NUL in its first four bytes: only then is it asked.
    if (b"\x00" in body[:4] or body[:1] in (b"\xfe", b"\xff")) and json.detect_encoding(body) not in (
            "utf-8", "utf-8-sig"):
        raise BadBody("JSON body must be UTF-8 (RFC 8259)")
    try:  # as "utf-8-sig" decodes, without its codec's Python-level wrapper (~0.5 µs)
        text = (body[3:] if body[:3] == b"\xef\xbb\xbf" else body).decode()
    except UnicodeDecodeError:
        raise BadBody("JSON body must be UTF-8 (RFC 8259)") from None
    check_nesting(text)  # before any parser: the SDK's own parser must not see it either
    data = _parse(text)
    if isinstance(data, dict):
        messages = [data]
    elif isinstance(data, list) and data and all(isinstance(m, dict) for m in data):
        messages = data
    else:
        raise BadBody("not a JSON-RPC message or batch")
    for message in messages:
        method = message.get("method")
        if method is not None and not isinstance(method, str):
            raise BadBody("JSON-RPC method is not a string")
        if method == "tools/call":
            params = message.get("params")
            if not isinstance(params, dict) or not isinstance(params.get("name"), str):
                raise BadBody("tools/call without a tool name")
    return messages


def request_ids(messages: list[dict[str, Any]]) -> tuple[str, ...]:
    """The ids of a body's JSON-RPC requests, as the MCP SDK keys their answers: `str(id)`, so
    1 and "1" are one id. Two requests in flight with one id in a session lose an answer and
    stall (sessions.py). An integral number is its integer (1.0 is 1, True is 1): the SDK does
    not take those as request ids at all (it answers 202), so counting them as 1 only refuses
    what is not a request there."""
    ids = []
    for message in messages:
        if "method" in message and "id" in message:
            value = message["id"]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            ids.append(str(int(value)) if isinstance(value, bool) else str(value))
    return tuple(ids)
