"""Which security events `audit failures | cors | watch` read when --source is not given.

The log file and the log group each come from a flag, the environment (MCPADMIN_LOG_FILE,
MCPADMIN_LOG_GROUP), the chosen profile or the config file (`log_file`, `log_group`). The one
configured wins; when both are, the one from the stronger place (flag > env > profile > file),
and on a tie the local file. Nothing configured is NotConfigured (exit 5), with the hint.
"""

from __future__ import annotations

from .config import Settings
from .config_layers import DEFAULT, RANK
from .errors import NotConfigured
from .security_events.schema import Source

HINT = ("pass --log-file PATH or --log-group NAME, or set MCPADMIN_LOG_FILE / MCPADMIN_LOG_GROUP, "
        "or log_file / log_group in the config file (`mcpadmin config path`)")


def choose_source(settings: Settings, source: Source | None) -> Source:
    """The source to read: the one asked for (which must be configured), else the configured one."""
    has_file, has_group = bool(settings.log_files), bool(settings.log_group)
    if source is Source.local and not has_file:
        raise NotConfigured(f"--source local needs a security-event log: {HINT}")
    if source is Source.cloudwatch and not has_group:
        raise NotConfigured(f"--source cloudwatch needs a log group: {HINT}")
    if source is not None:
        return source
    if not has_file and not has_group:
        raise NotConfigured(f"no security-event source configured: {HINT}")
    if not has_group:
        return Source.local
    if not has_file:
        return Source.cloudwatch
    file_rank = RANK[settings.origins.get("log_file", DEFAULT)]
    group_rank = RANK[settings.origins.get("log_group", DEFAULT)]
    return Source.local if file_rank <= group_rank else Source.cloudwatch
