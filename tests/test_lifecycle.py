"""The key lifecycle rules, in-process against a real SQLite store in a temporary directory.

The CLI contract tests (tests/cli/test_keys.py) cover the same rules through a subprocess; these
pin each rule at the core, one test per rule, with a controlled clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finops_mcp_admin import lifecycle
from finops_mcp_admin.errors import Conflict, InvalidInput, MalformedKey, NotFound
from finops_mcp_admin.key_import import ImportFormat, parse_import
from finops_mcp_admin.keys import HashParams, KeyHasher, Secret, generate_token
from finops_mcp_admin.store import KeyStore, open_store

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ACTOR = "tester@ci"
LEGACY_A = "legacy-secret-value-0001"
LEGACY_B = "legacy-secret-value-0002"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    with open_store(f"sqlite:///{tmp_path / 'keys.db'}", actor=ACTOR) as s:
        yield s


@pytest.fixture(scope="module")
def hasher() -> KeyHasher:
    return KeyHasher(HashParams(time_cost=1, memory_cost=1024))


def create(store: KeyStore, hasher: KeyHasher, name: str, **kwargs) -> lifecycle.IssuedKey:
    return lifecycle.create_key(store, hasher, name=name, actor=ACTOR, now=kwargs.pop("now", NOW), **kwargs)


def verify(store: KeyStore, hasher: KeyHasher, token: Secret | str, now: datetime = NOW):
    secret = token if isinstance(token, Secret) else Secret(token)
    return lifecycle.verify_key(store, hasher, secret, now)


def names(keys) -> list[str]:
    return [k.name for k in keys]


# --- create ---------------------------------------------------------------------------------


def test_created_key_verifies_and_its_record_holds_no_secret(store, hasher):
    issued = create(store, hasher, "ci", scopes=["tools:read"], owner="team-a")
    result = verify(store, hasher, issued.token)
    assert result.valid and result.reason == "valid" and result.key.id == issued.key.id
    assert issued.token.reveal() not in repr(issued.key.to_public(NOW))
    assert issued.key.scopes == ("tools:read",) and issued.key.owner == "team-a"


def test_create_refuses_a_second_active_key_with_the_same_name(store, hasher):
    create(store, hasher, "ci")
    with pytest.raises(Conflict, match="already exists"):
        create(store, hasher, "ci")
    assert names(lifecycle.list_keys(store, lifecycle.KeyFilter(include_all=True), NOW)) == ["ci"]


def test_create_reuses_a_name_once_its_key_is_revoked(store, hasher):
    old = create(store, hasher, "ci")
    lifecycle.revoke_key(store, old.key.id, reason=None, now=NOW)
    new = create(store, hasher, "ci")
    assert lifecycle.resolve(store, "ci").key.id == new.key.id


def test_create_refuses_an_invalid_name_or_scope_before_touching_the_store(store, hasher):
    with pytest.raises(InvalidInput):
        create(store, hasher, "bad name")
    with pytest.raises(InvalidInput):
        create(store, hasher, "ok", scopes=["bad scope"])
    assert lifecycle.list_keys(store, lifecycle.KeyFilter(include_all=True), NOW) == []


# --- rotate ---------------------------------------------------------------------------------


def test_rotated_old_key_stays_valid_during_grace_then_expires(store, hasher):
    old = create(store, hasher, "ci")
    _, new = lifecycle.rotate_key(store, hasher, "ci", grace=HOUR, actor=ACTOR, now=NOW)
    assert verify(store, hasher, old.token, NOW + HOUR / 2).valid
    late = verify(store, hasher, old.token, NOW + 2 * HOUR)
    assert not late.valid and late.reason == "expired"
    assert verify(store, hasher, new.token, NOW + 2 * HOUR).valid


def test_rotation_with_zero_grace_invalidates_the_old_key_at_once(store, hasher):
    old = create(store, hasher, "ci")
    lifecycle.rotate_key(store, hasher, "ci", grace=timedelta(0), actor=ACTOR, now=NOW)
    assert verify(store, hasher, old.token, NOW).reason == "expired"


def test_rotation_keeps_name_owner_scopes_and_lifetime_length(store, hasher):
    create(store, hasher, "ci", scopes=["tools:write"], owner="team-a", expires_at=NOW + 90 * 24 * HOUR)
    later = NOW + 10 * 24 * HOUR
    old, new = lifecycle.rotate_key(store, hasher, "ci", grace=HOUR, actor=ACTOR, now=later)
    assert (new.key.name, new.key.owner, new.key.scopes) == ("ci", "team-a", ("tools:write",))
    assert new.key.expires_at == later + 90 * 24 * HOUR
    assert old.rotated_to == new.key.id and new.key.rotated_from == old.id


def test_rotating_an_already_rotated_key_by_id_is_a_conflict(store, hasher):
    first = create(store, hasher, "ci")
    lifecycle.rotate_key(store, hasher, "ci", grace=HOUR, actor=ACTOR, now=NOW)
    with pytest.raises(Conflict, match="already rotated"):
        lifecycle.rotate_key(store, hasher, first.key.id, grace=HOUR, actor=ACTOR, now=NOW)


def test_rotating_a_revoked_key_is_a_conflict(store, hasher):
    create(store, hasher, "ci")
    lifecycle.revoke_key(store, "ci", reason=None, now=NOW)
    with pytest.raises(Conflict, match="revoked"):
        lifecycle.rotate_key(store, hasher, "ci", grace=HOUR, actor=ACTOR, now=NOW)


# --- revoke ---------------------------------------------------------------------------------


def test_revoked_key_fails_verification_with_reason_revoked(store, hasher):
    issued = create(store, hasher, "ci")
    revoked = lifecycle.revoke_key(store, issued.key.id, reason="laptop lost", now=NOW)
    assert [k.revoked_reason for k in revoked] == ["laptop lost"]
    result = verify(store, hasher, issued.token)
    assert not result.valid and result.reason == "revoked"


def test_revoking_by_name_also_revokes_the_predecessor_in_its_grace(store, hasher):
    old = create(store, hasher, "ci")
    lifecycle.rotate_key(store, hasher, "ci", grace=HOUR, actor=ACTOR, now=NOW)
    revoked = lifecycle.revoke_key(store, "ci", reason=None, now=NOW)
    assert len(revoked) == 2
    assert verify(store, hasher, old.token).reason == "revoked"


def test_revoking_an_already_revoked_key_changes_nothing(store, hasher):
    issued = create(store, hasher, "ci")
    lifecycle.revoke_key(store, issued.key.id, reason=None, now=NOW)
    assert lifecycle.revoke_key(store, issued.key.id, reason=None, now=NOW) == []


def test_revoking_an_unknown_reference_is_not_found(store):
    with pytest.raises(NotFound):
        lifecycle.revoke_key(store, "nobody", reason=None, now=NOW)


def test_revoke_all_by_owner_revokes_only_that_owners_valid_keys(store, hasher):
    a1 = create(store, hasher, "a1", owner="team-a")
    create(store, hasher, "a2", owner="team-a")
    b1 = create(store, hasher, "b1", owner="team-b")
    assert names(lifecycle.select_bulk(store, owner="team-a", now=NOW)) == ["a1", "a2"]
    revoked = lifecycle.revoke_keys(store, owner="team-a", reason="offboarding", now=NOW)
    assert sorted(names(revoked)) == ["a1", "a2"]
    assert verify(store, hasher, a1.token).reason == "revoked"
    assert verify(store, hasher, b1.token).valid


def test_revoke_all_without_owner_revokes_every_valid_key(store, hasher):
    create(store, hasher, "a1", owner="team-a")
    create(store, hasher, "b1", owner="team-b")
    assert len(lifecycle.revoke_keys(store, owner=None, reason=None, now=NOW)) == 2
    assert lifecycle.list_keys(store, lifecycle.KeyFilter(), NOW) == []


# --- import ---------------------------------------------------------------------------------


def test_imported_name_key_lines_verify_and_store_only_hashes(store, hasher):
    entries = parse_import(f"alpha:{LEGACY_A}\nbravo:{LEGACY_B}\n", ImportFormat.auto, "imported")
    imported = lifecycle.import_keys(store, hasher, entries, actor=ACTOR, now=NOW)
    assert names(imported) == ["alpha", "bravo"] and all(k.legacy for k in imported)
    assert verify(store, hasher, LEGACY_B).key.name == "bravo"
    assert not verify(store, hasher, "legacy-secret-value-0003").valid


def test_imported_mcpk_key_keeps_its_id(store, hasher):
    key_id, token = generate_token()
    entries = parse_import(f"API_KEYS={token.reveal()}", ImportFormat.auto, "old")
    imported = lifecycle.import_keys(store, hasher, entries, actor=ACTOR, now=NOW)
    assert [(k.id, k.name, k.legacy) for k in imported] == [(key_id, "old-1", False)]
    assert verify(store, hasher, token).valid


def test_api_keys_list_is_named_with_the_prefix():
    entries = parse_import(f"API_KEYS='{LEGACY_A},{LEGACY_B}'", ImportFormat.auto, "svc")
    assert [(name, key.reveal()) for name, key in entries] == [("svc-1", LEGACY_A), ("svc-2", LEGACY_B)]


def test_import_refuses_input_that_reads_both_as_name_key_and_as_a_key_list():
    with pytest.raises(InvalidInput, match="ambiguous"):
        parse_import(f"alpha:{LEGACY_A},{LEGACY_B}", ImportFormat.auto, "imported")


def test_import_refuses_a_mix_of_name_key_lines_and_bare_keys():
    with pytest.raises(InvalidInput, match="ambiguous"):
        parse_import(f"alpha:{LEGACY_A}\n{LEGACY_B}\n", ImportFormat.auto, "imported")


def test_an_explicit_format_resolves_the_ambiguity():
    text = f"alpha:{LEGACY_A},{LEGACY_B}"
    assert [n for n, _ in parse_import(text, ImportFormat.api_keys, "p")] == ["p-1", "p-2"]
    assert [n for n, _ in parse_import(text, ImportFormat.lines, "p")] == ["alpha"]


def test_import_errors_cite_the_line_never_the_key():
    with pytest.raises(InvalidInput) as caught:
        parse_import(f"alpha:{LEGACY_A}\n-bad:{LEGACY_B}\n", ImportFormat.lines, "imported")
    assert "line 2" in str(caught.value) and LEGACY_B not in str(caught.value)


def test_import_is_all_or_nothing_when_one_name_is_taken(store, hasher):
    create(store, hasher, "bravo")
    entries = parse_import(f"alpha:{LEGACY_A}\nbravo:{LEGACY_B}\n", ImportFormat.lines, "imported")
    with pytest.raises(Conflict):
        lifecycle.import_keys(store, hasher, entries, actor=ACTOR, now=NOW)
    assert names(lifecycle.list_keys(store, lifecycle.KeyFilter(include_all=True), NOW)) == ["bravo"]


def test_import_refuses_a_key_too_short_to_keep(store, hasher):
    with pytest.raises(InvalidInput, match="shorter"):
        lifecycle.import_keys(store, hasher, [("short", Secret("abc123"))], actor=ACTOR, now=NOW)


# --- verify ---------------------------------------------------------------------------------


def test_verify_rejects_a_malformed_mcpk_token_before_any_lookup(store, hasher):
    issued = create(store, hasher, "ci")
    token = issued.token.reveal()
    corrupted = token[:-1] + ("A" if token[-1] != "A" else "B")  # the checksum no longer holds
    with pytest.raises(MalformedKey):
        verify(store, hasher, corrupted)


def test_verify_answers_unknown_for_a_well_formed_key_never_issued(store, hasher):
    _, token = generate_token()
    result = verify(store, hasher, token)
    assert not result.valid and result.reason == "unknown_key" and result.key is None


def test_verify_answers_wrong_secret_for_a_known_id_with_another_secret(store, hasher):
    issued = create(store, hasher, "ci")
    _, forged = generate_token(issued.key.id)
    result = verify(store, hasher, forged)
    assert not result.valid and result.reason == "wrong_secret"


def test_verify_answers_expired_after_the_expiry_time(store, hasher):
    issued = create(store, hasher, "ci", expires_at=NOW + HOUR)
    assert verify(store, hasher, issued.token, NOW + HOUR / 2).valid
    result = verify(store, hasher, issued.token, NOW + HOUR)
    assert not result.valid and result.reason == "expired" and result.key.id == issued.key.id


def test_verify_upgrades_a_hash_made_with_weaker_parameters(store, hasher):
    issued = create(store, hasher, "ci")
    stronger = KeyHasher(HashParams(time_cost=2, memory_cost=1024))
    assert stronger.needs_rehash(store.get(issued.key.id).key_hash)
    assert verify(store, stronger, issued.token).valid
    assert not stronger.needs_rehash(store.get(issued.key.id).key_hash)


# --- list -----------------------------------------------------------------------------------


def test_list_shows_active_keys_unless_all_or_a_status_is_asked(store, hasher):
    create(store, hasher, "active")
    create(store, hasher, "gone")
    create(store, hasher, "old", expires_at=NOW + HOUR)
    lifecycle.revoke_key(store, "gone", reason=None, now=NOW)
    later = NOW + 2 * HOUR
    assert names(lifecycle.list_keys(store, lifecycle.KeyFilter(), later)) == ["active"]
    assert names(lifecycle.list_keys(store, lifecycle.KeyFilter(include_all=True), later)) == \
        ["active", "gone", "old"]
    assert names(lifecycle.list_keys(store, lifecycle.KeyFilter(status="revoked"), later)) == ["gone"]
    assert names(lifecycle.list_keys(store, lifecycle.KeyFilter(status="expired"), later)) == ["old"]


def test_list_filters_by_owner_expiry_window_and_disuse(store, hasher):
    create(store, hasher, "a", owner="team-a", expires_at=NOW + 3 * 24 * HOUR)
    create(store, hasher, "b", owner="team-b", expires_at=NOW + 30 * 24 * HOUR)
    create(store, hasher, "fresh", now=NOW + 20 * 24 * HOUR)
    at = NOW + 24 * 24 * HOUR - HOUR
    by_owner = lifecycle.KeyFilter(owner="team-a", include_all=True)
    assert names(lifecycle.list_keys(store, by_owner, NOW)) == ["a"]
    expiring = lifecycle.KeyFilter(expiring_within=7 * 24 * HOUR)
    assert names(lifecycle.list_keys(store, expiring, NOW)) == ["a"]
    unused = lifecycle.KeyFilter(unused_for=10 * 24 * HOUR)
    assert names(lifecycle.list_keys(store, unused, at)) == ["b"]


def test_list_filter_refuses_an_unknown_status():
    with pytest.raises(InvalidInput, match="invalid status"):
        lifecycle.KeyFilter(status="paused")
