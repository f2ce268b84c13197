"""The key format, checksum, hashing defaults and secret redaction."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops_mcp_admin.errors import InvalidInput, MalformedKey
from finops_mcp_admin.keys import (
    BASE62,
    CRC_LEN,
    ID_LEN,
    SECRET_LEN,
    HashParams,
    KeyHasher,
    Secret,
    generate_token,
    parse_token,
    validate_name,
)


def test_generated_tokens_have_the_documented_shape():
    key_id, token = generate_token()
    plain = token.reveal()
    assert plain.startswith("mcpk_") and plain[5:5 + ID_LEN] == key_id
    assert plain[5 + ID_LEN] == "_"
    assert len(plain) == 5 + ID_LEN + 1 + SECRET_LEN + CRC_LEN
    assert set(plain) <= set(string.ascii_letters + string.digits + "_")
    assert parse_token(plain).key_id == key_id


def test_tokens_are_unique():
    assert len({generate_token()[1].reveal() for _ in range(2000)}) == 2000


@settings(max_examples=300)
@given(position=st.integers(min_value=0), replacement=st.sampled_from(BASE62))
def test_every_single_character_change_is_caught_by_the_checksum(position, replacement):
    plain = generate_token()[1].reveal()
    i = 5 + position % (len(plain) - 5)
    if plain[i] == replacement or plain[i] == "_":
        return
    with pytest.raises(MalformedKey):
        parse_token(plain[:i] + replacement + plain[i + 1:])


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_arbitrary_text_never_parses_as_a_key(text):
    with pytest.raises(MalformedKey):
        parse_token(text)


def test_secret_is_redacted_in_repr_str_and_formatting():
    _, token = generate_token()
    plain = token.reveal()
    for shown in (repr(token), str(token), f"{token}", f"{token!r}", repr([token]),
                  repr({"k": token})):
        assert plain not in shown
    assert Secret(plain) == token


def test_default_hash_parameters_are_the_owasp_minimum():
    hasher = KeyHasher()
    phc = hasher.hash(Secret("x" * 40))
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(phc, Secret("x" * 40)) and not hasher.verify(phc, Secret("y" * 40))


def test_hash_parameters_are_bounded():
    with pytest.raises(InvalidInput):
        HashParams(time_cost=0)
    with pytest.raises(InvalidInput):
        HashParams(memory_cost=4)


@pytest.mark.parametrize("name", ["ci-pipeline", "a", "A.b_c-1", "x" * 64])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "x" * 65, "a b", "a\x00", "naïve", "a/b", "a:b"])
def test_invalid_names(name):
    with pytest.raises(InvalidInput):
        validate_name(name)
