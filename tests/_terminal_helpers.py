"""Running the CLI with its stdout on a pseudo-terminal, as a user at a terminal sees it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def stdout_on_terminal(arguments: list[str], cwd: Path) -> tuple[int, str]:
    """Exit code and stdout of `python -m flopcalc ARGUMENTS` with stdout a pseudo-terminal (stderr piped)."""
    import pty

    primary, secondary = pty.openpty()
    try:
        done = subprocess.Popen(
            [sys.executable, "-m", "flopcalc", *arguments], stdout=secondary, stderr=subprocess.PIPE, cwd=cwd
        )
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            seen += chunk
        done.communicate(timeout=300)
    finally:
        os.close(primary)
    return done.returncode, seen.decode().replace("\r\n", "\n")
