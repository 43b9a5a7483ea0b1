"""`flopcalc infer`: what serving a model costs on a GPU, as lower bounds from the real graph.

For any model: the forward's FLOPs and the bytes each layer moves (counting/traffic.py), priced at the serving
precisions, give each layer a roofline bound, time >= max(FLOPs / peak, bytes / bandwidth); the model's bound
is the sum over its layers, per batch size. For a causal language model (`--prompt P --generate G`): the
prefill over P tokens, decode steps counted from the real graph with a KV cache of c entries (a forward of one
token; attention and the cache read grow with c), the KV cache's size from the model's own cache tensors, and
what fits in the GPU's memory.

Every figure is a lower bound: each layer at 100% of the dense peak and of the memory bandwidth, nothing fused
across layers, no kernel launch overhead (docs/infer.md). The library never prints; `InferResult.to_dict()`
is the `--format json` contract.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from .api import count_traffic, example_inputs, load, loader_notes
from .calibration import choose_throughput
from .catalog import load_catalog
from .counting.report import CountReport
from .counting.traffic import LayerTraffic, TrafficReport, cache_tensors
from .errors import CatalogError, ModelBuildError, ModelRunError, UsageError, short_error
from .spec import ModelSpec
from .units import format_si, normalize_precision

SCHEMA_VERSION = 1

# Bytes per element of each precision a tensor can be stored or computed in (int4: two values per byte).
BYTES_PER_ELEMENT: Mapping[str, float] = {
    "fp64": 8, "fp64_tensor": 8, "fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "fp4": 0.5,
    "int4": 0.5,
}
# What --weight-dtype and --kv-dtype take; the sizes every model-size table shows.
STORAGE_DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")
INT4_GROUP = 128
# The quantised weight layouts whose scales are counted (weight matrices only: vectors stay at --precision).
QUANTIZATION_LAYOUTS: Mapping[str, str] = {
    "fp8": "fp8 weights: 1 byte each + one fp32 scale per matrix",
    "int8": "int8 weights: 1 byte each + one fp16 scale per output channel (row)",
    "int4": f"int4 weights: 4 bits each + per group of {INT4_GROUP} weights of a row one fp16 scale and one 4-bit "
            "zero point (the GPTQ/AWQ layout)",
}
LOWER_BOUNDS = ("time bounds are lower bounds: each layer at 100% of the dense peak and of the memory bandwidth, "
                "no kernel launch overhead, nothing fused or overlapped across layers")
# The largest batch searched for where a pass turns compute-bound.
_LARGEST_BATCH = 1 << 24


# --- precisions and bytes -------------------------------------------------------------------------------


def storage_dtype(text: str, flag: str) -> str:
    """A --weight-dtype / --kv-dtype value: fp32, bf16, fp16, fp8, int8 or int4."""
    key = str(text).strip().lower()
    canonical = key if key == "int4" else _precision_or_none(key)
    if canonical not in STORAGE_DTYPES:
        raise UsageError(f"{flag} {text!r} is not a storage format", f"use one of {', '.join(STORAGE_DTYPES)}")
    return canonical


def _precision_or_none(text: str) -> str | None:
    try:
        return normalize_precision(text)
    except UsageError:
        return None


def parameter_bytes(shape: Sequence[int], dtype: str, vector_dtype: str) -> float:
    """Bytes of one parameter stored as `dtype`. A quantised format (fp8, int8, int4) applies to matrices (2 or
    more dimensions; rows = the first dimension, a row = the rest) with its scales (QUANTIZATION_LAYOUTS);
    vectors (norm weights, biases) stay in `vector_dtype`."""
    numel = math.prod(shape)
    if dtype not in QUANTIZATION_LAYOUTS:
        return numel * BYTES_PER_ELEMENT[dtype]
    if len(shape) < 2:
        return numel * BYTES_PER_ELEMENT[vector_dtype]
    rows = shape[0]
    row = numel // rows if rows else 0
    if dtype == "fp8":
        return numel + 4
    if dtype == "int8":
        return numel + 2 * rows
    return numel / 2 + rows * math.ceil(row / INT4_GROUP) * 2.5


def weights_bytes(param_shapes: Mapping[str, Sequence[int]], dtype: str, vector_dtype: str) -> int:
    """All parameters (tied ones once) stored as `dtype`, rounded up to a whole byte."""
    return math.ceil(sum(parameter_bytes(shape, dtype, vector_dtype) for shape in param_shapes.values()))


@dataclass(frozen=True)
class Precisions:
    """What each kind of tensor is stored in, and the precision whose peak prices the FLOPs."""

    activations: str  # --precision
    compute: str  # --compute-precision (default: --precision)
    weights: str  # --weight-dtype (default: --precision)
    kv_cache: str  # --kv-dtype (default: --precision)


# --- the GPU ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hardware:
    """The peak that prices FLOPs, the bandwidth that prices bytes, the memory that must hold it all."""

    gpu: str
    precision: str
    peak_flops: float  # FLOP/s (ops/s for int8), dense
    peak_origin: str
    bandwidth: float  # bytes/s
    memory_bytes: float | None  # None when the catalogue has no memory size

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.gpu,
            "precision": self.precision,
            "peak_tflops": self.peak_flops / 1e12,
            "peak_origin": self.peak_origin,
            "bandwidth_gbps": self.bandwidth / 1e9,
            "memory_gb": None if self.memory_bytes is None else self.memory_bytes / 2**30,  # GiB, as the catalogue
        }


def resolve_hardware(
    gpu: str | None,
    precision: str | None = None,
    compute_precision: str | None = None,
    *,
    calibration: str | None = None,
    catalogs: Sequence[str] = (),
) -> tuple[Hardware, str]:
    """The GPU's peak at the compute precision (datasheet, or measured with a calibration), its bandwidth and
    memory from the catalogue; and the serving precision (--precision, default the GPU's fastest 16-bit one)."""
    base = choose_throughput(gpu=gpu, precision=precision, calibration=calibration, catalogs=catalogs)
    serving = base.throughput.precision
    compute = normalize_precision(compute_precision) if compute_precision else serving
    chosen = base if compute == serving else choose_throughput(
        gpu=gpu, precision=compute, calibration=calibration, catalogs=catalogs)
    name = gpu or chosen.throughput.gpu
    try:
        entry = load_catalog(tuple(catalogs)).resolve(name)
    except CatalogError as error:
        raise CatalogError(f"{name} is not in the GPU catalogue, so it has no memory bandwidth ({error.message})",
                           "pass --gpu with a catalogue id, or add the GPU with --catalog FILE") from None
    if entry.memory_bandwidth_gbps is None:
        raise CatalogError(f"{entry.id} has no memory bandwidth in the catalogue",
                           "add memory_bandwidth_gbps (GB/s) to its entry with --catalog FILE (docs/catalogue.md)")
    memory = entry.memory_bytes
    throughput = chosen.throughput
    hardware = Hardware(entry.id, throughput.precision, throughput.peak_flops, throughput.origin,
                        entry.memory_bandwidth_gbps * 1e9, memory)
    return hardware, serving


# --- one layer, one pass ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerBound:
    """One layer (a module's own ops) of one pass on the hardware: FLOPs, bytes by kind (weights: its parameters
    at the weight dtype and its buffers at theirs), and its roofline bound."""

    name: str
    type: str
    flops: float
    weight_bytes: float
    activation_bytes: float
    kv_cache_bytes: float
    other_bytes: float
    compute_s: float  # FLOPs / peak
    memory_s: float  # bytes / bandwidth

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.activation_bytes + self.kv_cache_bytes + self.other_bytes

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "compute" if self.compute_s >= self.memory_s else "memory"

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte moved (None for a layer that moves nothing)."""
        return self.flops / self.bytes if self.bytes else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "flops": _whole(self.flops),
            "bytes": _bytes(self.bytes),
            "bytes_by_kind": {"weights": _bytes(self.weight_bytes), "activations": _bytes(self.activation_bytes),
                              "kv_cache": _bytes(self.kv_cache_bytes), "other": _bytes(self.other_bytes)},
            "intensity": self.intensity,
            "bound": self.bound,
            "time_s": self.time_s,
        }


@dataclass(frozen=True)
class PassBound:
    """A forward pass as the sum of its layers' bounds."""

    layers: tuple[LayerBound, ...]

    @property
    def flops(self) -> float:
        return sum(layer.flops for layer in self.layers)

    @property
    def bytes(self) -> float:
        return sum(layer.bytes for layer in self.layers)

    @property
    def weight_bytes(self) -> float:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def time_s(self) -> float:
        return sum(layer.time_s for layer in self.layers)

    @property
    def compute_bound_s(self) -> float:
        return sum(layer.time_s for layer in self.layers if layer.bound == "compute")

    @property
    def bound(self) -> str:
        return _bound(self.compute_bound_s, self.time_s - self.compute_bound_s)

    @property
    def activation_working_set(self) -> float:
        """The largest activations one layer reads and writes: what must be resident at once, at the least."""
        return max((layer.activation_bytes for layer in self.layers), default=0.0)

    def scaled(self, factor: float) -> "PassBound":
        """The same pass with `factor` times the batch: FLOPs and every byte but the weights' grow with it."""
        return PassBound(tuple(_scale_layer(layer, factor) for layer in self.layers))


def _bound(compute_s: float, memory_s: float) -> str:
    """A pass is compute-bound when its compute-bound layers take at least half of its time."""
    return "compute" if compute_s >= memory_s else "memory"


def _scale_layer(layer: LayerBound, factor: float) -> LayerBound:
    per_flop = layer.compute_s / layer.flops if layer.flops else 0.0
    per_byte = layer.memory_s / layer.bytes if layer.bytes else 0.0
    grown = replace(layer, flops=layer.flops * factor, activation_bytes=layer.activation_bytes * factor,
                    kv_cache_bytes=layer.kv_cache_bytes * factor, other_bytes=layer.other_bytes * factor)
    return replace(grown, compute_s=grown.flops * per_flop, memory_s=grown.bytes * per_byte)


def _whole(value: float) -> int | float:
    """A count as an int when it is one (a per-token figure of a batch may not be)."""
    rounded = round(value)
    return rounded if abs(value - rounded) < 1e-6 * max(1.0, abs(value)) else value


def _bytes(value: float | None) -> int | None:
    """Bytes in whole bytes, rounded up (int4 weights and their half-byte zero points pack into bytes)."""
    return None if value is None else math.ceil(_whole(value))


def own_flops(report: CountReport) -> dict[str, int]:
    """Each module's own forward FLOPs (its inclusive count less its children's), by module path."""
    own = {layer.name: layer.forward for layer in report.layers}
    for layer in report.layers:
        if layer.name:
            parent = layer.name.rpartition(".")[0]
            if parent in own:
                own[parent] -= layer.forward
    return own


class _Pricer:
    """Prices a counted pass on the hardware at the serving precisions."""

    def __init__(self, hardware: Hardware, precisions: Precisions, param_shapes: Mapping[str, Sequence[int]]):
        self.hardware = hardware
        self.activation = BYTES_PER_ELEMENT[precisions.activations]
        self.kv = BYTES_PER_ELEMENT[precisions.kv_cache]
        self.per_weight = {
            name: (parameter_bytes(shape, precisions.weights, precisions.activations) / math.prod(shape)
                   if math.prod(shape) else 0.0)
            for name, shape in param_shapes.items()
        }

    def layer(self, traffic: LayerTraffic, flops: float, type_name: str) -> LayerBound:
        weights = sum(elements * self.per_weight[name] for name, elements in traffic.weights.items())
        weights += traffic.buffer_bytes
        activations = (traffic.activations_read + traffic.activations_written) * self.activation
        kv = (traffic.cache_read + traffic.cache_written) * self.kv
        moved = weights + activations + kv + traffic.other_bytes
        return LayerBound(traffic.name, type_name, flops, weights, activations, kv, float(traffic.other_bytes),
                          flops / self.hardware.peak_flops, moved / self.hardware.bandwidth)

    def price(self, report: CountReport, traffic: TrafficReport) -> PassBound:
        """Layers in the order they first ran; a layer that computes nothing and moves nothing is left out."""
        flops = own_flops(report)
        types = {layer.name: layer.type for layer in report.layers}
        layers = (self.layer(t, flops.get(t.name, 0), types.get(t.name, "")) for t in traffic.layers)
        return PassBound(tuple(layer for layer in layers if layer.flops or layer.bytes))


# --- results ---------------------------------------------------------------------------------------------


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
            "memory_bytes": _bytes(self.memory_bytes),
            "fits": self.fits,
            "ttft_s": self.ttft_s,
            "time_per_token_s": self.time_per_token_s,
            "tokens_per_s_per_sequence": None if self.time_per_token_s is None else 1 / self.time_per_token_s,
            "tokens_per_s": self.tokens_per_s,
            "kv_cache_bytes": _bytes(self.kv_cache_bytes),
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
        return {"batch_size": self.batch_size, "tokens": self.tokens, "flops": _whole(self.flops),
                "bytes": _bytes(self.bytes), "time_s": self.time_s, "bound": self.bound}


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
            "flops_per_token_at_context": [{"context": c, "flops": _whole(f)}
                                           for c, f in self.flops_per_token_at_context],
            "bytes_per_step_at_context": [{"context": c, "bytes": _bytes(b)}
                                          for c, b in self.bytes_per_step_at_context],
            "flops_total": _whole(self.flops_total),
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

    @property
    def quantization(self) -> str | None:
        return QUANTIZATION_LAYOUTS.get(self.precisions.weights)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "gpu": self.hardware.to_dict(),
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
            "kv_cache_bytes_per_token": _bytes(self.kv_cache_bytes_per_token),
            "kv_cache_bytes": _bytes(self.kv_cache_bytes),
            "max_batch_that_fits": self.max_batch_that_fits,
            "notes": list(self.notes),
        }


