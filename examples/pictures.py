"""Draws the pictures README.md and docs/ show: each command's HTML report of an example, opened in headless
Chromium (network cut) and photographed into docs/img/. `make pictures`; needs the html extra, playwright and
Chromium (Debian: apt-get install chromium).
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"
# picture name -> the command line (after `flopcalc`) whose --format html report it shows
REPORTS = {
    "count": ["count", "examples/cnn.py:build", "--input", "8x3x32x32"],
    "plan": [
        "plan",
        *("--params", "7e9", "--layers", "32", "--hidden", "4096", "--heads", "32", "--seq-len", "4096"),
        *("--gpu", "H100-SXM", "--num-gpus", "16", "--tp", "2", "--pp", "4", "--global-batch", "32"),
        *("--micro-batch", "1", "--tokens", "1T"),
    ],
    "check": ["check", "--budget", "examples/flopcalc.yaml"],
    "infer": [
        "infer",
        "examples/hf/llama-2-7b/config.json",
        "--gpu",
        "A100-SXM4-80GB",
        "--prompt",
        "512",
        "--generate",
        "128",
        "--batch-size",
        "1,8,64",
    ],
    "validate": ["validate"],
    "train": [
        "train",
        "examples/hf/llama-2-7b/config.json",
        *("--seq-len", "4096", "--examples", "500K"),
        *("--gpu", "H100-SXM", "--num-gpus", "1024", "--price-per-gpu-hour", "2"),
    ],
    "bench": ["bench", "examples/mlp.py:build", "--device", "cpu", "--seconds", "5"],
}


def photograph(page_path: Path, picture: Path, browser) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    page.goto(page_path.resolve().as_uri())
    page.wait_for_function("window.Bokeh && Bokeh.documents.length > 0", timeout=20_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(picture), full_page=True)
    page.close()


def main() -> int:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        print("pictures: no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        chosen = sys.argv[1:] or list(REPORTS)  # `pictures.py train bench` redraws those two
        for name, command in ((name, REPORTS[name]) for name in chosen):
            report = Path(scratch) / f"{name}.html"
            subprocess.run(
                [sys.executable, "-m", "flopcalc", *command, "--format", "html", "--output", str(report)],
                cwd=ROOT,
                check=True,
            )
            photograph(report, IMAGES / f"{name}.png", browser)
            print(f"docs/img/{name}.png")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
