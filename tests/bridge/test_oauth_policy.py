"""The checks in front of the bridge's browser launcher (bridge/oauth_policy.py), on the URLs a
hostile server or authorization server could hand it (the CVE-2025-6514 class)."""

from __future__ import annotations

import pytest

from finops_mcp_admin.bridge.oauth_policy import SignInRefused, check_authorization_url, check_endpoint_url

ISSUER = "https://login.example.com"
GOOD = f"{ISSUER}/oauth2/authorize?response_type=code&client_id=abc&state=s7&redirect_uri=http%3A%2F%2F127"


def test_an_encoded_https_url_on_the_issuer_is_accepted_and_its_state_returned():
    assert check_authorization_url(GOOD, ISSUER, allow_http=False) == "s7"


@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)//?state=s",
    "file:///etc/passwd?state=s",
    "data:text/html,<script>alert(1)</script>",
    f"{ISSUER}/auth$(touch${{IFS}}/tmp/pwned)?state=s",
    f"{ISSUER}/auth`id`?state=s",
    f"{ISSUER}/auth;rm -rf ~?state=s",
    f"{ISSUER}/auth?state=s&x=a|calc.exe",
    f"{ISSUER}/auth?state=s&x=\"&calc\"",
    f"{ISSUER}/auth?state=s#frag",
    f"{ISSUER}/auth?state=s\r\nX: y",
    "https://evil.example.com/auth?state=s",           # another origin than the issuer's
    "https://login.example.com.evil.example/auth?state=s",
    "https://login.example.com@evil.example/auth?state=s",
    "https://login.example.com:8443/auth?state=s",      # another port is another origin
    "http://login.example.com/auth?state=s",            # downgraded
    f"{ISSUER}/auth?client_id=x",                        # no state to check the redirect against
    f"{ISSUER}/auth?state=a&state=b",
])
def test_a_hostile_authorization_url_is_refused(url):
    with pytest.raises(SignInRefused):
        check_authorization_url(url, ISSUER, allow_http=False)


def test_a_refusal_message_is_one_printable_line_without_the_query():
    with pytest.raises(SignInRefused) as caught:
        check_authorization_url("javascript:alert(1)\n//?state=SECRETSTATE", ISSUER, allow_http=False)
    text = str(caught.value)
    assert "\n" not in text and "SECRETSTATE" not in text


def test_loopback_http_needs_allow_http_and_other_http_is_never_accepted():
    url = "http://127.0.0.1:9000/auth?state=s"
    assert check_authorization_url(url, "http://127.0.0.1:9000", allow_http=True) == "s"
    with pytest.raises(SignInRefused, match="--allow-http"):
        check_authorization_url(url, "http://127.0.0.1:9000", allow_http=False)
    for endpoint in ("http://idp.example.com", "http://10.0.0.1/token", "ftp://127.0.0.1/"):
        with pytest.raises(SignInRefused):
            check_endpoint_url(endpoint, allow_http=True, what="the authorization server")
