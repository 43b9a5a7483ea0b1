"""Every command in README.md and docs/*.md runs as written from a fresh copy of the checkout.

What runs: each line of a ```sh block (continuation lines joined), each `$ ` line of a ```console block, and
each ```python block that does not start with `# fragment:`. A line whose comment says `needs: gpu`,
`needs: cluster` or `needs: network` is skipped with that reason (a block whose opening comment line says so is
skipped whole); a comment saying `exits N` is the exit code expected instead of 0. Synopses go in ```text blocks. The
lines of one page run in order in one copy, so `make examples` or a recorded baseline serves the lines after it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
REASONS = {
    "gpu": "needs a CUDA GPU",
    "cluster": "needs several nodes (torchrun, Slurm)",
    "network": "needs the network (pip downloads)",
}
NEEDS = re.compile(r"#.*\bneeds: (\w+)")
EXITS = re.compile(r"#.*\bexits (\d+)")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    kind: str  # "sh" or "python"
    text: str
    needs: str | None
    expected_exit: int

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _logical_lines(body: str, first_line: int):
    """(line number, text) of each shell command, backslash continuations joined, comment-only lines dropped."""
    pending, start = "", first_line
    for offset, raw in enumerate(body.splitlines()):
        if not pending:
            start = first_line + offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            yield start, line


def doc_commands(pages=PAGES, root: Path = ROOT) -> list[DocCommand]:
    commands = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        name = str(page.relative_to(root))
        for block in FENCE.finditer(text):
            lang, body = block.group(1), block.group(2)
            first = text.count("\n", 0, block.start(2)) + 1
            opening = body.splitlines()[0] if body.strip() else ""
            whole = NEEDS.search(opening) if opening.startswith("#") else None  # a script's first line: all of it
            if lang == "sh":
                lines = list(_logical_lines(body, first))
            elif lang == "console":
                lines = [(n, line[2:]) for n, line in _logical_lines(body, first) if line.startswith("$ ")]
            elif lang == "python":
                if body.startswith("# fragment:"):
                    continue
                lines = [(first, body)]
            else:
                continue
            for number, line in lines:
                needs = whole or (NEEDS.search(line) if lang != "python" else None)
                exits = EXITS.search(line) if lang != "python" else None
                commands.append(
                    DocCommand(
                        name,
                        number,
                        "python" if lang == "python" else "sh",
                        line,
                        needs.group(1) if needs else None,
                        int(exits.group(1)) if exits else 0,
                    )
                )
    return commands


COMMANDS = doc_commands()


def test_the_docs_have_commands_and_every_skip_has_a_known_reason():
    assert len([c for c in COMMANDS if c.kind == "sh"]) > 60
    assert len([c for c in COMMANDS if c.kind == "python"]) >= 3
    unknown = {c.id: c.needs for c in COMMANDS if c.needs is not None and c.needs not in REASONS}
    assert unknown == {}


def test_no_runnable_block_holds_a_synopsis():
    """`flopcalc infer MODEL [--batch-size ...]` reads as a command but cannot run: it belongs in ```text."""
    synopses = [c.id for c in COMMANDS if c.kind == "sh" and re.search(r"\bflopcalc \w+ [A-Z]{3,}\b|\[--", c.text)]
    assert synopses == []


def test_the_extraction_joins_continuations_and_reads_the_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "x\n```sh\n# a comment\nflopcalc a \\\n    --b   # exits 1\nrun --gpu   # needs: gpu\n```\n"
        "```text\nflopcalc MODEL\n```\n```python\n# fragment: needs a model\nx\n```\n"
        "```console\n$ flopcalc gpus list\nid  name\n```\n"
    )
    found = doc_commands([page], root=tmp_path)
    assert [(c.line, c.text, c.needs, c.expected_exit) for c in found] == [
        (4, "flopcalc a      --b   # exits 1", None, 1),
        (6, "run --gpu   # needs: gpu", "gpu", 0),
        (16, "flopcalc gpus list", None, 0),
    ]


@pytest.fixture(scope="module")
def fresh_copies(tmp_path_factory):
    """One copy of the checkout per page (the files git would clone, uncommitted edits included), and an
    environment where `flopcalc` and `python` are this venv's and nothing is written to the user's home."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    home = tmp_path_factory.mktemp("home")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLOPCALC_", "GITHUB_"))}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        GITHUB_STEP_SUMMARY=str(home / "summary.md"),
        # make's targets use this venv, already installed: `make examples` runs, nothing is reinstalled
        VENV=str(VENV_BIN.parent),
    )
    copies = {}

    def copy_for(page: str) -> tuple[Path, dict]:
        if page not in copies:
            target = tmp_path_factory.mktemp("checkout")
            for name in filter(None, listed):
                source = ROOT / name
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                if source.is_symlink():  # flopcalc/gpu_specs is a link to gpu_specs/, as a clone has it
                    os.symlink(os.readlink(source), target / name)
                elif source.is_file():
                    shutil.copy2(source, target / name)
            stamp = VENV_BIN.parent / ".flopcalc-installed"
            if stamp.exists():  # the Makefile reinstalls when pyproject.toml is newer than the venv's stamp
                older = stamp.stat().st_mtime - 1
                os.utime(target / "pyproject.toml", (older, older))
            copies[page] = target
        return copies[page], env

    return copy_for


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_the_documented_command_runs(command: DocCommand, fresh_copies):
    if command.needs is not None:
        pytest.skip(f"{command.id}: {REASONS.get(command.needs, command.needs)}")
    folder, env = fresh_copies(command.page)
    if command.kind == "python":
        argv = [sys.executable, "-c", command.text]
    else:
        argv = ["bash", "-c", command.text]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == command.expected_exit, (
        f"{command.id}: {command.text}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
