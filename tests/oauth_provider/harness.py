"""A real authorization server for the OAuth tests: `oidc-provider` (npm, OpenID-certified),
installed by the test run into a cached npm prefix and started as a subprocess (provider.mjs
says how it is configured), plus the scripted user that signs in and consents."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.redis_server import free_port

HERE = Path(__file__).resolve().parent
#: Major version pinned: the script uses its v9 configuration API.
OIDC_PROVIDER = "oidc-provider@9"
NPM_INSTALL_TIMEOUT = 300
START_TIMEOUT = 30


def install_oidc_provider(prefix: Path, npm_cache: Path | None) -> Path:
    """`npm install oidc-provider` into prefix; the directory provider.mjs runs from. Skips only
    when node or npm is absent; a failed install is a test failure."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("node and npm are not installed: the OAuth tests run the real oidc-provider "
                    "authorization server (apt-get install nodejs npm)")
    env = {**os.environ, "npm_config_update_notifier": "false",
           **({"npm_config_cache": str(npm_cache)} if npm_cache else {})}
    try:
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                            "--prefix", str(prefix), OIDC_PROVIDER], env=env, capture_output=True,
                           text=True, timeout=NPM_INSTALL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm install {OIDC_PROVIDER} took over {NPM_INSTALL_TIMEOUT} s")
    if r.returncode != 0:
        pytest.fail(f"npm install {OIDC_PROVIDER} failed: {r.stderr[-2000:]}")
    # ESM resolves `import 'oidc-provider'` from the script's own directory.
    shutil.copy(HERE / "provider.mjs", prefix / "provider.mjs")
    return prefix


@dataclass
class AuthorizationServer:
    """One oidc-provider subprocess on http://127.0.0.1:PORT."""

    directory: Path
    access_token_ttl: int = 600
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _lines: list[dict] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> AuthorizationServer:
        self.port = free_port()
        self.log_path = log_dir / f"oidc-provider-{self.port}.log"
        env = {**os.environ, "ACCESS_TOKEN_TTL": str(self.access_token_ttl)}
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen([shutil.which("node") or "node", "provider.mjs", str(self.port)],
                                         cwd=self.directory, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if any("ready" in line for line in self.events()):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"oidc-provider did not start: {self.log_path.read_text()[-2000:]}")

    def events(self) -> list[dict]:
        """The JSON lines provider.mjs printed so far (its warnings are skipped)."""
        assert self.log_path is not None
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def grants(self) -> list[str]:
        """The grant_type of every token the server issued, in order."""
        return [e["grant_type"] for e in self.events() if e.get("event") == "grant"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sign_in(authorization_url: str, login: str = "alice") -> str:
    """Walk the authorization server's pages as a user would: open the authorization URL, sign
    in as `login`, consent to what the client asked for. Returns the redirect back to the client
    (its loopback callback URL with code, state and iss), without requesting it."""
    import httpx2

    with httpx2.Client(follow_redirects=False, timeout=10) as browser:
        url = authorization_url
        for _ in range(12):
            response = browser.get(url)
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["location"])
                if urlsplit(url).netloc != urlsplit(authorization_url).netloc:
                    return url  # leaving the authorization server: the redirect to the client
                continue
            assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
            page = response.json()
            step = "login" if page["prompt"] == "login" else "consent"
            form = {"login": login} if step == "login" else {}
            done = browser.post(f"{url}/{step}", data=form)
            assert done.status_code in (302, 303), f"{step}: {done.status_code} {done.text[:300]}"
            url = urljoin(url, done.headers["location"])
        raise AssertionError("the sign-in did not come back to the client")


@dataclass
class ResourceServer:
    """tests/oauth_provider/resource_server.py in a subprocess, over HTTPS (trustme)."""

    issuer: str
    cert_file: Path
    key_file: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mcp"

    def start(self, log_dir: Path) -> ResourceServer:
        import socket
        import sys

        self.port = self.port or free_port()
        log = (log_dir / f"resource-server-{self.port}.log").open("a")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.oauth_provider.resource_server",
                                      self.issuer, str(self.port), str(self.cert_file), str(self.key_file)],
                                     cwd=HERE.parents[1], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the resource server did not start: {log.name}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
