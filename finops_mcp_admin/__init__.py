"""finops-mcp-admin: the security administrator's toolkit for remote MCP servers."""

__version__ = "0.1.0"
