"""The authorization server the OAuth tests rely on behaves as configured: PKCE S256 required,
DCR open, access tokens are JWTs bound to the requested resource, refresh works."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2

from tests.oauth_provider.harness import sign_in

RESOURCE = "https://127.0.0.1:8443/mcp"
REDIRECT = "http://127.0.0.1:53682/callback"


def register(issuer: str) -> str:
    meta = httpx2.get(f"{issuer}/.well-known/oauth-authorization-server").json()
    assert meta["code_challenge_methods_supported"] == ["S256"]
    r = httpx2.post(meta["registration_endpoint"], json={
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "application_type": "native",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
    assert r.status_code == 201, r.text
    return r.json()["client_id"]


def authorize_url(issuer: str, client_id: str, challenge: str | None, state: str) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": state,
              "scope": "tools:read", "resource": RESOURCE}
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return f"{issuer}/auth?{urlencode(params)}"


def claims(jwt: str) -> dict:
    body = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_code_flow_with_pkce_gives_a_resource_bound_jwt_and_a_refresh_token(auth_server):
    client_id = register(auth_server.issuer)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    back = sign_in(authorize_url(auth_server.issuer, client_id, challenge, "st4te"))
    query = parse_qs(urlsplit(back).query)
    assert back.startswith(REDIRECT) and query["state"] == ["st4te"] and query["iss"] == [auth_server.issuer]
    token = httpx2.post(f"{auth_server.issuer}/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
        "client_id": client_id, "code_verifier": verifier, "resource": RESOURCE}).json()
    access = claims(token["access_token"])
    assert access["aud"] == RESOURCE and access["iss"] == auth_server.issuer
    assert access["scope"] == "tools:read" and access["sub"] == "alice"
    refreshed = httpx2.post(f"{auth_server.issuer}/token", data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": client_id,
        "resource": RESOURCE}).json()
    assert claims(refreshed["access_token"])["aud"] == RESOURCE
    assert auth_server.grants() == ["authorization_code", "refresh_token"]


def test_an_authorization_request_without_pkce_is_refused(auth_server):
    client_id = register(auth_server.issuer)
    r = httpx2.get(authorize_url(auth_server.issuer, client_id, None, "s"), follow_redirects=False)
    location = r.headers.get("location", "")
    assert "error=invalid_request" in location and "requires PKCE" in parse_qs(
        urlsplit(location).query)["error_description"][0]
