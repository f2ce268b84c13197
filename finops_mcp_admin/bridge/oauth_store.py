"""Where the bridge keeps what a sign-in produced: one 0600 file per MCP server (resource) under
$XDG_STATE_HOME/mcpadmin/oauth/ (~/.local/state), bound to the issuer that produced it.

A record holds the registered client, the tokens and their absolute expiry (so a restarted bridge
refreshes an expired token instead of asking the user to sign in again). When the server's
metadata names another issuer, the record is discarded before anything is sent there: a token or
client id is only ever used with the (issuer, resource) pair it came from. Every token read or
written is handed to `on_secret` first, so the bridge's redactor knows it before it could be
printed. Implements the MCP SDK's `TokenStorage` protocol.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken, ProtectedResourceMetadata

from ..errors import PermissionDenied


def state_dir() -> Path:
    """$XDG_STATE_HOME/mcpadmin/oauth, by default ~/.local/state/mcpadmin/oauth."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mcpadmin" / "oauth"


class FileTokenStorage:
    """The SDK's TokenStorage on one private JSON file per resource."""

    def __init__(self, resource: str, on_secret: Callable[[str], None],
                 directory: Path | None = None) -> None:
        self.directory = directory or state_dir()
        self.path = self.directory / (hashlib.sha256(resource.encode()).hexdigest()[:32] + ".json")
        self.resource = resource
        self._on_secret = on_secret
        self._record: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"FileTokenStorage({self.resource!r})"

    # -- the SDK's TokenStorage ------------------------------------------------------------

    async def get_tokens(self) -> OAuthToken | None:
        raw = self._load().get("tokens")
        if not raw:
            return None
        tokens = OAuthToken.model_validate(raw)
        self._reveal(tokens)
        expires_at = self._load().get("expires_at")
        if expires_at is not None:  # what is left of its life; <= 0 makes the SDK refresh it
            tokens.expires_in = int(expires_at - time.time())
        return tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._reveal(tokens)
        record = self._load()
        record["tokens"] = tokens.model_dump(mode="json", exclude_none=True)
        record["expires_at"] = time.time() + tokens.expires_in if tokens.expires_in is not None else None
        self._save(record)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        raw = self._load().get("client")
        if not raw:
            return None
        client = OAuthClientInformationFull.model_validate(raw)
        if client.client_secret:
            self._on_secret(client.client_secret)
        return client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        if client_info.client_secret:
            self._on_secret(client_info.client_secret)
        record = self._load()
        record["client"] = client_info.model_dump(mode="json", exclude_none=True)
        self._save(record)

    # -- what discovery found, so a restarted bridge refreshes at the right token endpoint ------

    def get_metadata(self) -> tuple[ProtectedResourceMetadata, OAuthMetadata] | None:
        """The resource and authorization server metadata of the bound issuer, if recorded."""
        found = self._load().get("metadata")
        if not found or found.get("issuer") != self.issuer:
            return None
        return (ProtectedResourceMetadata.model_validate(found["prm"]),
                OAuthMetadata.model_validate(found["as"]))

    def set_metadata(self, prm: ProtectedResourceMetadata, metadata: OAuthMetadata) -> None:
        record = self._load()
        record["metadata"] = {"issuer": record.get("issuer"), "prm": prm.model_dump(mode="json"),
                              "as": metadata.model_dump(mode="json")}
        self._save(record)

    # -- issuer binding --------------------------------------------------------------------

    @property
    def issuer(self) -> str | None:
        """The issuer the stored client and tokens came from."""
        return self._load().get("issuer")

    def bind_issuer(self, issuer: str) -> bool:
        """Make `issuer` the record's; a record from another issuer is discarded. True if one was."""
        record = self._load()
        if record.get("issuer") == issuer:
            return False
        discarded = bool(record.get("tokens") or record.get("client"))
        self._save({"resource": self.resource, "issuer": issuer})
        return discarded

    def forget_tokens(self) -> None:
        """Drop the tokens (not the client): the next request signs in again."""
        record = self._load()
        record.pop("tokens", None)
        record.pop("expires_at", None)
        self._save(record)

    # -- the file ----------------------------------------------------------------------------

    def _reveal(self, tokens: OAuthToken) -> None:
        self._on_secret(tokens.access_token)
        if tokens.refresh_token:
            self._on_secret(tokens.refresh_token)

    def _load(self) -> dict[str, Any]:
        if self._record is None:
            self._record = self._read()
        return self._record

    def _read(self) -> dict[str, Any]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return {"resource": self.resource}
        except OSError as exc:  # ELOOP: a symlink planted where our file goes
            raise PermissionDenied(f"cannot open the sign-in state {self.path}: {exc.strerror}") from None
        with os.fdopen(fd) as f:
            info = os.fstat(f.fileno())
            if info.st_uid != os.getuid() or info.st_mode & 0o077:
                raise PermissionDenied(f"refusing the sign-in state {self.path}: it must be owned by you "
                                       "and mode 0600")
            try:
                record = json.load(f)
            except ValueError:
                return {"resource": self.resource}  # unreadable: sign in again, overwrite it
        if not isinstance(record, dict) or record.get("resource") != self.resource:
            return {"resource": self.resource}
        return record

    def _save(self, record: dict[str, Any]) -> None:
        self._record = record
        self._private_directory()
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _private_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(self.directory)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise PermissionDenied(f"refusing the sign-in state directory {self.directory}: it must be "
                                   "a directory owned by you")
        if info.st_mode & 0o077:
            os.chmod(self.directory, 0o700)