# --- the command's library function --------------------------------------------------------------------------


def parse_batch_sizes(text: str | Iterable[int]) -> tuple[int, ...]:
    """`1,8,64` -> (1, 8, 64): whole numbers >= 1, sorted, each once."""
    items = [part.strip() for part in text.split(",")] if isinstance(text, str) else [str(v) for v in text]
    if not items or any(not re.fullmatch(r"\d+", item) for item in items):
        raise UsageError(f"--batch-size {text!r} is not a list of whole numbers", "write e.g. --batch-size 1,8,64")
    sizes = sorted({int(item) for item in items})
    if sizes[0] < 1:
        raise UsageError(f"--batch-size {text!r}: a batch size must be at least 1", "write e.g. --batch-size 1,8,64")
    return tuple(sizes)


def infer(
    spec: ModelSpec,
    *,
    gpu: str | None = None,
    batch_sizes: str | Iterable[int] = (1,),
    precision: str | None = None,
    compute_precision: str | None = None,
    weight_dtype: str | None = None,
    kv_dtype: str | None = None,
    prompt: int | None = None,
    generate: int | None = None,
    calibration: str | None = None,
    catalogs: Sequence[str] = (),
) -> InferResult:
    """Serving bounds of `spec`'s model on `gpu`, at each batch size; with `prompt` and `generate`, of generating
    G tokens after a P-token prompt (a causal language model)."""
    sizes = parse_batch_sizes(batch_sizes)
    generation = _generation_lengths(spec, prompt, generate)
    if spec.batch_size is not None:
        raise UsageError("give batch sizes with batch_sizes (--batch-size 1,8,64), not in the ModelSpec")
    hardware, serving = resolve_hardware(gpu, precision, compute_precision, calibration=calibration, catalogs=catalogs)
    if serving not in BYTES_PER_ELEMENT:
        raise UsageError(f"--precision {serving} has no storage size", f"use one of {', '.join(STORAGE_DTYPES)}")
    precisions = Precisions(
        activations=serving,
        compute=hardware.precision,
        weights=storage_dtype(weight_dtype, "--weight-dtype") if weight_dtype else _stored(serving),
        kv_cache=storage_dtype(kv_dtype, "--kv-dtype") if kv_dtype else _stored(serving),
    )
    try:
        return _Analysis(spec, spec.device or "meta", hardware, precisions, sizes, generation).run()
    except (ModelBuildError, ModelRunError) as error:
        if spec.device:
            raise
        fallback = f"the model could not run on the meta device ({error.message}); counted on cpu"
    return _Analysis(spec, "cpu", hardware, precisions, sizes, generation, fallback).run()


