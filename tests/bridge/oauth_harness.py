"""Drive the bridge's sign-in as the user would: read the authorization URL it prints (no browser
on the test machine), sign in and consent at the real authorization server, and let the browser
follow the redirect to the bridge's loopback listener."""

from __future__ import annotations

import re
import time
from pathlib import Path

import anyio
import httpx2

from tests.oauth_provider.harness import sign_in

URL_LINE = re.compile(r"open this URL to sign in to the MCP server: (\S+)")


async def printed_url(stderr_path: Path, seen: int = 0, timeout: float = 60) -> str:
    """The (seen+1)-th authorization URL the bridge printed on stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = URL_LINE.findall(stderr_path.read_text()) if stderr_path.exists() else []
        if len(found) > seen:
            return found[seen]
        await anyio.sleep(0.1)
    raise AssertionError(f"the bridge printed no sign-in URL: {stderr_path.read_text()[-2000:]}")


async def user_signs_in(stderr_path: Path, login: str = "alice", seen: int = 0) -> httpx2.Response:
    """Sign in at the printed URL; the browser then follows the redirect to the bridge."""
    url = await printed_url(stderr_path, seen)
    callback = await anyio.to_thread.run_sync(sign_in, url, login)
    async with httpx2.AsyncClient() as browser:
        return await browser.get(callback)
