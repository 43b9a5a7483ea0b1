"""What every loader returns: the model, its own example inputs (if any) and notes about how it was built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
