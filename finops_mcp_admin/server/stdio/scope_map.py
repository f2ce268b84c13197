"""Which scope each tool of a stdio server we do not control needs.

The administrator's map (`--tool-scope`, `[tool_scopes]` in the config) comes first. A tool it
does not name takes its scope from the annotations the server declares in `tools/list`, read
once at start-up from a probe child: `readOnlyHint: true` → tools:read, anything else (false,
absent, not a boolean) → tools:write. A tool the probe did not see (one that appears later) is
refused unless `--default-scope` says otherwise: deny when unsure. The annotations are read once,
before any client is connected, so a session cannot talk its child into a weaker map."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from ...errors import InvalidInput
from ..scopes import TOOLS_READ, TOOLS_WRITE
from . import child
from .options import StdioOptions

#: Pages of tools/list followed before the probe gives up (a server that never ends its list).
MAX_PAGES = 100


@dataclass(frozen=True)
class ToolScope:
    """One row of the map: the tool, the scope a call needs, and why."""

    tool: str
    scope: str | None
    source: str  # "config", "readOnlyHint", "not read-only", "default"


def scope_map(tools: list[dict[str, Any]], configured: Mapping[str, str]) -> list[ToolScope]:
    """The map for the tools a server listed: config first, else its annotations."""
    rows = []
    for tool in tools:
        name = tool.get("name")
        if not isinstance(name, str):
            continue
        if name in configured:
            rows.append(ToolScope(name, configured[name], "config"))
            continue
        annotations = tool.get("annotations")
        read_only = isinstance(annotations, dict) and annotations.get("readOnlyHint") is True
        rows.append(ToolScope(name, TOOLS_READ if read_only else TOOLS_WRITE,
                              "readOnlyHint" if read_only else "not read-only"))
    listed = {r.tool for r in rows}
    rows += [ToolScope(t, s, "config") for t, s in configured.items() if t not in listed]
    return sorted(rows, key=lambda r: r.tool)


def probe_tools(opts: StdioOptions) -> list[dict[str, Any]]:
    """Start one child, initialize it, read every page of tools/list, end it. InvalidInput
    (the server refuses to start) when it cannot be done within opts.start_timeout."""
    try:
        return anyio.run(_probe, opts)
    except TimeoutError:
        raise InvalidInput(f"stdio server did not list its tools within {opts.start_timeout:g} s: "
                           f"{' '.join(opts.command)[:200]}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"cannot list the stdio server's tools ({type(exc).__name__}: "
                           f"{str(exc)[:200]})") from None


async def _probe(opts: StdioOptions) -> list[dict[str, Any]]:
    proc = await child.spawn(opts)
    try:
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, proc)  # a chatty server must not block on a full stderr pipe
            try:
                tools = await _list_tools(opts, proc)
            except Exception as exc:  # raised below, unwrapped by the task group
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return tools
    finally:
        with anyio.CancelScope(shield=True):
            await child.end(proc)


async def _drain(proc: Any) -> None:
    while await proc.stderr.read(65536):
        pass


async def _list_tools(opts: StdioOptions, proc: Any) -> list[dict[str, Any]]:
    with anyio.fail_after(opts.start_timeout):
        peer = _LinePeer(proc)
        await peer.call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                       "clientInfo": {"name": "mcpadmin-scope-probe", "version": "1"}})
        await peer.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools: list[dict[str, Any]] = []
        cursor = None
        for _ in range(MAX_PAGES):
            page = await peer.call("tools/list", {"cursor": cursor} if cursor else {})
            tools += [t for t in page.get("tools", []) if isinstance(t, dict)]
            cursor = page.get("nextCursor")
            if not cursor:
                return tools
        raise ValueError(f"tools/list has more than {MAX_PAGES} pages")


class _LinePeer:
    def __init__(self, proc: Any) -> None:
        self.proc, self.next_id = proc, 0

    async def send(self, message: dict[str, Any]) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise ValueError(f"the stdio server exited during {method}")
            message = json.loads(line)
            if isinstance(message, dict) and message.get("id") == self.next_id and "method" not in message:
                if "error" in message:
                    raise ValueError(f"{method} failed: {str(message['error'])[:200]}")
                result = message["result"]
                if not isinstance(result, dict):
                    raise TypeError(f"{method} result is not an object")
                return result
