"""monitoring/domain is pure: it imports only the standard library, its own modules and common/ (the pure helpers
under every layer; ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import monitoring.domain

DOMAIN = Path(monitoring.domain.__file__).parent


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return names


def test_domain_imports_only_the_standard_library():
    files = sorted(DOMAIN.rglob("*.py"))
    assert {str(f.relative_to(DOMAIN)) for f in files} >= {
        "engine/__init__.py",
        "engine/rules.py",
        "rulesets.py",
        "snapshot.py",
        "ctcae.py",
        "panels.py",
    }
    offenders = [
        f"{path.name}: {name}"
        for path in files
        for name in _imports(path)
        if name.split(".")[0] not in (*sys.stdlib_module_names, "common") and not name.startswith("monitoring.domain")
    ]
    assert offenders == []


def test_domain_never_reads_the_clock():
    for path in DOMAIN.rglob("*.py"):
        source = path.read_text()
        for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
            assert call not in source, f"{path.name} calls {call}"
