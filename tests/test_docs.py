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
