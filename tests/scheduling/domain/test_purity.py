"""scheduling/domain stays pure (ARCHITECTURE.md, PATTERNS.md): the standard library and the domain packages only,
and it never reads the clock."""

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[3] / "scheduling" / "domain"
SOURCES = sorted(DOMAIN.glob("*.py"))
CLOCK_READS = {"now", "utcnow", "today"}
PURE_PACKAGES = ("scheduling.domain", "monitoring.domain", "common.")  # common/: the pure helpers under every layer


def test_domain_sources_found():
    assert {"calendar.py", "dosing.py", "window.py"} <= {p.name for p in SOURCES}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_domain_imports_only_the_standard_library(path):
    """... and the pure packages: its own and monitoring/domain below it (whose tables it reads, e.g. the weights)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = set()
    for node in ast.walk(tree):  # every import, including ones inside functions
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module)
    outside = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(PURE_PACKAGES)
    }
    assert not outside, f"{path.name} imports {outside}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_domain_never_reads_the_clock(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_READS
    }
    assert not calls, f"{path.name} calls {calls}: pass `now` in instead"
