"""Command-line interface: `flopcalc COMMAND`. Each command module registers itself on `app`."""

from __future__ import annotations

from ._app import app
# command modules register themselves on import:
from . import check  # noqa: F401,E402


def main() -> None:
    app()
