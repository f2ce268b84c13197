"""The package's layering rules, read from the source: the core never reaches into the CLI or its
libraries, and no room grows into a grab-bag again (module and function size limits)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "finops_mcp_admin"
CLI = PACKAGE / "cli"
CLI_ONLY = ("typer", "tabulate", "click", "finops_mcp_admin.cli")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def _imported(source: str, package: str) -> set[str]:
    """Every absolute module name the source imports, at any depth (lazy imports included)."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _is_cli_only(name: str) -> bool:
    return any(name == banned or name.startswith(banned + ".") for banned in CLI_ONLY)


@pytest.mark.parametrize("source", ["from ..cli import main", "from ..cli._render import Format",
                                    "def f():\n    import typer", "from tabulate import tabulate"])
def test_the_import_reader_catches_a_cli_import(source):
    # Guards the guard: relative and lazy imports of the CLI from a core module are seen.
    assert any(_is_cli_only(n) for n in _imported(source, "finops_mcp_admin.server"))


def test_the_import_reader_allows_core_imports():
    assert not any(_is_cli_only(n) for n in _imported("from ..keys import Secret", "finops_mcp_admin.server"))


# `python -m finops_mcp_admin` is the CLI's own entry point.
ENTRY_POINTS = {PACKAGE / "__main__.py"}


@pytest.mark.parametrize("path", [p for p in _modules() if CLI not in p.parents and p not in ENTRY_POINTS],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_nothing_of_the_cli(path):
    offending = sorted(n for n in _imported(path.read_text(), _package_of(path)) if _is_cli_only(n))
    assert offending == [], f"{path.relative_to(PACKAGE)} imports {offending}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_stays_under_the_size_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines"


def test_no_function_is_longer_than_the_limit():
    too_long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - start + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length})")
    assert too_long == []
