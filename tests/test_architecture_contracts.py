"""The architecture contracts (pyproject.toml, import-linter) hold on the code, and fail on a planted violation.

The apps are copied to a temporary folder so that a violation can be planted without touching the repository.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "il2ward", "monitoring", "scheduling", "inbound", "fixtures")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.slow


@pytest.fixture
def copy(tmp_path):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=folder, capture_output=True, text=True, env={"PYTHONPATH": str(folder)}
    )


def plant(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_code_keeps_every_contract(copy):
    result = lint(copy)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("scheduling/domain/window.py", "import django  # noqa", "Domain packages are pure"),
        ("common/timefmt.py", "import django.utils.timezone  # noqa", "Domain packages are pure"),
        ("common/timefmt.py", "import il2ward.timefmt  # noqa", "Apps in layers"),
        ("monitoring/services.py", "import scheduling.models  # noqa", "Apps in layers"),
        ("il2ward/access.py", "import fixtures.demo  # noqa", "Apps in layers"),
        ("scheduling/selectors/board.py", "import scheduling.mar.views  # noqa", "Within an app, the layers"),
        ("il2ward/heartbeats.py", "import il2ward.health  # noqa", "No cycles between sibling modules"),
    ],
)
def test_a_planted_violation_breaks_its_contract(copy, module, line, contract):
    plant(copy / module, line)
    result = lint(copy)
    assert result.returncode == 1
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in " ".join(broken.split())


MYPY = Path(sys.executable).with_name("mypy")


def typecheck(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MYPY), "--cache-dir", str(folder / ".mypy_cache")],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "il2ward.settings"},
    )


def test_mypy_passes_on_the_domain_packages_and_services(copy):
    result = typecheck(copy)
    assert result.returncode == 0, result.stdout


def test_a_planted_type_error_in_a_domain_package_fails_mypy(copy):
    plant(copy / "scheduling/domain/window.py", 'PLANTED: int = "eight hours"')
    result = typecheck(copy)
    assert result.returncode == 1
    assert "scheduling/domain/window.py" in result.stdout and "[assignment]" in result.stdout
