"""One loaded model in eval mode, counted pass by pass and priced on the hardware: what a forward bound and a
generation bound share (the counting, the notes of every pass, the weights, what fits in memory)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..api import attention_window, count_traffic, example_inputs, loader_notes
from ..counting.report import unsupported_ops_note
from ..errors import UsageError
from ..loaders.base import LoadedModel
from ..spec import ModelSpec
from .bounds import PassBound, Pricer
from .hardware import Hardware
from .memory import max_batch_that_fits
from .parallel import ParallelServing
from .quantisation import QUANTIZATION_LAYOUTS, SPARSE_2_4_LAYOUT, STORAGE_DTYPES, Precisions, weights_bytes


class Session:
    """`spec`'s model as loaded (with its inputs at the first batch size), the batch sizes to bound, and what
    counting every pass gathered: the parameter shapes, notes, and the ops no formula covered."""

    def __init__(
        self,
        spec: ModelSpec,
        loaded: LoadedModel,
        example: Any,
        hardware: Hardware,
        precisions: Precisions,
        sizes: tuple[int, ...],
        sparse_peak: bool = False,
    ):
        if loaded.kind == "onnx":
            raise UsageError(
                "infer needs a torch model: an ONNX graph is counted from its shapes and moves no tensors",
                "export the model as a .pt2 or give its Python file",
            )
        self.spec, self.loaded, self.example = spec, loaded, example
        self.hardware, self.precisions, self.sizes = hardware, precisions, sizes
        self.model = loaded.module
        self.device = _device_of(self.model, example)
        _serving_mode(self.model)
        self.notes: list[str] = list(loader_notes(loaded, spec))
        self.attention_window, window_note = attention_window(loaded, spec)
        if window_note:
            self.notes.append(window_note)
        self.pricer: Pricer | None = None
        self.param_shapes: Mapping[str, tuple[int, ...]] = {}
        self.unsupported: dict[str, int] = {}
        # with spec.sparsity: the weights read as 2:4, stored compressed; sparse_peak needs every one to be
        self.sparse_peak = sparse_peak
        self.sparse_2_4: frozenset[str] = frozenset()
        self.parallel: ParallelServing | None = None  # several GPUs per replica, or replicas

    def count(self, inputs: Any, cache: Any = None) -> PassBound:
        """One forward counted and priced; its notes and unsupported ops join the session's."""
        first = self.pricer is None
        report, traffic = count_traffic(
            self.model,
            inputs,
            cache=cache,
            name=self.spec.source,
            causal_half=self.spec.causal_half,
            sparsity=self.spec.sparsity and first,
            attention_window=self.attention_window,
        )
        if first:
            if report.sparsity is not None:
                self._read_sparsity(report)
            self.param_shapes = traffic.param_shapes
            self.pricer = Pricer(self.hardware, self.precisions, traffic.param_shapes, self.sparse_2_4)
        self.notes.extend(note for note in report.notes if note not in self.notes)
        for op in report.unsupported_ops:
            self.unsupported[op] = max(self.unsupported.get(op, 0), report.unsupported_ops[op])
        return self.pricer.price(report, traffic)

    def _read_sparsity(self, report: Any) -> None:
        """The 2:4 weights (stored compressed), and --sparse-peak refused unless every weight multiplied is 2:4."""
        if self.sparse_peak and report.sparse_pattern != "2:4":
            other = next((w.name for w in report.sparsity if w.pattern != "2:4"), None)
            raise UsageError(
                f"--sparse-peak: {other or 'no weight'} is not 2:4; sparse tensor cores run 2:4 weights only",
                "prune every layer 2:4 along its input dimension, or drop --sparse-peak",
            )
        self.sparse_2_4 = frozenset(w.name for w in report.sparsity if w.pattern == "2:4" and w.layout == "strided")
        if self.sparse_2_4:
            if self.precisions.weights in QUANTIZATION_LAYOUTS:
                self.notes.append(
                    f"{len(self.sparse_2_4)} 2:4 weight(s) kept in the {self.precisions.weights} "
                    "layout: 2:4 compression of quantised weights is not modelled"
                )
            else:
                self.notes.append(
                    f"{SPARSE_2_4_LAYOUT}: {len(self.sparse_2_4)} weight(s) "
                    f"({', '.join(sorted(self.sparse_2_4)[:3])}{', ...' if len(self.sparse_2_4) > 3 else ''})"
                )

    def inputs(self, batch: int) -> Any:
        """The spec's inputs at `batch`: the loaded example at the first size, made anew at the others."""
        if batch == self.sizes[0]:
            return self.example
        return example_inputs(replace(self.spec, batch_size=batch), self.loaded, self.device)

    def final_notes(self) -> tuple[str, ...]:
        """The notes gathered while counting, and the ops no formula covered in any pass (calls in one pass)."""
        unsupported = unsupported_ops_note(self.unsupported)
        return tuple(self.notes) if unsupported is None else (*self.notes, unsupported)

    def model_fields(self) -> dict[str, Any]:
        """The InferResult fields about the model and the hardware: parameters, weights at every storage dtype."""
        weights = weights_bytes(
            self.param_shapes, self.precisions.weights, self.precisions.activations, self.sparse_2_4
        )
        by_dtype = {
            dtype: weights_bytes(self.param_shapes, dtype, self.precisions.activations, self.sparse_2_4)
            for dtype in STORAGE_DTYPES
        }
        if self.precisions.weights in QUANTIZATION_LAYOUTS:
            self.notes.append(
                QUANTIZATION_LAYOUTS[self.precisions.weights]
                + f"; vectors (norm weights, biases) stay {self.precisions.activations}"
            )
        return dict(
            model=self.spec.source,
            hardware=self.hardware,
            precisions=self.precisions,
            params=sum(math.prod(s) for s in self.param_shapes.values()),
            weights_bytes=weights,
            weights_bytes_by_dtype=by_dtype,
        )

    def max_batch(self, weights: float, per_sequence: float) -> int | None:
        """The largest batch that fits the GPU's memory; why not, as a note, when none or not known."""
        largest, note = max_batch_that_fits(self.hardware, weights, per_sequence)
        if note:
            self.notes.append(note)
        return largest


def _serving_mode(model: Any) -> None:
    """Dropout off: serving runs in eval mode."""
    try:
        model.eval()
    except (NotImplementedError, RuntimeError):  # an exported program keeps the mode it was exported in
        pass


def _device_of(model: Any, example: Any) -> str:
    """Where the model runs: its first tensor's device, else its inputs' (a model with no parameters)."""
    import torch
    from torch.utils._pytree import tree_leaves

    for tensor in [*model.parameters(), *model.buffers(), *tree_leaves(example)]:
        if isinstance(tensor, torch.Tensor):
            return str(tensor.device)
    return "cpu"
