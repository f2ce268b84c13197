"""Where the bridge keeps its sign-in (bridge/oauth_store.py): 0600 in a 0700 directory, bound to
the issuer that produced it, refusing planted symlinks and files others can read, and telling the
redactor every token it reads or writes."""

from __future__ import annotations

import os
import stat

import anyio
import pytest
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from finops_mcp_admin.bridge.oauth_store import FileTokenStorage, state_dir
from finops_mcp_admin.errors import PermissionDenied

RESOURCE = "https://mcp.example.com/mcp"
TOKENS = OAuthToken(access_token="canary-access-token-1234", refresh_token="canary-refresh-5678",
                    expires_in=60)


def storage(tmp_path, seen: list[str] | None = None) -> FileTokenStorage:
    return FileTokenStorage(RESOURCE, (seen if seen is not None else []).append, tmp_path / "oauth")


def save(store: FileTokenStorage, issuer: str = "https://login.example.com") -> None:
    store.bind_issuer(issuer)
    anyio.run(store.set_tokens, TOKENS)
    anyio.run(store.set_client_info, OAuthClientInformationFull(client_id="c1", issuer=issuer))


def test_the_state_lives_under_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_dir() == tmp_path / "mcpadmin" / "oauth"


def test_tokens_are_written_0600_in_a_0700_directory_and_read_back_by_a_new_bridge(tmp_path):
    save(storage(tmp_path))
    again = storage(tmp_path)
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(again.path.parent.stat().st_mode) == 0o700
    tokens = anyio.run(again.get_tokens)
    assert tokens is not None and tokens.access_token == TOKENS.access_token
    assert 50 <= (tokens.expires_in or 0) <= 60  # the time left, not the original lifetime


def test_every_token_read_or_written_goes_to_the_redactor_first(tmp_path):
    seen: list[str] = []
    save(storage(tmp_path, seen))
    anyio.run(storage(tmp_path, seen).get_tokens)
    assert seen.count(TOKENS.access_token) == 2 and seen.count(TOKENS.refresh_token) == 2


def test_another_issuer_discards_the_client_and_tokens(tmp_path):
    save(storage(tmp_path))
    store = storage(tmp_path)
    assert store.bind_issuer("https://evil.example.com") is True
    assert anyio.run(store.get_tokens) is None and anyio.run(store.get_client_info) is None
    assert TOKENS.access_token not in store.path.read_text()


def test_a_symlink_planted_in_place_of_the_file_is_refused(tmp_path):
    store = storage(tmp_path)
    store.path.parent.mkdir(mode=0o700, parents=True)
    (tmp_path / "elsewhere").write_text("{}")
    store.path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PermissionDenied):
        anyio.run(store.get_tokens)


def test_a_file_others_can_read_is_refused(tmp_path):
    save(storage(tmp_path))
    path = storage(tmp_path).path
    os.chmod(path, 0o644)
    with pytest.raises(PermissionDenied, match="0600"):
        anyio.run(storage(tmp_path).get_tokens)


def test_a_corrupt_file_means_signing_in_again(tmp_path):
    store = storage(tmp_path)
    save(store)
    store.path.write_text("{not json")
    assert anyio.run(storage(tmp_path).get_tokens) is None


def test_repr_names_the_resource_only(tmp_path):
    store = storage(tmp_path)
    save(store)
    assert TOKENS.access_token not in repr(store) and RESOURCE in repr(store)
