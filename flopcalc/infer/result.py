"""What `flopcalc infer` found, per batch size and per phase of a generation; `InferResult.to_dict()` is the
`--format json` contract (docs/infer.md, tests/golden/infer_decoder.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .bounds import LayerBound, whole, whole_bytes
from .hardware import Hardware
from .quantisation import QUANTIZATION_LAYOUTS, Precisions

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BatchBound:
    """Bounds at one batch size. Without generation, latency is one forward and throughput examples/s; with it,
    latency is a whole request (prefill + G decode steps) and throughput its generated tokens/s."""

    batch_size: int
    latency_s: float
    throughput_per_s: float
    bound: str
    memory_bytes: float
    fits: bool | None
    ttft_s: float | None = None
    time_per_token_s: float | None = None
    tokens_per_s: float | None = None
    kv_cache_bytes: float | None = None
    prefill_bound: str | None = None
    decode_bound: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "latency_s": self.latency_s,
            "throughput_per_s": self.throughput_per_s,
            "bound": self.bound,
            "memory_bytes": whole_bytes(self.memory_bytes),
            "fits": self.fits,
            "ttft_s": self.ttft_s,
            "time_per_token_s": self.time_per_token_s,
            "tokens_per_s_per_sequence": None if self.time_per_token_s is None else 1 / self.time_per_token_s,
            "tokens_per_s": self.tokens_per_s,
            "kv_cache_bytes": whole_bytes(self.kv_cache_bytes),
            "prefill_bound": self.prefill_bound,
            "decode_bound": self.decode_bound,
        }


@dataclass(frozen=True)
class Prefill:
    batch_size: int
    tokens: int
    flops: float
    bytes: float
    time_s: float
    bound: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "tokens": self.tokens,
            "flops": whole(self.flops),
            "bytes": whole_bytes(self.bytes),
            "time_s": self.time_s,
            "bound": self.bound,
        }


@dataclass(frozen=True)
class Decode:
    """G decode steps at contexts P .. P+G-1 for a batch; FLOPs per token are per generated token."""

    batch_size: int
    tokens: int
    flops_per_token_at_context: tuple[tuple[int, float], ...]
    bytes_per_step_at_context: tuple[tuple[int, float], ...]
    flops_total: float
    time_total_s: float
    bound: str

    @property
    def time_per_token_s(self) -> float:
        """Mean time of one step (each sequence of the batch gets one token per step)."""
        return self.time_total_s / self.tokens

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second over the whole batch."""
        return self.batch_size / self.time_per_token_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "tokens": self.tokens,
            "flops_per_token_at_context": [
                {"context": c, "flops": whole(f)} for c, f in self.flops_per_token_at_context
            ],
            "bytes_per_step_at_context": [
                {"context": c, "bytes": whole_bytes(b)} for c, b in self.bytes_per_step_at_context
            ],
            "flops_total": whole(self.flops_total),
            "time_total_s": self.time_total_s,
            "time_per_token_s": self.time_per_token_s,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_sequence": 1 / self.time_per_token_s,
            "bound": self.bound,
        }


@dataclass(frozen=True)
class InferResult:
    """What `flopcalc infer` found; `to_dict()` is the JSON contract (docs/infer.md)."""

    model: str
    hardware: Hardware
    precisions: Precisions
    params: int
    weights_bytes: int
    weights_bytes_by_dtype: Mapping[str, int]
    layers_pass: str
    layers: tuple[LayerBound, ...]
    batches: tuple[BatchBound, ...]
    compute_bound_from_batch: int | None
    max_batch_that_fits: int | None
    prefill: Prefill | None = None
    decode: Decode | None = None
    kv_cache_bytes_per_token: float | None = None
    kv_cache_bytes: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    parallel: Mapping[str, Any] | None = None  # serving on several GPUs (ParallelServing.to_dict())

    @property
    def quantization(self) -> str | None:
        return QUANTIZATION_LAYOUTS.get(self.precisions.weights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "gpu": self.hardware.to_dict(),
            "time_model": self.hardware.time_model,
            "precision": self.precisions.activations,
            "compute_precision": self.precisions.compute,
            "weight_dtype": self.precisions.weights,
            "kv_dtype": self.precisions.kv_cache,
            "quantization": self.quantization,
            "params": self.params,
            "weights_bytes": self.weights_bytes,
            "weights_bytes_by_dtype": dict(self.weights_bytes_by_dtype),
            "layers_pass": self.layers_pass,
            "layers": [layer.to_dict() for layer in self.layers],
            "batches": [batch.to_dict() for batch in self.batches],
            "compute_bound_from_batch": self.compute_bound_from_batch,
            "prefill": None if self.prefill is None else self.prefill.to_dict(),
            "decode": None if self.decode is None else self.decode.to_dict(),
            "kv_cache_bytes_per_token": whole_bytes(self.kv_cache_bytes_per_token),
            "kv_cache_bytes": whole_bytes(self.kv_cache_bytes),
            "max_batch_that_fits": self.max_batch_that_fits,
            "notes": list(self.notes),
            **({} if self.parallel is None else {"parallel": dict(self.parallel)}),
        }
