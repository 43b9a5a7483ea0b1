"""Model sources: a MODEL string -> an nn.Module (+ example inputs), and `--input` specs -> tensors.

Which loader handles a source is decided here, by its form:
`file.py:callable` or `file.py` (a Python factory), `.pt`/`.pth`/`.ts` (TorchScript), `.pt2` (torch.export).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ModelLoadError
from .inputs import InputSpec, make_inputs, parse_input_spec

__all__ = ["LoadedModel", "load_model", "make_inputs", "parse_input_spec", "InputSpec"]

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts")
EXPORT_SUFFIXES = (".pt2",)


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module
    example_inputs: Any = None  # what the source supplies when no --input is given
    source: str = ""
    kind: str = ""  # "python" | "torchscript" | "export"
    notes: tuple[str, ...] = field(default_factory=tuple)


def split_python_source(spec: str) -> tuple[str, str | None] | None:
    """`models/net.py:build` -> ("models/net.py", "build"); `net.py` -> ("net.py", None); else None."""
    path, sep, attribute = spec.rpartition(":")
    if sep and path.endswith(".py"):
        return path, attribute or None
    if spec.endswith(".py"):
        return spec, None
    return None


def load_model(spec: str, *, kwargs: Mapping[str, Any] | None = None, device: str = "meta") -> LoadedModel:
    """Load the model a MODEL string names, built or moved onto `device`."""
    python = split_python_source(spec)
    if python is not None:
        from .python_file import load_python_model

        return load_python_model(python[0], python[1], kwargs=kwargs or {}, device=device, source=spec)
    path = Path(spec)
    if kwargs:
        raise ModelLoadError(f"--kwargs applies to Python model files, not to {spec}")
    suffix = path.suffix.lower()
    if suffix in TORCHSCRIPT_SUFFIXES:
        from .saved import load_torchscript

        return load_torchscript(path, device=device)
    if suffix in EXPORT_SUFFIXES:
        from .saved import load_exported

        return load_exported(path, device=device)
    raise ModelLoadError(
        f"cannot tell what kind of model {spec!r} is",
        "give a Python file (file.py:callable), a TorchScript file (.pt/.pth/.ts) or a torch.export file (.pt2)",
    )
