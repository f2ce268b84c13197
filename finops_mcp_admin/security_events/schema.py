"""The security-event schema, in one place: field names, event names and the timestamp format.

The writer (security_events/writer.py), the readers (local files, CloudWatch Logs) and the CLI columns all
take their names from here. A record is one JSON object per line, in FIELDS order, extra fields
after them; `ts` is UTC with milliseconds and a Z (`2026-11-22T02:37:03.784Z`), a fixed width, so
canonical timestamps compare correctly as strings (the readers' fast path).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from enum import StrEnum


class Source(StrEnum):
    """Where the events live: the server's JSON-lines file, or CloudWatch Logs (its stdout)."""

    local = "local"
    cloudwatch = "cloudwatch"


# --- field names ------------------------------------------------------------------------------

TS = "ts"
EVENT = "event"
REASON = "reason"
CLIENT_IP = "client_ip"
METHOD = "method"
PATH = "path"
KEY_ID = "key_id"
ORIGIN = "origin"
USER_AGENT = "user_agent"
CORRELATION_ID = "correlation_id"
# Access events (tool_call, method_call) add these after FIELDS (server/access.py).
KEY_NAME, RPC_METHOD, TOOL, TOOL_SCOPE, OUTCOME, DURATION_MS = (
    "key_name", "rpc_method", "tool", "scope", "outcome", "duration_ms")

#: Every record has these, in this order (None when not known); TS and EVENT come first.
FIELDS = (TS, EVENT, REASON, CLIENT_IP, METHOD, PATH, KEY_ID, ORIGIN, USER_AGENT, CORRELATION_ID)
#: What a listing of events shows, and the column title of each.
LISTED = (TS, EVENT, REASON, CLIENT_IP, KEY_ID, PATH, ORIGIN)
TITLES = {TS: "TIME", EVENT: "EVENT", REASON: "REASON", CLIENT_IP: "CLIENT IP", METHOD: "METHOD",
          PATH: "PATH", KEY_ID: "KEY ID", ORIGIN: "ORIGIN", USER_AGENT: "USER AGENT",
          CORRELATION_ID: "CORRELATION ID"}
#: `--by` choices and the field each groups on.
GROUP_FIELDS = {"ip": CLIENT_IP, "reason": REASON, "key": KEY_ID, "path": PATH, "tool": TOOL}

# --- event names ------------------------------------------------------------------------------

AUTH_FAILURE = "auth_failure"  # no, malformed, unknown, wrong, revoked or expired credentials
RATE_LIMITED = "rate_limited"  # refused on arrival; reasons in server/throttle.py (failures, busy)
INSUFFICIENT_SCOPE = "insufficient_scope"  # a valid key without the scope its method or tool needs
CORS_REJECTED = "cors_rejected"  # an Origin not allowlisted, or a preflight asking too much
PLAINTEXT_REFUSED = "plaintext_refused"  # plain HTTP on the MCP endpoint
STORE_UNAVAILABLE = "store_unavailable"  # the key store could not be reached (fail closed: 503)
BAD_REQUEST = "bad_request"  # a body that is not UTF-8 JSON-RPC, too deep, or duplicate keys
QUOTA_EXCEEDED = "quota_exceeded"  # a key over its request rate or its open-session cap
SESSION_OPENED = "session_opened"
SESSION_CLOSED = "session_closed"  # DELETE, idle timeout, or ended in the app
SESSION_TERMINATED = "session_terminated"  # the key was revoked, expired or its grace ended
CONFIG_RELOADED = "config_reloaded"
AUTH_SERVER_UNAVAILABLE = "auth_server_unavailable"  # OAuth: JWKS/introspection unreachable (503)
CONFIG_RELOAD_FAILED = "config_reload_failed"
STDIO_CHILD_FAILED = "stdio_child_failed"  # serve --stdio: a child exited, or wrote non-JSON-RPC or too much
IP_REFUSED = "ip_refused"  # a valid key used from outside its IP allowlist
TOOL_CALL = "tool_call"  # access trail: a tools/call that passed the envelope
METHOD_CALL = "method_call"  # access trail: any other MCP request (its name in rpc_method)
ACCESS_EVENTS = frozenset({TOOL_CALL, METHOD_CALL})

#: Every event name the server writes (tests/test_security_events.py checks the writers use them).
EVENTS = frozenset({AUTH_FAILURE, RATE_LIMITED, INSUFFICIENT_SCOPE, CORS_REJECTED, PLAINTEXT_REFUSED,
                    STORE_UNAVAILABLE, BAD_REQUEST, QUOTA_EXCEEDED, SESSION_OPENED, SESSION_CLOSED,
                    SESSION_TERMINATED, CONFIG_RELOADED, CONFIG_RELOAD_FAILED, STDIO_CHILD_FAILED,
                    AUTH_SERVER_UNAVAILABLE, IP_REFUSED, *ACCESS_EVENTS})

# --- timestamps -------------------------------------------------------------------------------


def format_ts(when: datetime) -> str:
    """An aware datetime as a canonical `ts`: UTC, milliseconds, Z suffix."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


_second: tuple[int, str] = (-1, "")  # the last whole second format_ts_ns formatted


def format_ts_ns(ns: int) -> str:
    """format_ts of a `time.time_ns()` value, the same string for a tenth of the cost (the date
    and time of day are formatted once a second; the access trail stamps every request)."""
    global _second
    sec, rest = divmod(ns, 1_000_000_000)
    cached, prefix = _second
    if cached != sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _second = (sec, prefix)
    return f"{prefix}.{rest // 1_000_000:03d}Z"


#: The canonical `ts` shape, and its fixed width (taken from format_ts, so they cannot disagree).
TS_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TS_WIDTH = len(format_ts(datetime(2000, 1, 1, tzinfo=UTC)))


def is_canonical(ts: str) -> bool:
    """True when `ts` has exactly the canonical shape (so it compares correctly as a string)."""
    return len(ts) == TS_WIDTH and TS_PATTERN.fullmatch(ts) is not None


def parse_ts(ts: str) -> datetime | None:
    """Any ISO 8601 time as an aware datetime (UTC when no offset is given), or None."""
    try:
        value = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
