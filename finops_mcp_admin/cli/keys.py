"""`mcpadmin keys ...`: create, list, show, hash, verify, rotate, revoke, update, import."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from .. import lifecycle
from ..config import Settings
from ..config_report import span
from ..durations import iso, parse_duration, parse_future, utcnow
from ..errors import CheckFailed, InvalidInput
from ..key_import import ImportFormat, parse_import
from ..keys import ACTIVE, EXPIRED, REVOKED, ApiKey
from ..quotas import CLEAR, parse_max_sessions
from . import _render as render
from ._options import NamespaceOpt, OutputOpt, QuietOpt, ServerNameOpt, StoreOpt
from ._render import OutputFormat
from ._stdin import read_all_stdin, read_secret, stdin_is_terminal
from ._store import command_settings, command_store, open_command_store

app = typer.Typer(no_args_is_help=True, help="Create, list, rotate and revoke API keys.")

LIST_COLUMNS = [("id", "ID"), ("name", "NAME"), ("owner", "OWNER"), ("scopes", "SCOPES"),
                ("status", "STATUS"), ("created_at", "CREATED"), ("expires_at", "EXPIRES"),
                ("last_used_at", "LAST USED"), ("rate", "RATE"), ("max_sessions", "MAX SESSIONS"),
                ("allow_cidr", "ALLOWED FROM")]

RefArg = Annotated[str, typer.Argument(
    metavar="ID|NAME", help="Key id, or name (the newest key of that name).")]
ScopeOpt = Annotated[list[str] | None, typer.Option(
    "--scope", "-s", help="Scope granted, e.g. tools:read (repeatable).")]
OwnerOpt = Annotated[str | None, typer.Option("--owner", help="Team or person responsible for the key.")]
RateOpt = Annotated[str | None, typer.Option(
    "--rate", metavar="N/min", help="Request rate of this key (N/s, N/min or N/h) [default: the server's].")]
MaxSessionsOpt = Annotated[str | None, typer.Option(
    "--max-sessions", metavar="N", help="Open MCP sessions this key may hold [default: the server's].")]

AllowCidrOpt = Annotated[list[str] | None, typer.Option(
    "--allow-cidr", metavar="CIDR",
    help="Only accept this key from this network (IPv4 or IPv6; repeatable) [default: anywhere].")]


class Status(StrEnum):
    """Values of `keys list --status` (a choice, so the shell completes them)."""

    active = ACTIVE
    revoked = REVOKED
    expired = EXPIRED


def _issued(issued: lifecycle.IssuedKey, fmt: OutputFormat, quiet: bool) -> None:
    """Print a new key: the only time the plaintext is ever shown."""
    key = issued.key
    if quiet:
        render.out(issued.token.reveal())
        return
    render.record({"id": key.id, "name": key.name, "key": issued.token.reveal(),
                   "scopes": list(key.scopes), "created_at": iso(key.created_at),
                   "expires_at": iso(key.expires_at), "owner": key.owner}, fmt)
    render.note("Save this key now: it is not stored and will not be shown again.")


def _warn_unscoped(scopes: list[str] | None, what: str) -> None:
    """A key without scopes is allowed (a scope can be granted by rotation into a new key), but
    never silently: the server refuses it every tool, resource and prompt. Not muted by -q."""
    if not scopes:
        render.note(f"warning: {what} no scope: the server lets it only initialize and ping; "
                    "pass --scope (e.g. --scope tools:read)")


def _public(keys: list[ApiKey]) -> list[dict[str, Any]]:
    now = utcnow()
    return [k.to_public(now) for k in keys]


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="Unique name of the client, e.g. ci-pipeline.")],
    scope: ScopeOpt = None,
    expires: Annotated[str | None, typer.Option(
        help="Lifetime (90d, 24h), ISO date, or never [default: default_expires in the config "
             "file, else never, with a warning].")] = None,
    owner: OwnerOpt = None,
    description: Annotated[str | None, typer.Option(help="Free text shown in listings.")] = None,
    rate: RateOpt = None, max_sessions: MaxSessionsOpt = None, allow_cidr: AllowCidrOpt = None,
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Create a key and print it once (exit 4 if an active key has this NAME).

    Without --scope or --expires the config file's default_scopes / default_expires apply, and
    stderr says so; with neither, the key is created with a warning.

    \b
    Example: KEY=$(mcpadmin keys create ci-pipeline --scope tools:read --expires 90d -q)
    """
    now = utcnow()
    settings = command_settings(store, namespace, server_name)
    scopes, expires_at, notes = _creation_defaults(name, scope, expires, settings, now)
    with open_command_store(settings, create=True) as s:
        issued = lifecycle.create_key(
            s, settings.hasher(), name=name, actor=settings.actor, now=now,
            scopes=scopes, expires_at=expires_at, owner=owner, description=description,
            rate=rate, max_sessions=None if max_sessions is None else parse_max_sessions(max_sessions),
            allow_cidr=allow_cidr or ())
    for line in notes:
        render.note(line)
    _issued(issued, output, quiet)


