"""Fuzz the envelope (hypothesis, 10,500 generated requests in all): generated Authorization
headers, Origin headers and request bodies never cause a 5xx, and nothing is admitted without a
valid key; a valid key with a generated body is admitted or refused with a 4xx, never a 5xx."""

from __future__ import annotations

import json

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_mcp_admin import lifecycle
from finops_mcp_admin.durations import utcnow
from finops_mcp_admin.keys import generate_token
from finops_mcp_admin.store.sqlite import SqliteStore
from tests.server.asgi import CountingHasher, call, make_envelope

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow], database=None)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=120)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    store = SqliteStore(f"sqlite:///{d / 'keys.db'}")
    good = lifecycle.create_key(store, CountingHasher(), name="fuzz-good", actor="t", now=utcnow(),
                                scopes=["tools:read"]).token.reveal()
    revoked = lifecycle.create_key(store, CountingHasher(), name="fuzz-revoked", actor="t",
                                   now=utcnow(), scopes=["tools:read"]).token.reveal()
    lifecycle.revoke_key(store, "fuzz-revoked", reason=None, now=utcnow())
    app, inner, _ = make_envelope(store, d)
    yield {"app": app, "inner": inner, "good": good, "revoked": revoked, "store": store}
    store.close()


def mutated_keys(good: str):
    return st.one_of(
        header_text,
        st.builds(lambda k: k, st.just(good)).flatmap(
            lambda k: st.tuples(st.integers(0, len(k) - 1), st.sampled_from("AZaz09_-")).map(
                lambda t: k[:t[0]] + t[1] + k[t[0] + 1:])),
        st.builds(lambda: generate_token()[1].reveal()),
        st.just(good[:-1]), st.just(good + "A"), st.just(good.upper()),
    )


@settings(max_examples=4000, **SETTINGS)
@given(data=st.data())
def test_generated_authorization_headers(world, data):
    key = data.draw(mutated_keys(world["good"]))
    scheme = data.draw(st.sampled_from(["Bearer ", "bearer ", "BEARER ", "Basic ", "", "Bearer  "]))
    header = (scheme + key).strip()
    before = len(world["inner"].admitted)
    status, _, _ = anyio.run(call, world["app"], "POST", "/mcp", {"Authorization": header} if header else {})
    assert status < 500
    admitted = len(world["inner"].admitted) > before
    legit = scheme.strip().lower() == "bearer" and key.strip() == world["good"]
    assert admitted == legit and (status == 200) == legit, (header, status)


@settings(max_examples=3000, **SETTINGS)
@given(origin=st.one_of(header_text, st.sampled_from(["https://ok.example.com", "null"])),
       with_key=st.booleans())
def test_generated_origins(world, origin, with_key):
    headers = {"Origin": origin}
    if with_key:
        headers["Authorization"] = f"Bearer {world['good']}"
    before = len(world["inner"].admitted)
    status, _, _ = anyio.run(call, world["app"], "POST", "/mcp", headers)
    assert status < 500
    admitted = len(world["inner"].admitted) > before
    assert admitted == (with_key and origin == "https://ok.example.com")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: (st.lists(inner, max_size=4)
                                          | st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda name, params: json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                               "params": {"name": name, "arguments": params}}).encode(),
              st.one_of(st.text(max_size=20), st.just("write_tool"), st.just("read_tool")), json_values),
)


@settings(max_examples=3500, **SETTINGS)
@given(body=bodies, key_kind=st.sampled_from(["good", "revoked", "none"]))
def test_generated_bodies(world, body, key_kind):
    headers = {} if key_kind == "none" else {"Authorization": f"Bearer {world[key_kind]}"}
    before = len(world["inner"].admitted)
    status, _, _ = anyio.run(call, world["app"], "POST", "/mcp", headers, body)
    assert status < 500
    admitted = len(world["inner"].admitted) > before
    if key_kind != "good":
        assert not admitted and status == 401
    elif admitted:
        assert b"write_tool" not in body or b'"name": "write_tool"' not in body