def _stored(precision: str) -> str:
    """How a serving precision is stored: tf32 lives in fp32 words; the others as they are."""
    return "fp32" if precision == "tf32" else precision


def _generation_lengths(spec: ModelSpec, prompt: int | None, generate: int | None) -> tuple[int, int] | None:
    if prompt is None and generate is None:
        return None
    if prompt is None or generate is None:
        raise UsageError("--prompt and --generate go together", "give both, e.g. --prompt 512 --generate 128")
    for flag, value in (("--prompt", prompt), ("--generate", generate)):
        if value < 1:
            raise UsageError(f"{flag} {value} must be at least 1 token")
    if spec.inputs or spec.seq_len is not None:
        raise UsageError("--prompt sets the tokens of a generation", "drop --input and --seq-len")
    return prompt, generate


class _Analysis:
    """One model loaded on one device, counted at every batch size (and context) the result needs."""

    def __init__(self, spec: ModelSpec, device: str, hardware: Hardware, precisions: Precisions,
                 sizes: tuple[int, ...], generation: tuple[int, int] | None, fallback: str | None = None):
        self.spec, self.device, self.hardware, self.precisions, self.sizes = spec, device, hardware, precisions, sizes
        self.generation = generation
        self.notes: list[str] = [LOWER_BOUNDS] + ([fallback] if fallback else [])
        # a generation makes its own token ids: load with a prompt's worth, so a model needs no example inputs
        prompt_ids = () if generation is None else (f"{sizes[0]}x{generation[0]}:int64",)
        self.loaded, self.example = load(replace(spec, batch_size=sizes[0], inputs=prompt_ids or spec.inputs), device)
        if self.loaded.kind == "onnx":
            raise UsageError("infer needs a torch model: an ONNX graph is counted from its shapes and moves no tensors",
                             "export the model as a .pt2 or give its Python file")
        self.model = self.loaded.module
        try:
            self.model.eval()  # dropout off: serving runs in eval mode
        except (NotImplementedError, RuntimeError):  # an exported program keeps the mode it was exported in
            pass
        self.notes.extend(loader_notes(self.loaded, replace(spec, inputs=prompt_ids or spec.inputs)))
        self.pricer: _Pricer | None = None
        self.param_shapes: Mapping[str, tuple[int, ...]] = {}
        self.unsupported: dict[str, int] = {}

    # counting -------------------------------------------------------------------------------------------
    def _count(self, inputs: Any, cache: Any = None) -> PassBound:
        report, traffic = count_traffic(self.model, inputs, cache=cache, name=self.spec.source,
                                        causal_half=self.spec.causal_half)
        if self.pricer is None:
            self.param_shapes = traffic.param_shapes
            self.pricer = _Pricer(self.hardware, self.precisions, traffic.param_shapes)
        self.notes.extend(note for note in report.notes if note not in self.notes)
        for op in report.unsupported_ops:
            self.unsupported[op] = max(self.unsupported.get(op, 0), report.unsupported_ops[op])
        return self.pricer.price(report, traffic)

    def _final_notes(self) -> tuple[str, ...]:
        """The notes gathered while counting, and the ops no formula covered in any pass (calls in one pass)."""
        if not self.unsupported:
            return tuple(self.notes)
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(self.unsupported.items()))
        return (*self.notes, f"ops without a FLOP formula (their FLOPs are not counted): {listed}")

    def _inputs(self, batch: int) -> Any:
        if batch == self.sizes[0]:
            return self.example
        return example_inputs(replace(self.spec, batch_size=batch), self.loaded, self.device)

    # the result --------------------------------------------------------------------------------------------
    def run(self) -> InferResult:
        if self.generation is None:
            passes = {batch: self._count(self._inputs(batch)) for batch in self.sizes}
            return self._plain(passes)
        return self._generation(*self.generation)

    def _common(self) -> dict[str, Any]:
        weights = weights_bytes(self.param_shapes, self.precisions.weights, self.precisions.activations)
        by_dtype = {dtype: weights_bytes(self.param_shapes, dtype, self.precisions.activations)
                    for dtype in STORAGE_DTYPES}
        if self.precisions.weights in QUANTIZATION_LAYOUTS:
            self.notes.append(QUANTIZATION_LAYOUTS[self.precisions.weights]
                              + f"; vectors (norm weights, biases) stay {self.precisions.activations}")
        return dict(model=self.spec.source, hardware=self.hardware, precisions=self.precisions,
                    params=sum(math.prod(s) for s in self.param_shapes.values()), weights_bytes=weights,
                    weights_bytes_by_dtype=by_dtype)

    def _fits(self, memory: float) -> bool | None:
        return None if self.hardware.memory_bytes is None else memory <= self.hardware.memory_bytes

    def _max_batch(self, weights: float, per_sequence: float) -> int | None:
        """The largest batch whose weights + per-sequence memory (KV cache, activations) fit the GPU's memory."""
        if self.hardware.memory_bytes is None:
            self.notes.append(f"{self.hardware.gpu} has no memory size in the catalogue: what fits is not known")
            return None
        room = self.hardware.memory_bytes - weights
        if room < per_sequence:
            if room < 0:
                self.notes.append(f"the weights alone ({format_si(weights, 'B')}) exceed the memory of "
                                  f"{self.hardware.gpu} ({format_si(self.hardware.memory_bytes, 'B')})")
            return 0
        return int(room // per_sequence) if per_sequence > 0 else None

    def _plain(self, passes: Mapping[int, PassBound]) -> InferResult:
        common = self._common()
        weights = common["weights_bytes"]
        batches = []
        for batch, bound in passes.items():
            if not bound.time_s:
                raise ModelRunError(f"{self.spec.source} computes nothing and moves no tensor: nothing to bound")
            memory = weights + bound.activation_working_set
            batches.append(BatchBound(batch, bound.time_s, batch / bound.time_s, bound.bound, memory,
                                      self._fits(memory)))
        first = passes[self.sizes[0]]
        per_example = first.activation_working_set / self.sizes[0]
        return InferResult(
            **common,
            layers_pass=f"forward, batch {self.sizes[0]}",
            layers=first.layers,
            batches=tuple(batches),
            compute_bound_from_batch=_compute_bound_from(first, self.sizes[0]),
            max_batch_that_fits=self._max_batch(weights, per_example),
            notes=self._final_notes(),
        )

    # generation -------------------------------------------------------------------------------------------
    def _generation(self, prompt: int, generate: int) -> InferResult:
        keyword = _cache_keyword(self.model, self.spec.source)
        last = prompt + generate - 1
        per_batch = {}
        kv_slope = kv_fixed = None
        for batch in self.sizes:
            ids = _token_ids(batch, prompt, self.device)
            cache = _new_cache(self.model)
            inputs = {"input_ids": ids, "use_cache": True, **({keyword: cache} if cache is not None else {})}
            prefill = self._count(inputs, cache)
            cache = cache if cache is not None else self._cache_after_prefill(keyword, batch, prompt)
            before = _elements(cache_tensors(cache))
            first = self._decode(keyword, batch, cache)
            if kv_slope is None:
                kv_slope, kv_fixed = self._cache_growth(keyword, batch, prompt, before, cache)
            final = first if last == prompt else self._decode(
                keyword, batch, self._cache_after_prefill(keyword, batch, last))
            per_batch[batch] = (prefill, first, final)
        return self._generation_result(prompt, generate, per_batch, kv_slope, kv_fixed)

    def _cache_growth(self, keyword: str, batch: int, prompt: int, before: int, cache: Any) -> tuple[float, float]:
        """Cache elements per sequence: added per token of context, and held whatever the context (a recurrent
        state), from the cache a decode step grew in place, or else from one filled with one token more."""
        after = _elements(cache_tensors(cache))
        if after == before:  # an immutable cache (tuples): the step returned a new one
            after = _elements(cache_tensors(self._cache_after_prefill(keyword, batch, prompt + 1)))
        slope = (after - before) / batch
        if slope <= 0:
            raise UsageError(f"{self.spec.source}: its KV cache does not grow with the context", _NOT_CAUSAL_HINT)
        return slope, before / batch - slope * prompt

    def _cache_after_prefill(self, keyword: str, batch: int, context: int) -> Any:
        """A KV cache of `context` entries, made by an uncounted forward over that many tokens."""
        import torch

        cache = _new_cache(self.model)
        inputs = {"input_ids": _token_ids(batch, context, self.device), "use_cache": True,
                  **({keyword: cache} if cache is not None else {})}
        try:
            with torch.no_grad():
                output = self.model(**inputs)
        except (Exception, SystemExit) as error:
            raise ModelRunError(f"{self.spec.source}: a forward over {context} tokens to fill the KV cache failed: "
                                f"{short_error(error)}") from error
        cache = cache if cache is not None else _returned_cache(output, keyword)
        if not cache_tensors(cache):
            raise UsageError(f"{self.spec.source} returned no KV cache ({keyword}) with use_cache=True",
                             _NOT_CAUSAL_HINT)
        return cache

    def _decode(self, keyword: str, batch: int, cache: Any) -> PassBound:
        inputs = {"input_ids": _token_ids(batch, 1, self.device), keyword: cache, "use_cache": True}
        return self._count(inputs, cache)

    def _generation_result(self, prompt: int, generate: int, per_batch: Mapping[int, tuple[PassBound, ...]],
                           kv_slope: float, kv_fixed: float) -> InferResult:
        common = self._common()
        weights = common["weights_bytes"]
        kv_per_element = BYTES_PER_ELEMENT[self.precisions.kv_cache]
        kv_per_sequence = (kv_fixed + kv_slope * (prompt + generate)) * kv_per_element
        last = prompt + generate - 1
        batches, first_decode, first_prefill = [], None, None
        for batch, (prefill, first, final) in per_batch.items():
            compute_s, memory_s = _steps_time(first, final, generate)
            decode = Decode(
                batch, generate,
                flops_per_token_at_context=tuple(
                    sorted({prompt: first.flops / batch, last: final.flops / batch}.items())),
                bytes_per_step_at_context=tuple(sorted({prompt: first.bytes, last: final.bytes}.items())),
                flops_total=generate * (first.flops + final.flops) / 2,  # linear in the context
                time_total_s=compute_s + memory_s, bound=_bound(compute_s, memory_s),
            )
            memory = weights + batch * kv_per_sequence + prefill.activation_working_set
            latency = prefill.time_s + decode.time_total_s
            batches.append(BatchBound(
                batch, latency, batch * generate / latency,
                _bound(prefill.compute_bound_s + compute_s, latency - prefill.compute_bound_s - compute_s),
                memory, self._fits(memory), ttft_s=prefill.time_s, time_per_token_s=decode.time_per_token_s,
                tokens_per_s=decode.tokens_per_s, kv_cache_bytes=batch * kv_per_sequence,
                prefill_bound=prefill.bound, decode_bound=decode.bound,
            ))
            if first_decode is None:
                first_decode, first_prefill = decode, Prefill(batch, prompt, prefill.flops, prefill.bytes,
                                                              prefill.time_s, prefill.bound)
        batch0 = self.sizes[0]
        prefill0, first0, final0 = per_batch[batch0]
        mean_step = _midpoint(first0, final0)
        self.notes.append("prefill counts logits at every prompt position, as `flopcalc count` does (generate() "
                          "needs only the last)")
        if self.precisions.kv_cache in QUANTIZATION_LAYOUTS:
            self.notes.append(f"KV cache in {self.precisions.kv_cache} with no scales counted")
        self._check_positions(prompt + generate)
        return InferResult(
            **common,
            layers_pass=f"decode step, batch {batch0}, context {prompt}",
            layers=first0.layers,
            batches=tuple(batches),
            compute_bound_from_batch=_compute_bound_from(mean_step, batch0),
            max_batch_that_fits=self._max_batch(weights, kv_per_sequence + prefill0.activation_working_set / batch0),
            prefill=first_prefill,
            decode=first_decode,
            kv_cache_bytes_per_token=kv_slope * kv_per_element,
            kv_cache_bytes=batch0 * kv_per_sequence,
            notes=self._final_notes(),
        )

    def _check_positions(self, tokens: int) -> None:
        config = getattr(self.model, "config", None)
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        if isinstance(limit, int) and tokens > limit:
            self.notes.append(f"prompt + generated tokens ({tokens}) exceed the model's {limit} positions")


# --- generation helpers ------------------------------------------------------------------------------------

_NOT_CAUSAL_HINT = ("--prompt/--generate need a causal language model called as model(input_ids=..., "
                    "past_key_values=..., use_cache=True); drop them to bound one forward pass")


def _cache_keyword(model: Any, source: str) -> str:
    """The keyword the model takes its KV cache by (`cache` in recent transformers, `past_key_values` before);
    UsageError when the model does not follow the convention or cannot generate."""
    can_generate = getattr(model, "can_generate", None)
    if callable(can_generate) and not can_generate():
        raise UsageError(f"{source} ({type(model).__name__}) is not a causal language model", _NOT_CAUSAL_HINT)
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        parameters = {}
    keyword = next((k for k in ("cache", "past_key_values") if k in parameters), None)
    if keyword is None or "input_ids" not in parameters or "use_cache" not in parameters:
        raise UsageError(f"{source} ({type(model).__name__}) does not take input_ids, past_key_values and use_cache",
                         _NOT_CAUSAL_HINT)
    return keyword


def _new_cache(model: Any) -> Any:
    """An empty transformers DynamicCache for a transformers model (the forward fills it in place), else None:
    the model makes its own and returns it."""
    config = getattr(model, "config", None)
    if config is None or not type(model).__module__.startswith("transformers"):
        return None
    from transformers import DynamicCache

    return DynamicCache(config=config)


def _returned_cache(output: Any, keyword: str) -> Any:
    for name in (keyword, "past_key_values", "cache"):
        value = output.get(name) if isinstance(output, Mapping) else getattr(output, name, None)
        if value is not None:
            return value
    if isinstance(output, (tuple, list)) and len(output) > 1:
        return output[1]
    return None


def _token_ids(batch: int, tokens: int, device: str) -> Any:
    import torch

    return torch.zeros(batch, tokens, dtype=torch.int64, device=device)


def _elements(tensors: Iterable[Any]) -> int:
    return sum(t.numel() for t in tensors)


def _midpoint(first: PassBound, last: PassBound) -> PassBound:
    """The mean decode step: each layer's FLOPs and bytes halfway between the first step's and the last's."""
    def mean(a: LayerBound, b: LayerBound) -> LayerBound:
        return LayerBound(a.name, a.type, (a.flops + b.flops) / 2, (a.weight_bytes + b.weight_bytes) / 2,
                          (a.activation_bytes + b.activation_bytes) / 2, (a.kv_cache_bytes + b.kv_cache_bytes) / 2,
                          (a.other_bytes + b.other_bytes) / 2, (a.compute_s + b.compute_s) / 2,
                          (a.memory_s + b.memory_s) / 2)

    return PassBound(tuple(mean(a, b) for a, b in _paired(first, last)))


def _paired(first: PassBound, last: PassBound) -> Iterable[tuple[LayerBound, LayerBound]]:
    names = [layer.name for layer in first.layers]
    if names != [layer.name for layer in last.layers]:
        raise ModelRunError("the decode steps at two context lengths ran different layers",
                            "a model whose graph changes with the context is not supported by --generate")
    return zip(first.layers, last.layers)


def _steps_time(first: PassBound, last: PassBound, steps: int) -> tuple[float, float]:
    """The summed bound of `steps` decode steps, split into compute- and memory-bound time. Each layer's FLOPs
    and bytes grow linearly with the context, from the first step's to the last's (attention and the KV read)."""
    compute = memory = 0.0
    for a, b in _paired(first, last):
        part_compute, part_memory = sum_of_max(a.compute_s, b.compute_s, a.memory_s, b.memory_s, steps)
        compute += part_compute
        memory += part_memory
    return compute, memory


def sum_of_max(c_first: float, c_last: float, m_first: float, m_last: float, steps: int) -> tuple[float, float]:
    """sum over i < steps of max(c(i), m(i)), c and m linear from (c_first, m_first) at i = 0 to (c_last, m_last)
    at i = steps - 1; returned as (the steps where c >= m, the steps where m > c)."""
    if steps == 1:
        return (c_first, 0.0) if c_first >= m_first else (0.0, m_first)
    c_step, m_step = (c_last - c_first) / (steps - 1), (m_last - m_first) / (steps - 1)
    gap, gap_step = c_first - m_first, c_step - m_step  # c(i) - m(i) = gap + gap_step * i

    def total(start: float, step: float, lo: int, hi: int) -> float:  # sum of start + step * i for lo <= i < hi
        count = hi - lo
        return count * start + step * (lo + hi - 1) * count / 2 if count > 0 else 0.0

    if gap_step == 0:
        split = 0 if gap >= 0 else steps  # compute-bound from `split` on
        return total(c_first, c_step, split, steps), total(m_first, m_step, 0, split)
    crossing = -gap / gap_step
    if gap_step > 0:  # compute-bound from the crossing on
        split = min(max(math.ceil(crossing), 0), steps)
        return total(c_first, c_step, split, steps), total(m_first, m_step, 0, split)
    split = min(max(math.floor(crossing) + 1, 0), steps)  # compute-bound up to the crossing
    return total(c_first, c_step, 0, split), total(m_first, m_step, split, steps)


def _compute_bound_from(counted: PassBound, batch: int) -> int | None:
    """The smallest batch at which the pass is compute-bound, with FLOPs and every byte but the weights growing
    in proportion to the batch from the counted one; None if not below 2**24."""
    def compute_bound(size: int) -> bool:
        return counted.scaled(size / batch).bound == "compute"

    if compute_bound(1):
        return 1
    high = 2
    while not compute_bound(high):
        if high >= _LARGEST_BATCH:
            return None
        high *= 2
    low = high // 2  # memory-bound at low, compute-bound at high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if compute_bound(middle) else (middle, high)
    return high
