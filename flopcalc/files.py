"""The ground floor for files: atomic writes (never a partial file), the one JSON style, YAML reading.

Every layer may use this module; it imports nothing of flopcalc but the errors.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import FlopcalcError, UsageError


def check_writable(path: str | os.PathLike) -> Path:
    """The file `path` can be written: its folder exists and it is not itself a folder. Commands check their
    output paths with this before any work, so a typo does not cost a count."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot write {target}: folder {folder} does not exist", "create it or pick another path")
    if target.is_dir():
        raise UsageError(f"cannot write {target}: it is a folder", "give the path of a file in it")
    return target


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` via a temporary file in the same folder and a rename."""
    target = check_writable(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as error:  # a read-only or full file system, no permission: the user's to fix
        raise UsageError(f"cannot write {target}: {error.strerror or error}", "pick another path") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException as error:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise UsageError(f"cannot write {target}: {error.strerror or error}", "pick another path") from None
        raise
    return target


def to_json(data: Any) -> str:
    """The one JSON style of every `--format json`: indented, key order kept, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def yaml_problem(error: Exception) -> str:
    """One line for a YAML syntax error: what the parser found and where (`... at line 3, column 7`)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def read_yaml(path: Path, error: type[FlopcalcError], what: str, *, loader: Any = None, hint: str = "fix the YAML syntax") -> Any:
    """Parse the YAML file `path`; an unreadable file or bad syntax raises `error` naming `what` and the place."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise error(f"cannot read {what} {path}: {problem}") from None
    return parse_yaml(text, error, f"{path}", loader=loader, hint=hint)


def parse_yaml(text: str, error: type[FlopcalcError], where: str, *, loader: Any = None, hint: str = "fix the YAML syntax") -> Any:
    """Parse YAML `text` read from `where`; bad syntax raises `error`: `WHERE: not valid YAML: PROBLEM at line L`."""
    import yaml

    try:
        return yaml.load(text, Loader=loader or getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as problem:
        raise error(f"{where}: not valid YAML: {yaml_problem(problem)}", hint) from None
