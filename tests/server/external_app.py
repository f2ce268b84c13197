"""An existing MCP server that knows nothing about keys: `mcpadmin serve --app` secures it."""

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

server = MCPServer("legacy-finops", log_level="WARNING")


@server.tool()
def cost_report(month: str) -> dict:
    """A read-only tool of the existing server."""
    return {"month": month, "total_usd": 1234.5}


@server.tool()
def delete_budget(name: str) -> dict:
    """A write tool of the existing server."""
    return {"deleted": name}


@server.resource("budgets://current", mime_type="application/json")
def current_budgets() -> str:
    """A resource of the existing server (needs resources:read behind the envelope)."""
    return '{"budgets": ["ops-confidential-budget"]}'


@server.prompt()
def cost_review(team: str) -> str:
    """A prompt of the existing server (needs prompts:read behind the envelope)."""
    return f"Review the cloud costs of team {team}."


app = server.streamable_http_app(
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))


@server.tool()
async def slow_report(seconds: float) -> dict:
    """Takes a while (tests kill the server in the middle of it)."""
    import anyio

    await anyio.sleep(seconds)
    return {"slept": seconds}
