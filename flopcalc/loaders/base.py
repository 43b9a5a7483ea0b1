"""What every loader returns: the model, its own example inputs (if any) and notes about how it was built; and
the JSON reading the config loaders share (one message for a file that is not JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, short_error


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module; an onnx.ModelProto when kind == "onnx"
    example_inputs: Any = None  # what the source supplies when no --input is given
    source: str = ""
    kind: str = ""  # "python" | "torchscript" | "export" | "onnx" | "huggingface" | "diffusion"
    notes: tuple[str, ...] = field(default_factory=tuple)
    example_notes: tuple[str, ...] = field(default_factory=tuple)  # hold only when example_inputs are used
    # notes about one example input each, by keyword name: they hold while --input does not replace that input
    input_notes: Mapping[str, str] = field(default_factory=dict)


def read_json(path: Path, fix: str) -> Any:
    """The values a JSON file holds; ModelLoadError naming the file, what is wrong and `fix` when it holds none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path} is not valid JSON: {short_error(error)}", fix) from error
