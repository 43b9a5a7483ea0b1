"""Benchmark: the size of the biggest HTML reports and how long headless Chromium takes to open them (issue 24's
done-when line: a 7B model's count and a 70B plan with --search under 5 MB and open in under 2 s). Writes each
page with the CLI, then opens it from a file:// URL with the network cut, timing from the navigation until every
Bokeh chart has drawn (Bokeh's documents exist and each plot view has finished its first paint), best of three
opens. Run by hand: `.venv/bin/python benchmarks/report_pages.py` (needs the html extra, playwright and Chromium;
figures go in the closing note).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests._shapes import LLAMA_3_70B, plan_flags  # noqa: E402

PAGES = {
    "count of Llama-2-7B (config.json, seq 4096, on meta)": [
        *("count", "examples/hf/llama-2-7b/config.json", "--seq-len", "4096"),
    ],
    "plan --search of a 70B shape on 512 H100s": [
        *("plan", "--params", "70e9", *plan_flags(LLAMA_3_70B), "--seq-len", "4096", "--gpu", "H100-SXM"),
        *("--num-gpus", "512", "--global-batch", "1024", "--tokens", "2T", "--search"),
    ],
}

# every root view of the page has painted once (Bokeh.index holds them; has_finished() once its first render is done)
DRAWN = """() => {
  if (!(window.Bokeh && Bokeh.documents.length > 0 && Bokeh.index)) return false;
  const views = [...Bokeh.index];
  return views.length > 0 && views.every((view) => view.has_finished());
}"""


def open_seconds(page_path: Path, browser) -> float:
    """Seconds from the navigation until every chart has drawn, in a fresh tab with the network cut."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    start = time.perf_counter()
    page.goto(page_path.resolve().as_uri())
    page.wait_for_function(DRAWN, timeout=30_000, polling=10)
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def main() -> int:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        print("report_pages: no Chromium found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        for index, (name, command) in enumerate(PAGES.items()):
            report = Path(scratch) / f"page{index}.html"
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "flopcalc", *command, "--format", "html", "--output", str(report)],
                cwd=ROOT,
                check=True,
                stderr=subprocess.DEVNULL,
            )
            written = time.perf_counter() - start
            opens = [open_seconds(report, browser) for _ in range(3)]
            print(
                f"{name}: {report.stat().st_size / 1e6:.2f} MB, written in {written:.1f} s (the whole command), "
                f"opens in {min(opens):.2f} s (best of 3; {', '.join(f'{s:.2f}' for s in opens)})"
            )
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
