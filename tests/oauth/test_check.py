"""`mcpadmin oauth check`: an authorization server judged for MCP use."""

from __future__ import annotations

import json
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from finops_mcp_admin.oauth_check import FAIL, PASS, WARN, check_authorization_server
from finops_mcp_admin.oauth_metadata import MetadataClient
from tests.server.harness import base_env


def judge(issuer, certs, resource=None) -> dict[str, tuple[str, str]]:
    found = check_authorization_server(issuer.url, resource, MetadataClient(certs.client_context()))
    return {f.check: (f.result, f.detail) for f in found}


def mcpadmin(certs, *args):
    env = base_env({"SSL_CERT_FILE": str(certs.ca_file)})
    return subprocess.run([sys.executable, "-m", "finops_mcp_admin", "oauth", "check", *args], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_a_sound_issuer_passes_with_exit_0_and_json(issuer, certs):
    r = mcpadmin(certs, "--issuer", issuer.url, "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    findings = {f["check"]: f["result"] for f in json.loads(r.stdout)}
    assert findings["pkce S256"] == findings["jwks"] == findings["issuer match"] == PASS
    assert findings["client registration"] == PASS and findings["https endpoints"] == PASS
    assert findings["resource indicators"] == WARN  # not advertised by this issuer


def test_missing_pkce_fails_with_exit_1_and_a_table(issuer, certs):
    issuer.metadata_overrides["code_challenge_methods_supported"] = None
    r = mcpadmin(certs, "--issuer", issuer.url)
    assert r.returncode == 1
    line = next(x for x in r.stdout.splitlines() if x.startswith("pkce S256"))
    assert "fail" in line and "CHECK" in r.stdout.splitlines()[0]


@pytest.mark.parametrize(("override", "check", "result"), [
    ({"code_challenge_methods_supported": ["plain"]}, "pkce S256", FAIL),
    ({"code_challenge_methods_supported": ["S256", "plain"]}, "pkce S256", WARN),
    ({"grant_types_supported": ["client_credentials"]}, "authorization code", FAIL),
    ({"registration_endpoint": None}, "client registration", WARN),
    ({"registration_endpoint": None, "client_id_metadata_document_supported": True},
     "client registration", PASS),
    ({"token_endpoint": "http://login.example.com/token"}, "https endpoints", FAIL),
    ({"issuer": "https://impostor.example.com"}, "issuer match", FAIL),
    ({"jwks_uri": None}, "jwks", FAIL),
    ({"resource_indicators_supported": True}, "resource indicators", PASS),
])
def test_each_property_is_judged(issuer, certs, override, check, result):
    issuer.metadata_overrides.update(override)
    assert judge(issuer, certs)[check][0] == result


def test_unsafe_jwks_keys_fail(issuer, certs):
    kid, key = issuer.keys[-1]
    private = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key)), "kid": kid}
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    small_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(small)), "kid": "small"}
    no_kid = {k: v for k, v in issuer.jwks()["keys"][0].items() if k != "kid"}
    for bad, words in [(private, "private key material"), ({"kty": "oct", "k": "c2VjcmV0", "kid": "s"},
                                                           "not an asymmetric"),
                       (small_jwk, "1024 bits"), (no_kid, "no kid")]:
        issuer.jwks_override = {"keys": [issuer.jwks()["keys"][0], bad]}
        result, detail = judge(issuer, certs)["jwks"]
        assert result == FAIL and words in detail


def test_resource_metadata_must_name_the_issuer(issuer, certs):
    resource = issuer.origin + "/mcp"
    issuer.prm = {"resource": resource, "authorization_servers": [issuer.url]}
    assert judge(issuer, certs, resource)["protected resource"][0] == PASS
    issuer.prm = {"resource": resource, "authorization_servers": ["https://other.example.com"]}
    assert judge(issuer, certs, resource)["protected resource"][0] == FAIL


def test_no_metadata_is_a_failure(issuer, certs):
    found = check_authorization_server(issuer.origin + "/tenant-without-metadata", None,
                                       MetadataClient(certs.client_context()))
    assert [(f.check, f.result) for f in found] == [("issuer url", PASS), ("metadata", FAIL)]


def test_unreachable_issuer_is_one_line_exit_5(certs):
    from tests.redis_server import free_port

    r = mcpadmin(certs, "--issuer", f"https://127.0.0.1:{free_port()}")
    assert r.returncode == 5 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "cannot reach" in r.stderr


def test_non_https_issuer_is_usage_error(certs):
    r = mcpadmin(certs, "--issuer", "http://login.example.com")
    assert r.returncode == 2 and "must be https" in r.stderr
