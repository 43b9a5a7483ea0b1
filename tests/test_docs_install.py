"""What the docs say about installing holds outside the checkout: the wheel carries the GPU catalogue, installs
into a fresh venv and counts an example there (dependencies come from this venv through a .pth file, so
nothing is downloaded). `make dist-check` runs this file."""

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build_wheel(out_dir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-c", f"import setuptools.build_meta as b; b.build_wheel({str(out_dir)!r})"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = out_dir.glob("flopcalc-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_installs_outside_the_checkout_and_counts_an_example(tmp_path):
    wheel = _build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    for vendor in ("nvidia", "amd", "google", "intel", "apple", "cpus"):
        assert f"flopcalc/gpu_specs/{vendor}.yaml" in names
    assert "flopcalc/data/thresholds.yaml" in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # torch, typer, rich ... from this venv; a path added by a .pth line has its own .pth files ignored, so the
    # editable install of the checkout stays out of sight and the wheel's copy is the one imported
    Path(site, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "examples" / "cnn.py", work / "cnn.py")
    where = subprocess.run(
        [str(python), "-c", "import flopcalc; print(flopcalc.__file__)"],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where
    counted = subprocess.run(
        [str(env_dir / "bin" / "flopcalc"), "count", "cnn.py:build", "--input", "8x3x32x32", "--format", "json"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert counted.returncode == 0, counted.stderr
    totals = json.loads(counted.stdout)["totals"]
    reference = subprocess.run(
        [
            sys.executable,
            "-m",
            "flopcalc",
            "count",
            "examples/cnn.py:build",
            "--input",
            "8x3x32x32",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert totals == json.loads(reference.stdout)["totals"]
    shown = subprocess.run(
        [str(env_dir / "bin" / "flopcalc"), "gpus", "show", "H100-SXM"], cwd=work, capture_output=True, text=True
    )
    assert shown.returncode == 0 and "H100" in shown.stdout, shown.stderr
