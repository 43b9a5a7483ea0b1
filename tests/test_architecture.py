"""The architecture contract (pyproject's [tool.importlinter], docs/architecture.md) holds, and would catch a
reverse import: each layer imports only from the layers below it, and no two rooms import each other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the `flopcalc` package under `root`, with that tree's pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, reverse_import",
    [
        ("units.py", "from . import cli"),  # the ground floor reaching the top
        ("counting/report.py", "from .. import loaders"),  # a room importing its neighbour on one floor
        ("compute.py", "from . import catalog"),  # one floor up
        ("counting/formulas.py", "from . import counter"),  # inside a package
        ("cli/convert.py", "from . import count"),  # one command reaching into another
    ],
)
def test_a_reverse_import_breaks_the_contract(tmp_path, module, reverse_import):
    shutil.copytree(ROOT / "flopcalc", tmp_path / "flopcalc", ignore=shutil.ignore_patterns("__pycache__", "gpu_specs"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "flopcalc" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{reverse_import}  # noqa\n", encoding="utf-8")
    result = lint(tmp_path)
    assert result.returncode != 0, result.stdout
    importer = "flopcalc." + module.removesuffix(".py").replace("/", ".")
    assert "BROKEN" in result.stdout and f"- {importer} -> " in result.stdout


def _private_imports(source: str) -> list[str]:
    """`from .x import _helper` (one module reaching into another's private helpers), as `module._helper`."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("flopcalc")):
            found += [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


def test_no_module_imports_another_modules_private_helpers():
    """A helper two modules share is public and lives in the room both may import (brief: one place per concern)."""
    assert _private_imports("from .counting.counter import _apply_frozen, count") == ["counting.counter._apply_frozen"]
    offenders = {
        str(path.relative_to(ROOT)): names
        for path in sorted((ROOT / "flopcalc").rglob("*.py"))
        if (names := _private_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_make_lint_checks_with_the_configured_tools_and_rewrites_nothing():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in recipe.splitlines()[1:]]
    assert commands == [
        "$(VENV)/bin/ruff check .",
        "$(VENV)/bin/ruff format --check .",
        "$(VENV)/bin/mypy",
        "$(VENV)/bin/lint-imports",
    ]
    assert "--fix" not in recipe and "format ." not in recipe.replace("format --check .", "")
    assert "\ntest: lint\n" in makefile  # make test (CI's command) lints before the suite


def test_every_import_linter_layer_is_required():
    """An optional layer `(flopcalc.x)` is silently unchecked once it is renamed or moved."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    layers = [layer for contract in config["tool"]["importlinter"]["contracts"] for layer in contract.get("layers", ())]
    assert layers and [layer for layer in layers if "(" in layer] == []
