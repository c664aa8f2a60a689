"""Layering, checked on the source: the core imports no provider; providers use only the
public surface of the core (`klingbridge` and `klingbridge.parsing`)."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import klingbridge

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "klingbridge"
PROVIDERS = ROOT / "providers"
CORE_FILES = sorted(CORE.rglob("*.py"))
PROVIDER_FILES = sorted(PROVIDERS.glob("klingbridge_*/**/*.py"))
PUBLIC_CORE_MODULES = {"klingbridge", "klingbridge.parsing"}


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for every import; relative ones are skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, [alias.name for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value, []


def top(module: str) -> str:
    return module.split(".")[0]


def test_there_is_something_to_check() -> None:
    assert CORE / "client.py" in CORE_FILES
    assert PROVIDERS / "klingbridge_kling" / "__init__.py" in PROVIDER_FILES


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_no_provider(path: Path) -> None:
    for line, module, _ in imports(path):
        assert not top(module).startswith("klingbridge_"), f"{path.name}:{line} imports {module}"


@functools.cache
def _declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = set()
    for spec in project["dependencies"]:
        name = spec.split(";")[0].strip()
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.add(name.lower().replace("_", "-"))
    return names


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_only_stdlib_and_declared_dependencies(path: Path) -> None:
    declared = _declared_dependencies()
    distributions = _distributions()
    for line, module, _ in imports(path):
        name = top(module)
        if name in sys.stdlib_module_names or name == "klingbridge":
            continue
        owners = {d.lower().replace("_", "-") for d in distributions.get(name, [])}
        if name == "tomli" and "tomli" in declared:  # only installed before Python 3.11
            continue
        assert owners & declared, f"{path.name}:{line} imports {module}, not a declared dependency"


@pytest.mark.parametrize("path", PROVIDER_FILES, ids=lambda p: str(p.relative_to(PROVIDERS)))
def test_providers_use_only_the_public_core(path: Path) -> None:
    package = path.relative_to(PROVIDERS).parts[0]
    for line, module, names in imports(path):
        where = f"{path.relative_to(PROVIDERS)}:{line}"
        if top(module) == "klingbridge":
            assert module in PUBLIC_CORE_MODULES, f"{where} imports private {module}"
            if module == "klingbridge":
                private = set(names) - set(klingbridge.__all__) - {"parsing"}
                assert not private, f"{where} imports {sorted(private)} from klingbridge"
        elif top(module).startswith("klingbridge_"):
            assert top(module) == package, f"{where}: one provider imports another ({module})"


def test_importing_klingbridge_loads_no_provider() -> None:
    code = (
        "import sys, klingbridge, klingbridge.parsing; "
        "print(sorted(m for m in sys.modules if m.startswith('klingbridge_')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
