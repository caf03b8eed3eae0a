"""app.domain is pure: its modules import only the standard library and app.domain itself (checked with ast)."""

import ast
import pathlib
import sys

DOMAIN = pathlib.Path(__file__).resolve().parents[2] / "app" / "domain"


def _imports(path: pathlib.Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("app.domain" if node.level else (node.module or ""))
    return names


def test_domain_imports_only_stdlib_and_itself() -> None:
    offenders = []
    for path in sorted(DOMAIN.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if name == "app.domain" or name.startswith("app.domain."):
                continue
            if top in sys.stdlib_module_names and top != "app":
                continue
            offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_the_check_sees_the_engine_modules() -> None:
    found = {p.stem for p in DOMAIN.glob("*.py")}
    assert {"money", "calendar", "schedule", "apr", "explain", "errors"} <= found
    assert "decimal" in _imports(DOMAIN / "money.py")
