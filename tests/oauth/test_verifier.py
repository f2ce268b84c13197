"""OAuth access-token verification against a real HTTPS issuer (JWKS, introspection)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from finops_mcp_admin.oauth_metadata import MetadataClient
from finops_mcp_admin.server.auth import UNAVAILABLE
from finops_mcp_admin.server.oauth.verifier import OAuthSettings, OAuthVerifier
from tests.oauth.issuer import Issuer
from tests.server.harness import Certs

AUD = "https://mcp.example.com/mcp"
SCOPES = frozenset({"tools:read", "tools:write"})


def make_verifier(issuer: Issuer, certs: Certs, **overrides) -> OAuthVerifier:
    settings = dict(issuer=issuer.url, audience=AUD, server_scopes=SCOPES,
                    scope_map={"mcp:tools": "tools:read"}, min_refetch=0.5)
    settings.update(overrides)
    return OAuthVerifier(OAuthSettings(**settings), MetadataClient(certs.client_context()))


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_token_gives_subject_client_and_mapped_scopes(issuer, certs):
    v = make_verifier(issuer, certs)
    result = v.verify(issuer.mint(AUD, scope="mcp:tools tools:write other:thing"))
    p = result.principal
    assert p is not None, result.reason
    assert (p.key_id, p.subject, p.client_id) == ("oauth:desktop-app/alice", "alice", "desktop-app")
    assert p.scopes == ("tools:read", "tools:write")  # other:thing grants nothing


# Times are relative to the moment the test runs, not to collection: a suite that takes longer
# than the offset must not turn a future `nbf` into a past one.
@pytest.mark.parametrize(("overrides", "reason"), [
    (lambda now: {"aud": "https://other.example.com/mcp"}, "wrong_audience"),
    (lambda now: {"exp": now - 120}, "token_expired"),
    (lambda now: {"nbf": now + 600}, "token_not_yet_valid"),
    (lambda now: {"iss": "https://evil.example.com"}, "wrong_issuer"),
    (lambda now: {"exp": None}, "invalid_claims"),
    (lambda now: {"sub": None, "client_id": None}, "invalid_claims"),
], ids=["audience", "expired", "not-yet-valid", "issuer", "no-exp", "no-subject"])
def test_bad_claims_are_refused(issuer, certs, overrides, reason):
    v = make_verifier(issuer, certs)
    result = v.verify(issuer.mint(AUD, **overrides(int(time.time()))))
    assert (result.principal, result.reason) == (None, reason)


def test_unsigned_token_is_refused(issuer, certs):
    v = make_verifier(issuer, certs)
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(issuer.claims(AUD)) + "."
    assert v.verify(token).reason == "algorithm_not_allowed"


def test_hs256_signed_with_the_public_key_is_refused(issuer, certs):
    v = make_verifier(issuer, certs)
    kid, key = issuer.keys[-1]
    public_pem = key.public_key().public_bytes(
        encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
        format=__import__("cryptography.hazmat.primitives.serialization",
                          fromlist=["x"]).PublicFormat.SubjectPublicKeyInfo)
    header = _b64({"alg": "HS256", "kid": kid, "typ": "JWT"})
    body = _b64(issuer.claims(AUD))
    import hashlib
    import hmac

    sig = base64.urlsafe_b64encode(hmac.new(public_pem, f"{header}.{body}".encode(),
                                            hashlib.sha256).digest()).rstrip(b"=").decode()
    result = v.verify(f"{header}.{body}.{sig}")
    assert (result.principal, result.reason) == (None, "algorithm_not_allowed")


def test_tampered_payload_is_refused(issuer, certs):
    v = make_verifier(issuer, certs)
    header, _, sig = issuer.mint(AUD).split(".")
    forged = _b64(issuer.claims(AUD, scope="tools:read tools:write", sub="admin"))
    assert v.verify(f"{header}.{forged}.{sig}").reason == "bad_signature"


def test_rotated_kid_is_admitted_on_its_first_request(issuer, certs):
    v = make_verifier(issuer, certs)
    assert v.verify(issuer.mint(AUD)).principal is not None
    time.sleep(0.6)  # past min_refetch since the first fetch
    issuer.rotate()
    issuer.retire_old_keys()
    result = v.verify(issuer.mint(AUD))
    assert result.principal is not None, result.reason
    assert issuer.jwks_fetches == 2


def test_unknown_kid_refetch_is_rate_limited(issuer, certs):
    v = make_verifier(issuer, certs, min_refetch=60)
    assert v.verify(issuer.mint(AUD)).principal is not None
    fetches = issuer.jwks_fetches
    for i in range(20):
        token = jwt.encode(issuer.claims(AUD), issuer.keys[-1][1], algorithm="RS256",
                           headers={"kid": f"made-up-{i}"})
        assert v.verify(token).reason == "unknown_kid"
    assert issuer.jwks_fetches == fetches  # none within min_refetch of the last fetch


def test_jwks_with_only_symmetric_or_private_or_small_keys_verifies_nothing(issuer, certs):
    from cryptography.hazmat.primitives.asymmetric import rsa

    kid, key = issuer.keys[-1]
    public = issuer.jwks()["keys"][0]
    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(small.public_key())), "kid": "small"}
    issuer.jwks_override = {"keys": [{**private, "kid": kid}, {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"},
                                     {**public, "use": "enc"}, small_jwk]}
    v = make_verifier(issuer, certs)
    assert v.verify(issuer.mint(AUD)).reason == "unknown_kid"
    small_token = jwt.encode(issuer.claims(AUD), small, algorithm="RS256", headers={"kid": "small"})
    assert v.verify(small_token).reason == "unknown_kid"


def test_unreachable_issuer_is_unavailable_never_admitted(issuer, certs):
    v = make_verifier(issuer, certs)
    issuer.down = True
    result = v.verify(issuer.mint(AUD))
    assert (result.principal, result.reason) == (None, UNAVAILABLE)


def test_opaque_token_by_introspection_and_active_false(issuer, certs):
    issuer.opaque["opaque-good"] = {"active": True, "iss": issuer.url, "aud": AUD, "sub": "bob",
                                    "client_id": "cli", "scope": "tools:read",
                                    "exp": int(time.time()) + 300}
    issuer.opaque["opaque-revoked"] = {**issuer.opaque["opaque-good"], "active": False}
    issuer.opaque["opaque-elsewhere"] = {**issuer.opaque["opaque-good"], "aud": "https://x.example/mcp"}
    v = make_verifier(issuer, certs, introspection_url=issuer.origin + "/introspect",
                      client_id=issuer.client[0], client_secret=issuer.client[1])
    assert v.verify("opaque-good").principal.subject == "bob"
    assert v.verify("opaque-revoked").reason == "token_inactive"
    assert v.verify("opaque-elsewhere").reason == "wrong_audience"
    assert v.verify("never-issued").reason == "token_inactive"


def test_introspection_cache_lasts_no_longer_than_the_token(issuer, certs):
    issuer.opaque["short"] = {"active": True, "iss": issuer.url, "aud": AUD, "sub": "bob",
                              "scope": "tools:read", "exp": int(time.time()) + 2}
    v = make_verifier(issuer, certs, introspection_url=issuer.origin + "/introspect",
                      client_id=issuer.client[0], client_secret=issuer.client[1])
    assert v.verify("short").principal is not None
    assert v.cached("short") is not None and issuer.introspections == 1
    time.sleep(2.1)
    assert v.cached("short") is None  # the token died: so did its cache entry
    issuer.opaque["short"] = {"active": False}
    assert v.verify("short").reason == "token_inactive"


def test_introspection_cache_bounded_by_ttl(issuer, certs):
    issuer.opaque["long"] = {"active": True, "iss": issuer.url, "aud": AUD, "sub": "bob",
                             "scope": "tools:read", "exp": int(time.time()) + 3600}
    v = make_verifier(issuer, certs, introspection_url=issuer.origin + "/introspect",
                      client_id=issuer.client[0], client_secret=issuer.client[1], introspection_ttl=1)
    assert v.verify("long").principal is not None
    time.sleep(1.1)
    assert v.cached("long") is None


def test_opaque_token_without_introspection_is_refused(issuer, certs):
    v = make_verifier(issuer, certs)
    assert v.verify("some-opaque-token").reason == "opaque_token_no_introspection"


def test_jwks_found_through_openid_configuration_when_rfc8414_is_absent(issuer, certs):
    issuer.metadata_path = "/.well-known/openid-configuration"
    v = make_verifier(issuer, certs)
    assert v.verify(issuer.mint(AUD)).principal is not None


def test_metadata_naming_another_issuer_is_not_trusted(issuer, certs):
    issuer.metadata_overrides["issuer"] = "https://impostor.example.com"
    v = make_verifier(issuer, certs)
    assert v.verify(issuer.mint(AUD)).reason == UNAVAILABLE
    assert issuer.jwks_fetches == 0


def test_crit_header_and_embedded_keys_are_not_believed(issuer, certs):
    from cryptography.hazmat.primitives.asymmetric import rsa

    v = make_verifier(issuer, certs)
    kid, key = issuer.keys[-1]
    # RFC 7515 §4.1.11 (PyJWT enforces it; pinned here against a library change):
    crit = jwt.encode(issuer.claims(AUD), key, algorithm="RS256",
                      headers={"kid": kid, "crit": ["exp"], "b64": True})
    assert v.verify(crit).reason == "invalid_claims"
    # A token carrying its own key (jwk header) signed with that key: the header is ignored.
    mine = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(mine.public_key()))
    forged = jwt.encode(issuer.claims(AUD), mine, algorithm="RS256", headers={"kid": kid, "jwk": jwk})
    assert v.verify(forged).reason == "bad_signature"


def test_issuer_with_a_trailing_slash_is_compared_exactly(certs):
    from finops_mcp_admin.oauth_metadata import check_issuer

    issuer = Issuer(certs, path="/").start()
    try:
        assert issuer.url.endswith("/") and check_issuer(issuer.url) == issuer.url
        v = make_verifier(issuer, certs)
        assert v.verify(issuer.mint(AUD)).principal is not None
        assert v.verify(issuer.mint(AUD, iss=issuer.url.rstrip("/"))).reason == "wrong_issuer"
    finally:
        issuer.stop()


def test_a_withdrawn_key_stops_working_within_recheck_after(issuer, certs):
    v = make_verifier(issuer, certs, recheck_after=1)
    token = issuer.mint(AUD)  # lives 300 s
    assert v.verify(token).principal is not None and v.cached(token) is not None
    issuer.rotate()
    issuer.retire_old_keys()  # the issuer withdraws the key that signed it
    time.sleep(1.1)
    assert v.cached(token) is None
    assert v.verify(token).reason == "unknown_kid"
