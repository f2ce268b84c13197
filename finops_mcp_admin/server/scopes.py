"""Which scope a request needs: the per-tool scope policy and the tool names a JSON-RPC body
calls, read exactly as the MCP SDK will read them (no parser differential)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ._asgi import BadBody


@dataclass(frozen=True)
class ScopePolicy:
    """Which scope each tool needs: the per-tool map, else the default."""

    tool_scopes: dict[str, str] = field(default_factory=dict)
    default_scope: str = "tools:read"

    def required(self, tool: str) -> str:
        """The scope a call of this tool needs."""
        return self.tool_scopes.get(tool, self.default_scope)


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


def called_tools(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC body calls (a message or a batch).

    The body is read exactly as the SDK will read it: `json.loads(bytes)` auto-detects UTF-16
    and UTF-32, so anything but UTF-8 is refused here — a UTF-16 `tools/call` would otherwise
    slip past the substring fast path below. Fast path: in UTF-8 without a backslash no JSON
    string can be escaped, so a body that does not contain the literal `tools/call` calls no
    tool (the full parse with duplicate-key detection was a third of the envelope's cost on
    non-tool requests)."""
    if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
        raise BadBody("JSON body must be UTF-8 (RFC 8259)")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadBody("JSON body must be UTF-8 (RFC 8259)") from None
    check_nesting(text)  # before the fast path: the SDK's parser must not see it either
    if "\\" not in text and "tools/call" not in text:
        return []
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise BadBody(str(exc) or "invalid JSON") from None
    messages = data if isinstance(data, list) else [data]
    tools = []
    for message in messages:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if not isinstance(name, str):
                raise BadBody("tools/call without a tool name")
            tools.append(name)
    return tools
