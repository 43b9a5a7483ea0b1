"""The ground floor for files: every file flopcalc reads or writes goes through here, so the limits hold everywhere.

Reading: a size limit before parsing, and a YAML loader that refuses a key given twice and alias expansion past a
small budget (a "billion laughs" file ends in one line, not in MemoryError). Writing: a temporary file and a
rename, so a full disk or a SIGTERM leaves the previous file whole and no temporary file behind, with the user's
umask (or the overwritten file's mode). It imports nothing of flopcalc but the errors.
"""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import FlopcalcError, UsageError

# The largest YAML or JSON file flopcalc reads (catalogues, budgets, baselines, calibrations, configs). The biggest
# shipped catalogue is about 30 KB: 16 MiB is room for any real file and keeps a pathological one from hanging.
MAX_TEXT_FILE_BYTES = 16 * 2**20
# The most nodes a YAML document may expand to once its aliases are followed: a real file holds a few thousand,
# a "billion laughs" file holds billions.
MAX_YAML_NODES = 100_000
# What `--format json` writes for a figure without bound (strict JSON has no Infinity).
UNBOUNDED = "unbounded"


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


class _Terminated(BaseException):
    """A SIGTERM arrived while a file was written: unwinds the write so its temporary file is removed."""


def _new_file_mode(target: Path) -> int:
    """The mode the written file gets: the overwritten file's, else what `open()` would give under the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class _TermGuard:
    """While a file is written in the main thread, a SIGTERM raises `_Terminated` (so the temporary file is
    removed); once the write is over the previous handler is back and the signal is delivered to it."""

    def __init__(self) -> None:
        self.installed = False
        self.previous: Any = None
        self.received = False

    def __enter__(self) -> _TermGuard:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGTERM)
            if previous is not signal.SIG_IGN:  # an ignored SIGTERM stays ignored
                self.previous = signal.signal(signal.SIGTERM, self._handle)
                self.installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = True
        raise _Terminated()

    def __exit__(self, *exc_info: Any) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
        if self.received:
            signal.raise_signal(signal.SIGTERM)  # what would have happened without the guard


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` whole or not at all: a temporary file in the same folder, flushed to disk, renamed
    over the target. A write that fails (disk full, quota) is a UsageError naming the path, and the previous file
    is left as it was; the new file has the overwritten file's mode, or the umask's."""
    target = check_writable(path)
    folder = target.parent if str(target.parent) else Path(".")
    mode = _new_file_mode(target)
    with _TermGuard():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        except OSError as error:  # a read-only or full file system, no permission: the user's to fix
            raise UsageError(f"cannot write {target}: {error.strerror or error}", "pick another path") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())  # a quota or a full disk can first show here
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException as error:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(error, OSError):
                raise UsageError(
                    f"cannot write {target}: {error.strerror or error}",
                    "free some space or pick another path; the previous file is unchanged",
                ) from None
            raise
    return target


