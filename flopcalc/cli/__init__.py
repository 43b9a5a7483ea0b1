"""Command-line interface: `flopcalc COMMAND`. Each command module registers itself on `app`."""

from __future__ import annotations

from ._app import app
# command modules register themselves on import:
from . import bench  # noqa: E402,F401


def main() -> None:
    app()
