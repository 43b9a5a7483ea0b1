"""A fresh Python process SIGTERMed (as CI cancels a job) in the middle of writing a file: the atomic-write tests of
the library and of `check --update-baseline` share it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# every file opened through os.fdopen writes its first 10 characters, then (when WHEN holds of the text) the process
# sends itself SIGTERM; otherwise it writes the rest
_SLOW_WRITES = """
import os, signal, sys, time
real_fdopen = os.fdopen
class Slow:
    def __init__(self, handle): self.handle = handle
    def __enter__(self): return self
    def __exit__(self, *info): self.handle.close()
    def write(self, text):
        self.handle.write(text[:10])
        if {when}:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        else:
            self.handle.write(text[10:])
    def flush(self): self.handle.flush()
    def fileno(self): return self.handle.fileno()
os.fdopen = lambda fd, *a, **k: Slow(real_fdopen(fd, *a, **k))
"""


def killed_while_writing(source: str, *, when: str = "True", **run) -> subprocess.CompletedProcess:
    """Runs `source` after _SLOW_WRITES; `run` goes to subprocess.run (timeout, cwd)."""
    script = _SLOW_WRITES.format(when=when) + textwrap.dedent(source)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, **run)
