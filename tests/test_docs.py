"""The documentation the package points to exists: a docstring, a comment or an error hint naming
docs/X.md sends a reader (or a user, from a message) to that page."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_docs_page_named_in_the_package_exists():
    named = {}
    for path in sorted((ROOT / "flopcalc").rglob("*")):
        if path.suffix in (".py", ".yaml") and path.is_file():
            for page in re.findall(r"docs/([\w-]+\.md)", path.read_text(encoding="utf-8")):
                named.setdefault(page, str(path.relative_to(ROOT)))
    assert named, "the package names no docs page: the pattern is wrong"
    missing = {page: where for page, where in named.items() if not (ROOT / "docs" / page).is_file()}
    assert missing == {}


def test_every_figure_in_the_limits_page_is_the_codes_constant():
    """docs/limits.md quotes each limit beside the constant that holds it: the two must agree."""
    import importlib

    rows = re.findall(
        r"^\|[^|\n]*\|([^|\n]*)\|\s*`(flopcalc\.[\w.]+)`\s*\|$",
        (ROOT / "docs" / "limits.md").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert len(rows) >= 12
    for figure, dotted in rows:
        module, name = dotted.rsplit(".", 1)
        value = getattr(importlib.import_module(module), name)
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        assert re.search(rf"(?<![\d.,]){re.escape(shown)}(?![\d,]|\.\d)", figure), (dotted, shown, figure)
