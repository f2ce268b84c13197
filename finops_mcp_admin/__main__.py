"""`python -m finops_mcp_admin` runs the mcpadmin command."""

from .cli import main

main()
