"""The envelope's request view: one reading of the headers, whatever the ASGI server sends."""

from __future__ import annotations

from finops_mcp_admin.server._asgi import Request


def _req(headers):
    return Request({"type": "http", "method": "POST", "path": "/mcp", "headers": headers,
                    "client": ("10.0.0.1", 1)})


def test_headers_are_read_by_lower_case_name_and_decoded_as_latin1():
    req = _req([(b"authorization", b"Bearer x"), (b"x-name", "café".encode("latin-1"))])
    assert req.header("authorization") == "Bearer x" and req.header("x-name") == "café"
    assert req.header("origin") is None


def test_a_repeated_header_matches_nothing_even_when_its_case_differs():
    for headers in ([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
                    [(b"Authorization", b"Bearer a"), (b"authorization", b"Bearer b")]):
        assert _req(headers).header("authorization") == "\x00duplicate"


def test_upper_case_names_from_a_server_that_does_not_lower_them_are_still_found():
    req = _req([(b"Authorization", b"Bearer a"), (b"MCP-Session-Id", b"s1")])
    assert req.header("authorization") == "Bearer a" and req.header("mcp-session-id") == "s1"
