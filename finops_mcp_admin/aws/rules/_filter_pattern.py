"""A CloudWatch Logs JSON filter pattern matcher for the subset the stack uses —
`{ $.field = "value" }` with `=`/`!=`, `&&`/`||` (no parentheses), quoted strings with `*`
wildcards, bare numbers — and real event lines from the server's own writer to test it on.

E9107 matches the template's metric filter against a line the server really writes: a filter
that counts nothing (a renamed field, a typo in the event name) is the failure it exists to
catch. Not a rule module (the leading underscore keeps cfn-lint from loading it as one)."""

from __future__ import annotations

import fnmatch
import json
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from finops_mcp_admin.security_events import schema

_TERM = re.compile(r'\s*\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*(=|!=)\s*("(?:[^"\\]|\\.)*"|[^\s&|}]+)\s*')


class UnsupportedPattern(ValueError):
    """The pattern uses CloudWatch syntax outside the subset this matcher understands."""


Term = tuple[list[str], str, Any]


def parse(pattern: str) -> list[list[Term]]:
    """A pattern as OR-groups of AND-ed terms: [[(path, op, value), ...], ...]."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise UnsupportedPattern("not a JSON filter pattern ({ ... })")
    groups = []
    for alternative in text[1:-1].split("||"):
        terms = []
        for clause in alternative.split("&&"):
            match = _TERM.fullmatch(clause)
            if not match:
                raise UnsupportedPattern(f"cannot read the term {clause.strip()!r}")
            path, op, raw = match.groups()
            terms.append((path.split(".")[1:], op, _literal(raw)))
        groups.append(terms)
    return groups


def _literal(raw: str) -> Any:
    if raw.startswith('"'):
        return json.loads(raw)
    try:
        return float(raw)
    except ValueError:
        return raw


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float):
        return isinstance(actual, (int, float)) and not isinstance(actual, bool) and actual == expected
    if not isinstance(actual, str):
        return False
    return fnmatch.fnmatchcase(actual, expected) if "*" in expected else actual == expected


def _holds(event: dict[str, Any], term: Term) -> bool:
    path, op, expected = term
    value: Any = event
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False  # CloudWatch: a missing field matches neither = nor !=
        value = value[key]
    return _equal(value, expected) == (op == "=")


def matches(pattern: str, line: str) -> bool:
    """Whether CloudWatch would count this log line under the pattern."""
    try:
        event = json.loads(line)
    except ValueError:
        return False
    if not isinstance(event, dict):
        return False
    return any(all(_holds(event, term) for term in group) for group in parse(pattern))


@lru_cache(maxsize=1)
def sample_events() -> dict[str, str]:
    """Lines written by the server's SecurityEventLog: {"auth_failure": line, "cors_rejected": line,
    "ip_refused": line, "tool_call:tools:write": line, "tool_call:tools:read": line}."""
    from finops_mcp_admin.security_events.writer import SecurityEventLog  # only when E9107 runs

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        log = SecurityEventLog(to_stdout=False, path=str(path))
        try:
            log.emit(schema.AUTH_FAILURE, reason="wrong_secret", client_ip="203.0.113.7", method="POST",
                     path="/mcp", key_id="AbCdEfGhIjKl", user_agent="probe")
            log.emit(schema.CORS_REJECTED, reason="origin not allowed", client_ip="203.0.113.7",
                     method="POST", path="/mcp", origin="https://evil.example")
            log.emit(schema.IP_REFUSED, reason="client IP outside the key's allowlist",
                     client_ip="203.0.113.7", method="POST", path="/mcp", key_id="AbCdEfGhIjKl")
            for tool, scope in (("update_tagging_policy", "tools:write"), ("whoami", "tools:read")):
                access: dict[str, Any] = {schema.KEY_NAME: "ci", schema.RPC_METHOD: "tools/call",
                                          schema.TOOL: tool, schema.TOOL_SCOPE: scope,
                                          schema.OUTCOME: "ok", schema.DURATION_MS: 1.5}
                log.emit(schema.TOOL_CALL, client_ip="10.0.0.7", method="POST", path="/mcp",
                         key_id="AbCdEfGhIjKl", **access)
        finally:
            log.close()
        lines = path.read_text(encoding="utf-8").splitlines()
    # Keyed by event name; tool calls by "tool_call:<scope>" (a write and a read call).
    return {_sample_key(json.loads(line)): line for line in lines}


def _sample_key(event: dict[str, Any]) -> str:
    name = str(event["event"])
    return f"{name}:{event[schema.TOOL_SCOPE]}" if name == schema.TOOL_CALL else name