def _creation_defaults(name: str, scope: list[str] | None, expires: str | None, settings: Settings,
                       now: datetime) -> tuple[tuple[str, ...], datetime | None, list[str]]:
    """The scopes and expiry a new key gets, and the stderr notes that say where they came from
    (not muted by -q: a key nobody meant to be unscoped or eternal must not pass unnoticed)."""
    notes: list[str] = []

    def where(key: str) -> str:
        in_profile = settings.origins.get(key) == "profile"
        return f"profile {settings.profile!r}" if in_profile else "the config file"

    scopes: tuple[str, ...] = tuple(scope or ())
    if not scopes and settings.default_scopes:
        scopes = settings.default_scopes
        notes.append(f"note: key {name!r} gets default_scopes {', '.join(scopes)} "
                     f"from {where('default_scopes')}")
    elif not scopes:
        notes.append(f"warning: key {name!r} has no scope: the server lets it only initialize and ping; "
                     "pass --scope (e.g. --scope tools:read) or set default_scopes in the config file")
    if expires is not None and expires.strip().lower() == "never":
        return scopes, None, notes
    if expires is not None:
        return scopes, parse_future(expires, now), notes
    if settings.default_expires is not None:
        notes.append(f"note: key {name!r} expires in {span(settings.default_expires)} "
                     f"(default_expires from {where('default_expires')})")
        return scopes, now + settings.default_expires, notes
    notes.append(f"warning: key {name!r} never expires: pass --expires (e.g. --expires 90d, or "
                 "--expires never to mean it) or set default_expires in the config file")
    return scopes, None, notes


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include revoked and expired keys.")] = False,
    owner: OwnerOpt = None,
    status: Annotated[Status | None, typer.Option(
        case_sensitive=False, help="Only keys in this status.")] = None,
    expiring_within: Annotated[str | None, typer.Option(
        help="Only keys expiring within this duration, e.g. 7d.")] = None,
    unused_for: Annotated[str | None, typer.Option(
        help="Only keys not used for this duration, e.g. 30d.")] = None,
    older_than: Annotated[str | None, typer.Option(
        help="Only keys created longer ago than this duration, e.g. 90d.")] = None,
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """List keys (active ones unless --all or --status): never a secret or hash.

    \b
    Example: mcpadmin keys list --expiring-within 7d -o json
    """
    key_filter = lifecycle.KeyFilter(
        include_all=all_, owner=owner, status=status.value if status else None,
        expiring_within=parse_duration(expiring_within) if expiring_within else None,
        unused_for=parse_duration(unused_for) if unused_for else None,
        older_than=parse_duration(older_than) if older_than else None)
    with command_store(store, namespace, server_name, create=False) as (s, _):
        keys = lifecycle.list_keys(s, key_filter, utcnow())
    render.rows(_public(keys), LIST_COLUMNS, output, quiet_field="id", quiet=quiet)


@app.command()
def show(ref: RefArg, store: StoreOpt = None, namespace: NamespaceOpt = None,
         server_name: ServerNameOpt = None, output: OutputOpt = OutputFormat.table) -> None:
    """Show one key's record (exit 3 if there is none).

    \b
    Example: mcpadmin keys show ci-pipeline -o json
    """
    with command_store(store, namespace, server_name, create=False) as (s, _):
        key = lifecycle.resolve(s, ref).key
    render.record(key.to_public(utcnow()), output)