def to_json(data: Any) -> str:
    """The one JSON style of every `--format json`: indented, key order kept, trailing newline; strict JSON, so
    a figure without bound is the string "unbounded" (never `Infinity`, which strict parsers reject)."""
    return json.dumps(strict_json_values(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def strict_json_values(data: Any, where: str = "") -> Any:
    """`data` with +infinity said as "unbounded"; a NaN or -infinity (no figure flopcalc computes can be one) is
    refused with a ValueError naming its key, rather than written as JSON no strict parser reads."""
    if isinstance(data, float) and not math.isfinite(data):
        if data > 0:
            return UNBOUNDED
        raise ValueError(f"{where or 'the value'} is {data!r}, which JSON cannot hold")
    if isinstance(data, dict):
        return {key: strict_json_values(value, f"{where}.{key}" if where else str(key)) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json_values(value, f"{where}[{index}]") for index, value in enumerate(data)]
    return data


def check_size(path: Path, error: type[FlopcalcError], what: str, limit: int = MAX_TEXT_FILE_BYTES) -> None:
    """`path` is at most `limit` bytes; otherwise `error` names the file, its size and the limit."""
    try:
        size = path.stat().st_size
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror or problem}") from None
    if size > limit:
        raise error(
            f"{what} {path} is {size:,} bytes, more than the {_mib(limit)} flopcalc reads", "is it the right file?"
        )


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB" if size >= 2**20 else f"{size} bytes"


def read_text(path: Path, error: type[FlopcalcError], what: str, limit: int = MAX_TEXT_FILE_BYTES) -> str:
    """The text of `path`, size-checked before it is read; `error` naming `what` when it is unreadable."""
    check_size(path, error, what, limit)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(limit + 1)  # the file may have grown since it was measured
    except (OSError, UnicodeDecodeError) as problem:
        raise error(f"cannot read {what} {path}: {problem}") from None
    if len(text.encode("utf-8")) > limit:
        raise error(f"{what} {path} is more than the {_mib(limit)} flopcalc reads")
    return text


def read_json(path: Path, error: type[FlopcalcError], what: str, *, hint: str = "fix the JSON syntax") -> Any:
    """Parse the JSON file `path` (size-checked first); bad JSON raises `error` naming the file and the place."""
    text = read_text(path, error, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{what} {path} is not valid JSON: {problem}", hint) from None
    except RecursionError:
        raise error(f"{what} {path} is nested too deeply to be a real file", hint) from None


def yaml_problem(error: Exception) -> str:
    """One line for a YAML syntax error: what the parser found and where (`... at line 3, column 7`)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def read_yaml(path: Path, error: type[FlopcalcError], what: str, *, hint: str = "fix the YAML syntax") -> Any:
    """Parse the YAML file `path` (size-checked first); an unreadable file, bad syntax, a key given twice or an
    alias bomb raises `error` naming `what` and the place."""
    return parse_yaml(read_text(path, error, what), error, f"{path}", hint=hint)


def shipped_text(name: str) -> str:
    """The text of the data file `name` shipped inside the package (flopcalc/data/)."""
    return resources.files("flopcalc").joinpath(f"data/{name}").read_text(encoding="utf-8")


def read_yaml_or_shipped(path: Path | None, shipped: str, error: type[FlopcalcError], what: str) -> tuple[str, Any]:
    """A table the user may replace: the YAML file `path`, or the shipped data file `shipped` when None; with the
    name its errors should give."""
    if path is None:
        where = f"{shipped} (shipped)"
        return where, parse_yaml(shipped_text(shipped), error, where)
    return str(path), read_yaml(Path(path), error, what)


def parse_yaml(text: str, error: type[FlopcalcError], where: str, *, hint: str = "fix the YAML syntax") -> Any:
    """Parse YAML `text` read from `where` with `SafeYamlLoader`; every problem raises `error` in one line:
    `WHERE: not valid YAML: PROBLEM at line L, column C`."""
    import yaml

    if len(text) > MAX_TEXT_FILE_BYTES:
        raise error(
            f"{where}: more than the {_mib(MAX_TEXT_FILE_BYTES)} of YAML flopcalc reads",
            "is it the right file? real ones are far smaller",
        )
    try:
        return yaml.load(text, Loader=_loader_class())
    except yaml.YAMLError as problem:
        raise error(f"{where}: not valid YAML: {yaml_problem(problem)}", hint) from None
    except RecursionError:
        raise error(f"{where}: not valid YAML: nested too deeply to be a real file", hint) from None


_LOADER: Any = None


def _loader_class() -> Any:
    """The one YAML loader (built on first use: PyYAML's C parser when there is one)."""
    global _LOADER
    if _LOADER is None:
        _LOADER = _build_loader()
    return _LOADER


def _build_loader() -> Any:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class SafeYamlLoader(base):  # type: ignore[misc, valid-type]
        """Safe YAML that refuses a key given twice in one mapping (YAML would keep the last silently) and a
        document whose aliases expand past MAX_YAML_NODES nodes."""

        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            _check_expansion(node, yaml)
            return self.construct_document(node)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            _refuse_duplicate_keys(self, node, yaml)
            return super().construct_mapping(node, deep=deep)

    return SafeYamlLoader


def _refuse_duplicate_keys(loader: Any, node: Any, yaml: Any) -> None:
    seen: set = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` is overridden by design
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: the constructor says so itself
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)


def _check_expansion(root: Any, yaml: Any) -> None:
    """The node graph holds at most MAX_YAML_NODES nodes counted with every alias followed, and no cycle."""
    sizes: dict[int, int] = {}
    for node in _post_order(root, yaml):
        children = _children(node, yaml)
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"its aliases expand to more than {MAX_YAML_NODES:,} nodes (an alias bomb?)",
                node.start_mark,
            )


def _children(node: Any, yaml: Any) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _post_order(root: Any, yaml: Any) -> Iterator[Any]:
    """Each distinct node once, children before parents, without recursion; a node that contains itself is refused."""
    done: set[int] = set()
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            on_path.discard(id(node))
            done.add(id(node))
            yield node
            continue
        if id(node) in done:
            continue
        if id(node) in on_path:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to a node that contains it", node.start_mark
            )
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node, yaml) if id(child) not in done)
