"""Assembling `serve --stdio`: the options checked, the scope map probed, the gateway built."""

from __future__ import annotations

from typing import Any

from ...security_events.writer import SecurityEventLog
from ..scopes import ScopePolicy
from .options import StdioOptions
from .scope_map import ToolScope, probe_tools, scope_map


def scope_rows(stdio: StdioOptions, configured: ScopePolicy) -> list[ToolScope]:
    """What each tool of the stdio server will need (probes a child; InvalidInput on failure),
    and the scope of tools it did not list."""
    rows = scope_map(probe_tools(stdio.check()), configured.tool_scopes)
    return [*rows, ToolScope("(any other tool)", configured.default_scope, "default")]


def build_gateway(stdio: StdioOptions, configured: ScopePolicy,
                  events: SecurityEventLog) -> tuple[Any, ScopePolicy]:
    """The inner app and the scope policy the envelope enforces in front of it."""
    from .gateway import StdioGateway

    rows = scope_map(probe_tools(stdio.check()), configured.tool_scopes)
    policy = ScopePolicy({r.tool: r.scope for r in rows if r.scope is not None},
                         configured.default_scope, configured.method_scopes)
    return StdioGateway(stdio, events), policy
