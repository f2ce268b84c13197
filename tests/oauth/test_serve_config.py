"""`serve --auth`: bad OAuth configuration is one stderr line, exit 2, and no server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import FAST_ARGON2
from tests.server.harness import base_env


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cfg")
    (d / "mcpadmin").mkdir()
    (d / "mcpadmin" / "config.toml").write_text('[oauth_scope_map]\n"mcp:admin" = "admin:all"\n')
    return base_env({"MCPADMIN_STORE": f"sqlite:///{d / 'keys.db'}", "XDG_CONFIG_HOME": str(d),
                     **FAST_ARGON2})


@pytest.mark.parametrize(("args", "message"), [
    (["--auth", "oauth"], "needs --oauth-issuer"),
    (["--auth", "sometimes"], "invalid --auth"),
    (["--auth", "oauth", "--oauth-issuer", "http://login.example.com"], "must be https"),
    (["--auth", "oauth", "--oauth-issuer", "https://login.example.com?x=1"], "invalid --oauth-issuer"),
    (["--auth", "both", "--oauth-issuer", "https://login.example.com", "--host", "0.0.0.0"],
     "needs --public-url"),
    (["--auth", "oauth", "--oauth-issuer", "https://login.example.com",
      "--oauth-introspection-url", "http://introspect.example.com/i"], "must be https"),
])
def test_bad_oauth_configuration_refused_at_start(env, args, message):
    r = subprocess.run([sys.executable, "-m", "finops_mcp_admin", "serve", "--port", "1", *args],
                       env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_scope_map_onto_an_unknown_scope_refused(env, tmp_path):
    r = subprocess.run([sys.executable, "-m", "finops_mcp_admin", "serve", "--port", "1", "--auth", "oauth",
                        "--oauth-issuer", "https://login.example.com"],
                       env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "admin:all" in r.stderr, r.stderr
