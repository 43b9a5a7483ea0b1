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
