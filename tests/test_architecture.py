"""The shape ARCHITECTURE.md asks for, checked on the source (ast) and on the configured project.

- A `domain/` package imports only the standard library, its own package and the domain packages below it
  (scheduling.domain may read monitoring.domain's tables: pure imports pure, in the layers' direction).
- Dependencies point one way, inbound → scheduling → monitoring → il2ward (inbound, the hospital interfaces, sits on
  top like a client of the services): il2ward imports no app (only the project root, il2ward/settings.py and
  il2ward/urls.py, names them, and urls.py only as include("...") strings); monitoring never imports scheduling or
  inbound; scheduling never imports inbound.
- The production settings pass `manage.py check --deploy` with no warnings.
"""

import ast
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_PACKAGES = ("scheduling/domain", "monitoring/domain", "inbound/domain", "common")
# The pure packages a domain package may import besides its own: those of the apps below it, and common (the pure
# helpers under every layer, which imports none of them).
DOMAIN_BELOW = {
    "inbound.domain": ("scheduling.domain", "monitoring.domain", "common"),
    "scheduling.domain": ("monitoring.domain", "common"),
    "monitoring.domain": ("common",),
    "common": (),
}
APPS = ("scheduling", "monitoring", "inbound")
PROJECT_ROOT_FILES = {"il2ward/settings.py", "il2ward/urls.py"}


def sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every absolute module an import statement (anywhere in the file) or importlib.import_module("...") names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).parent.parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            else:
                found.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def test_the_packages_checked_exist():
    for package in (*DOMAIN_PACKAGES, "il2ward", *APPS):
        assert sources(package), f"no Python sources under {package}/"


@pytest.mark.parametrize("path", [p for pkg in DOMAIN_PACKAGES for p in sources(pkg)], ids=rel)
def test_domain_modules_import_only_the_standard_library(path):
    parts = path.relative_to(ROOT).parts
    own = "common" if parts[0] == "common" else ".".join(parts[:2])  # e.g. scheduling.domain
    allowed = (own, *DOMAIN_BELOW[own])
    outside = {
        m
        for m in imported_modules(path)
        if top(m) not in sys.stdlib_module_names and not any(m == a or m.startswith(a + ".") for a in allowed)
    }
    assert not outside, (
        f"{rel(path)} imports {sorted(outside)}: a domain package uses the standard library and the domain "
        "packages below it only"
    )


@pytest.mark.parametrize("path", [p for p in sources("il2ward") if rel(p) not in PROJECT_ROOT_FILES], ids=rel)
def test_il2ward_never_imports_scheduling_or_monitoring(path):
    upward = {m for m in imported_modules(path) if top(m) in APPS}
    assert not upward, f"{rel(path)} imports {sorted(upward)}: dependencies point scheduling → monitoring → il2ward"


@pytest.mark.parametrize("path", sources("monitoring"), ids=rel)
def test_monitoring_never_imports_scheduling(path):
    upward = {m for m in imported_modules(path) if top(m) in ("scheduling", "inbound")}
    assert not upward, f"{rel(path)} imports {sorted(upward)}: dependencies point scheduling → monitoring → il2ward"


@pytest.mark.parametrize("path", sources("scheduling"), ids=rel)
def test_scheduling_never_imports_inbound(path):
    upward = {m for m in imported_modules(path) if top(m) == "inbound"}
    assert not upward, f"{rel(path)} imports {sorted(upward)}: inbound is on top, a client of the other apps"


def test_project_urls_reach_the_apps_only_through_include_strings():
    path = ROOT / "il2ward" / "urls.py"
    tree = ast.parse(path.read_text())
    assert not {m for m in imported_modules(path) if top(m) in APPS}
    included = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "include":
            included |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    app_strings = {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and top(n.value) in APPS
    }
    assert app_strings, "il2ward/urls.py is expected to include the apps' URLconfs"
    assert app_strings <= included, f"app modules named outside include(): {sorted(app_strings - included)}"


def test_imported_modules_sees_every_kind_of_import(tmp_path):
    """The checker above is only as good as this: plain, from, nested, relative and importlib imports are found."""
    probe = tmp_path / "monitoring" / "domain" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import os\nfrom django.db import models\n"
        "def f():\n    import scheduling.services\n    from . import rulesets\n    from ..models import X\n"
        "    importlib.import_module('scheduling.tasks')\n"
    )
    found = imported_modules(probe, root=tmp_path)
    assert found == {
        "os",
        "django.db",
        "scheduling.services",
        "monitoring.domain",
        "monitoring.models",
        "scheduling.tasks",
    }


def test_production_settings_pass_check_deploy_without_warnings(tmp_path):
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "IL2WARD_"))}
    env.update(
        IL2WARD_ENV="production",
        DJANGO_SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(50)),
        IL2WARD_ALLOWED_HOSTS="ward.example.org",
        IL2WARD_AUDIT_KEYS="k1:" + "".join(secrets.choice(string.ascii_letters) for _ in range(40)),
        IL2WARD_VAR_DIR=str(tmp_path / "var"),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


# Settings are read one way (settings.X) and their defaults written once, in il2ward/settings.py. Reading the
# environment elsewhere is allowed only for what is not a setting: a command's password input, the settings module's
# name.
ENVIRONMENT_READERS = {"il2ward/settings.py", "il2ward/management/commands/create_staff.py"}


def settings_read_with_a_default(tree: ast.AST) -> list[int]:
    """Lines of getattr(settings, ..., default) and of os.environ / os.getenv reads (setdefault is no read)."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "getattr"
            and len(node.args) == 3
            and getattr(node.args[0], "id", None) == "settings"
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            parent_call = getattr(node, "_parent_attr", None)
            if parent_call != "setdefault":
                lines.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.Attribute) and isinstance(child, ast.Attribute):
                child._parent_attr = node.attr
    return lines


@pytest.mark.parametrize(
    "path",
    [p for pkg in ("il2ward", *APPS) for p in sources(pkg) if rel(p) not in ENVIRONMENT_READERS],
    ids=rel,
)
def test_settings_are_read_as_settings_x_with_their_default_in_the_settings_module(path):
    lines = settings_read_with_a_default(ast.parse(path.read_text(), filename=str(path)))
    assert not lines, f"{rel(path)}:{lines}: read settings.X; its default belongs in il2ward/settings.py"


def test_the_settings_check_sees_a_default_and_the_environment(tmp_path):
    planted = "from django.conf import settings\nimport os\na = getattr(settings, 'X', 5)\nb = os.environ.get('Y')\n"
    assert settings_read_with_a_default(ast.parse(planted)) == [3, 4]
    allowed = "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'il2ward.settings')\nc = settings.X\n"
    assert settings_read_with_a_default(ast.parse(allowed)) == []