@app.command("hash")
def hash_(
    check: Annotated[str | None, typer.Option(
        "--check", metavar="PHC",
        help="Verify the key against this argon2id hash instead (exit 0 match, 1 no match).")] = None,
) -> None:
    """Read a key on stdin and print its argon2id PHC hash (for MCP_API_KEY_HASHES).

    \b
    Example: mcpadmin keys hash < key.txt >> hashes.txt
    """
    token = read_secret()
    hasher = command_settings().hasher()
    if check is None:
        render.out(hasher.hash(token))
    elif hasher.verify(check.strip(), token):
        render.note("match")
    else:
        raise CheckFailed("no match: the key does not match this hash")


@app.command()
def verify(store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
           output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False) -> None:
    """Read a key on stdin and say whether it is valid (exit 0 valid, 1 invalid, 2 malformed).

    \b
    Example: mcpadmin keys verify < key.txt
    """
    token = read_secret()
    with command_store(store, namespace, server_name, create=False) as (s, settings):
        result = lifecycle.verify_key(s, settings.hasher(), token, utcnow())
    if not quiet:
        data: dict[str, Any] = {"valid": result.valid, "reason": result.reason}
        if result.key is not None:
            data.update(result.key.to_public(utcnow()))
        render.record(data, output)
    if not result.valid:
        raise CheckFailed(f"invalid key: {result.reason.replace('_', ' ')}")


