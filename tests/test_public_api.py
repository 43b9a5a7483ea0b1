"""The library stands without the CLI: every public name resolves, and importing flopcalc loads no torch."""

import subprocess
import sys

import flopcalc


def test_every_public_name_resolves():
    for name in flopcalc.__all__:
        assert getattr(flopcalc, name) is not None


def test_import_is_light():
    code = "import sys, flopcalc; flopcalc.load_catalog; flopcalc.convert; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_every_lazy_export_is_visible_to_type_checkers():
    """`flopcalc.__getattr__` imports the public names on first use, which a type checker cannot follow: the
    TYPE_CHECKING block must import each one (`from .m import X as X`), or a user's mypy sees it as Any."""
    import ast
    import inspect

    import flopcalc

    tree = ast.parse(inspect.getsource(flopcalc))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    typed = {
        (f"flopcalc.{node.module}", alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    }
    assert typed == {(module, name) for name, module in flopcalc._EXPORTS.items()}