@app.command()
def rotate(
    ref: RefArg,
    grace: Annotated[str, typer.Option(
        help="How long the old key stays valid (0 = invalid at once).")] = "24h",
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Issue a new key with the same name, owner and scopes; print it once.

    \b
    Example: mcpadmin keys rotate ci-pipeline --grace 24h
    """
    now = utcnow()
    grace_period = parse_duration(grace)
    with command_store(store, namespace, server_name, create=False) as (s, settings):
        old, issued = lifecycle.rotate_key(s, settings.hasher(), ref,
                                           grace=grace_period, actor=settings.actor, now=now)
    _issued(issued, output, quiet)
    render.note(f"old key {old.id} is valid until {iso(old.expires_at)}", quiet)


@app.command()
def revoke(
    ref: Annotated[str | None, typer.Argument(
        metavar="[ID|NAME]", help="Key id, or name (revokes every valid key of that name).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit trail.")] = None,
    all_: Annotated[bool, typer.Option(
        "--all", help="Bulk: revoke every valid key (of --owner, if given).")] = False,
    owner: Annotated[str | None, typer.Option(help="With --all: only this owner's keys.")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask for confirmation (required without a terminal).")] = False,
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Revoke a key at once, or in bulk with --all [--owner X] after confirmation.

    \b
    Example: mcpadmin keys revoke ci-pipeline --reason "laptop lost"
    """
    if (ref is None) == (not all_):
        raise InvalidInput("give either ID|NAME or --all [--owner X]")
    if owner is not None and not all_:
        raise InvalidInput("--owner selects keys for bulk revocation: add --all")
    now = utcnow()
    with command_store(store, namespace, server_name, create=False) as (s, _):
        if ref is not None:
            revoked = lifecycle.revoke_key(s, ref, reason=reason, now=now)
        else:
            _confirm_bulk(len(lifecycle.select_bulk(s, owner=owner, now=now)), owner, yes)
            revoked = lifecycle.revoke_keys(s, owner=owner, reason=reason, now=now)
    render.note(f"revoked {len(revoked)} key(s)" if revoked else "nothing to revoke: "
                "no valid key matched", quiet)
    render.rows(_public(revoked), LIST_COLUMNS, output, quiet_field="id", quiet=quiet)


@app.command()
def update(
    ref: RefArg, rate: RateOpt = None, max_sessions: MaxSessionsOpt = None,
    allow_cidr: AllowCidrOpt = None,
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """Change a key's quotas or IP allowlist; `none` returns a quota to the server default and
    `--allow-cidr none` admits any address (audited as "update"; running servers see it live).

    \b
    Example: mcpadmin keys update ci-pipeline --rate 600/min --allow-cidr 10.0.0.0/8
    """
    changes: dict[str, Any] = {}
    if rate is not None:
        changes["rate"] = None if rate.strip().lower() in CLEAR else rate
    if max_sessions is not None:
        changes["max_sessions"] = (None if max_sessions.strip().lower() in CLEAR
                                   else parse_max_sessions(max_sessions))
    if allow_cidr is not None:
        changes["allow_cidr"] = [] if [c.strip().lower() for c in allow_cidr] == ["none"] else allow_cidr
    with command_store(store, namespace, server_name, create=False) as (s, settings):
        key = lifecycle.update_key(s, ref, actor=settings.actor, now=utcnow(), **changes)
    render.record(key.to_public(utcnow()), output)


POLICY_COLUMNS = [("id", "ID"), ("name", "NAME"), ("owner", "OWNER"), ("created_at", "CREATED"),
                  ("last_used_at", "LAST USED"), ("reasons", "REASONS")]


@app.command()
def policy(
    max_age: Annotated[str | None, typer.Option(
        help="Oldest a key may be, e.g. 90d; none: no limit [default: config, else 90d].")] = None,
    require_expiry: Annotated[bool | None, typer.Option(
        "--require-expiry/--no-require-expiry", help="Every key must have an expiry.")] = None,
    require_owner: Annotated[bool | None, typer.Option(
        "--require-owner/--no-require-owner", help="Every key must name an owner.")] = None,
    unused_for: Annotated[str | None, typer.Option(
        help="Flag keys not used for this long, e.g. 30d.")] = None,
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """List the active keys that break the rotation policy, with why (exit 1 if any, else 0).

    Defaults come from the [key_policy] table of the config file.

    \b
    Example: mcpadmin keys policy --max-age 90d --require-owner --unused-for 30d -o json
    """
    from ..key_policy import resolve_policy, violations

    now = utcnow()
    settings = command_settings(store, namespace, server_name)
    rules = resolve_policy(settings.key_policy, max_age=max_age, require_expiry=require_expiry,
                           require_owner=require_owner, unused_for=unused_for)  # bad input: before the store
    with open_command_store(settings, create=False) as s:
        found = violations(s.list_keys(), rules, now)
    rows = [v.to_public() for v in found]
    if output is not OutputFormat.json:  # reasons hold spaces: "; " keeps them apart in a cell
        rows = [{**row, "reasons": "; ".join(row["reasons"])} for row in rows]
    if rows or output is not OutputFormat.table:
        render.rows(rows, POLICY_COLUMNS, output, quiet_field="id", quiet=quiet)
    if found:
        raise CheckFailed(f"{len(found)} key(s) break the policy")
    render.note("every active key meets the policy", quiet)


def _confirm_bulk(count: int, owner: str | None, yes: bool) -> None:
    if yes or count == 0:
        return
    if not stdin_is_terminal():
        raise InvalidInput("refusing bulk revocation without --yes when stdin is not a terminal")
    who = f"of owner {owner!r}" if owner else "in the store"
    if not typer.confirm(f"Revoke all {count} valid key(s) {who}?", default=False, err=True):
        raise CheckFailed("cancelled: nothing was revoked")


@app.command("import")
def import_(
    format_: Annotated[ImportFormat, typer.Option(
        "--format", help="auto: name:key lines if any line has ':', else an API_KEYS list.",
    )] = ImportFormat.auto,
    name_prefix: Annotated[str, typer.Option(
        help="Names for API_KEYS entries: PREFIX-1, PREFIX-2, ...")] = "imported",
    scope: ScopeOpt = None, owner: OwnerOpt = None,
    store: StoreOpt = None, namespace: NamespaceOpt = None, server_name: ServerNameOpt = None,
    output: OutputOpt = OutputFormat.table, quiet: QuietOpt = False,
) -> None:
    """Import existing plaintext keys from stdin, storing only their hashes (all or nothing).

    \b
    Example: printenv API_KEYS | mcpadmin keys import --scope tools:read
    """
    entries = parse_import(read_all_stdin(), format_, name_prefix)
    with command_store(store, namespace, server_name, create=True) as (s, settings):
        imported = lifecycle.import_keys(s, settings.hasher(), entries,
                                         actor=settings.actor, now=utcnow(), scopes=scope or (),
                                         owner=owner)
    render.note(f"imported {len(imported)} key(s); only their hashes are stored", quiet)
    _warn_unscoped(scope, "the imported keys have")
    render.rows(_public(imported), LIST_COLUMNS, output, quiet_field="id", quiet=quiet)
