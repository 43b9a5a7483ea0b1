"""The bytes each layer of a model moves in a forward pass: weights read, activations read and written, KV cache.

The model of memory traffic, in one place (docs/infer.md says it for users):
- A *layer* is one module's own ops: those that run with it as the innermost module (its children are layers
  of their own), as the counter attributes FLOPs. Inside a layer everything is fused: a tensor the layer makes
  and uses itself never reaches memory (an attention's score matrix costs nothing, as in FlashAttention).
- A layer reads, once each, the tensors it uses that something else wrote: its weights, the activations of
  the layers before it, the model's inputs, the KV cache. A gather (an embedding lookup) reads the rows it
  gathers, not the whole table.
- A layer writes the tensors it makes that another layer reads or that the model returns, and what it
  appends to the KV cache: the new part of a concatenation onto a cache tensor it was given, or
  of a tensor the cache holds after the forward.
- A grouped GEMM (a mixture of experts) reads the weights of at most as many experts as it has rows: every
  expert when the batch is large, only the routed ones for one decode token.
- Views move nothing; an in-place write moves the values written (copying one token into a static cache
  writes that token, not the cache). Tensors are followed by their storage, so a view of a layer's output
  is that output.

Floating-point tensors are counted in elements (the caller prices them at the precision it serves in);
integer and boolean tensors and the model's buffers in bytes at their own dtype. torch is never imported
here: the tracer only handles the tensors the counter passes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec import tensors_in

# Ops whose first argument is a table they read only in part: as many elements as they return.
_GATHERS = frozenset({"embedding", "index_select", "gather", "index", "take", "_embedding_bag", "embedding_bag"})
# Grouped GEMMs (a mixture of experts' experts): `a [rows, K] @ b [experts, K, N]`, each row multiplied by one
# expert's slice of b. Rows routed to the same expert share its read, so at most min(experts, rows) slices move:
# one decode token routed to 2 of 8 experts reads 2 experts' weights, not 8.
_GROUPED_GEMMS = frozenset({"_grouped_mm", "_scaled_grouped_mm", "_scaled_grouped_mm_v2"})
# Ops that join tensors: one that starts with a cache tensor it was given extends the cache (an append).
_CONCATS = frozenset({"cat", "concat", "concatenate"})
# In-place ops that overwrite what they write into without reading it first.
_OVERWRITES = frozenset(
    {
        "copy_",
        "index_copy_",
        "index_put_",
        "_index_put_impl_",
        "fill_",
        "zero_",
        "scatter_",
        "masked_fill_",
        "masked_scatter_",
        "slice_scatter_",
        "select_scatter_",
        "_unsafe_index_put",
    }
)


@dataclass(frozen=True)
class LayerTraffic:
    """What one layer moves: parameter elements read (by parameter name), buffer bytes read (running statistics,
    rotary tables: model state at its own dtype), activation and KV-cache elements read and written, and other
    bytes (integer and boolean tensors) at their own dtype."""

    name: str  # module path, "" for the root's own ops
    weights: Mapping[str, int] = field(default_factory=dict)
    buffer_bytes: int = 0
    activations_read: int = 0
    activations_written: int = 0
    cache_read: int = 0
    cache_written: int = 0
    other_bytes: int = 0


@dataclass(frozen=True)
class TrafficReport:
    """Per-layer traffic of one forward pass, in the order the layers first ran, and the parameters' shapes
    (what a quantised format's scales depend on)."""

    layers: tuple[LayerTraffic, ...]
    param_shapes: Mapping[str, tuple[int, ...]]

    def layer(self, name: str) -> LayerTraffic:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


@dataclass
class _Write:
    layer: str
    key: int
    elements: int
    itemsize: int
    floating: bool
    cache_prefix: int  # elements of the old cache the result starts with (a concatenation onto the cache)
    appends_cache: bool = False  # a concatenation onto a cache tensor: its new part is written to the cache
    escaped: bool = False  # read by another layer
    read_inside: bool = False  # read by the layer that wrote it


class TrafficTracer:
    """An observer for the counter (`counter.count(..., observe=tracer)`): follows each op's tensors by storage
    and charges reads and writes to layers as the module docstring says. `cache`: the tensors of the KV cache
    the forward is given (read as cache, not as activations)."""

    def __init__(self, model: Any, cache: Iterable[Any] = ()):
        self._storages: dict[int, Any] = {}  # keeps every storage seen alive, so no key is reused
        self._params: dict[int, str] = {}
        self.param_shapes: dict[str, tuple[int, ...]] = {}
        for name, param in model.named_parameters():
            self._params[self._key(param)] = name
            self.param_shapes[name] = tuple(int(d) for d in param.shape)
        self._buffers = {self._key(buffer) for buffer in model.buffers()}
        self._cache_in = {self._key(tensor) for tensor in cache}
        self._writer: dict[int, _Write] = {}
        self._writes: list[_Write] = []
        self._reads: dict[tuple[str, int], dict[tuple, int]] = defaultdict(dict)
        self._read_info: dict[int, tuple[int, bool, int]] = {}  # key -> itemsize, floating, storage elements
        self._order: dict[str, None] = {}

    def _key(self, tensor: Any) -> int:
        storage = tensor.untyped_storage()
        key = storage._cdata
        self._storages.setdefault(key, storage)
        return key

    def __call__(
        self, func: Any, args: tuple, kwargs: Mapping[str, Any], out: Any, module: str, backward: bool
    ) -> None:
        if backward:
            return
        self._order.setdefault(module, None)
        name = getattr(getattr(func, "overloadpacket", func), "__name__", "")  # a higher-order op has no packet
        inputs = [t for t in tensors_in(list(args) + list(kwargs.values())) if _has_storage(t)]
        written = _written_arguments(func, args, kwargs)
        if written:  # in place, or out=
            written_keys = {self._key(t) for t in written}
            others = [t for t in inputs if self._key(t) not in written_keys]
            for tensor in others if name in _OVERWRITES else inputs:
                self._read(module, tensor, tensor.numel())
            largest = max((t.numel() for t in others), default=None)
            for tensor in written:
                elements = tensor.numel() if largest is None else min(tensor.numel(), largest)
                self._write(module, tensor, elements, 0, whole=elements == tensor.numel())
            return
        input_keys = {self._key(t) for t in inputs}
        fresh = [t for t in tensors_in(out) if _has_storage(t) and self._key(t) not in input_keys]
        if not fresh:  # a view (or an op that returns its input): nothing moves
            return
        gathered = sum(t.numel() for t in fresh) if name in _GATHERS else None
        for index, tensor in enumerate(inputs):
            if gathered is not None and index == 0:
                elements = min(tensor.numel(), gathered)
            elif name in _GROUPED_GEMMS and index == 1:
                elements = _experts_read(inputs[0], tensor)
            else:
                elements = tensor.numel()
            self._read(module, tensor, elements)
        prefix = sum(t.numel() for t in inputs if self._key(t) in self._cache_in)
        for tensor in fresh:
            self._write(module, tensor, tensor.numel(), prefix, appends=prefix > 0 and name in _CONCATS)

    def _read(self, layer: str, tensor: Any, elements: int) -> None:
        key = self._key(tensor)
        writer = self._writer.get(key)
        if writer is not None and writer.layer == layer:
            writer.read_inside = True
            return
        if writer is not None:
            writer.escaped = True
        region = (tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()))
        regions = self._reads[(layer, key)]
        regions[region] = max(regions.get(region, 0), elements)
        itemsize = tensor.element_size()
        self._read_info[key] = (itemsize, tensor.is_floating_point(), tensor.untyped_storage().nbytes() // itemsize)

    def _write(
        self, layer: str, tensor: Any, elements: int, cache_prefix: int, whole: bool = True, appends: bool = False
    ) -> None:
        """A write of `elements`; `whole=False` for a part written in place (a token into a static cache): the
        rest of the tensor is still someone else's, so the part is charged and the tensor keeps its writer."""
        write = _Write(
            layer,
            self._key(tensor),
            elements,
            tensor.element_size(),
            tensor.is_floating_point(),
            cache_prefix,
            appends,
            escaped=not whole,
        )
        if whole:
            self._writer[write.key] = write
        self._writes.append(write)

    def report(self, cache: Iterable[Any] = (), outputs: Iterable[Any] | None = None) -> TrafficReport:
        """The traffic of the forward observed so far. `cache`: the KV cache's tensors after the forward; what the
        forward added to them is written as cache, whoever reads it. `outputs`: the tensors the model returned,
        written whoever reads them; None when unknown, and then every tensor nobody read counts as an output."""
        cache_out = {self._key(tensor) for tensor in cache}
        returned = None if outputs is None else {self._key(t) for t in tensors_in(list(outputs)) if _has_storage(t)}
        cache_keys = self._cache_in | cache_out
        totals: dict[str, dict[str, Any]] = {
            name: {
                "weights": defaultdict(int),
                "buffer_bytes": 0,
                "activations_read": 0,
                "activations_written": 0,
                "cache_read": 0,
                "cache_written": 0,
                "other_bytes": 0,
            }
            for name in self._order
        }
        for (layer, key), regions in self._reads.items():
            itemsize, floating, capacity = self._read_info[key]
            elements = min(sum(regions.values()), capacity)
            entry = totals[layer]
            if key in self._params:
                entry["weights"][self._params[key]] += elements
            elif key in self._buffers:
                entry["buffer_bytes"] += elements * itemsize
            elif key in cache_keys:
                entry["cache_read"] += elements
            elif floating:
                entry["activations_read"] += elements
            else:
                entry["other_bytes"] += elements * itemsize
        for write in self._writes:
            entry = totals[write.layer]
            if write.key in cache_out or write.appends_cache:
                entry["cache_written"] += max(write.elements - write.cache_prefix, 0)
            elif write.escaped or (not write.read_inside if returned is None else write.key in returned):
                if write.floating:
                    entry["activations_written"] += write.elements
                else:
                    entry["other_bytes"] += write.elements * write.itemsize
        layers = tuple(
            LayerTraffic(name=name, **{**values, "weights": dict(values["weights"])}) for name, values in totals.items()
        )
        return TrafficReport(layers, dict(self.param_shapes))


def _experts_read(rows: Any, experts: Any) -> int:
    """Elements of a grouped GEMM's stacked expert weights `[experts, K, N]` that `rows [M, K]` can touch."""
    if experts.dim() != 3 or rows.dim() != 2:
        return experts.numel()
    count = int(experts.shape[0])
    return experts.numel() // count * min(count, int(rows.shape[0]))


def cache_tensors(cache: Any) -> list[Any]:
    """The tensors of a KV cache: a transformers Cache (its layers' keys and values, or the older key_cache and
    value_cache lists), or nested tuples and lists of tensors (the legacy form); [] for None."""
    if cache is None:
        return []
    layers = getattr(cache, "layers", None)
    if layers is not None:
        found: list[Any] = []
        for layer in layers:
            found.extend(t for t in tensors_in([getattr(layer, a, None) for a in ("keys", "values")]))
        return found
    if hasattr(cache, "key_cache") and hasattr(cache, "value_cache"):
        return list(tensors_in([cache.key_cache, cache.value_cache]))
    return list(tensors_in(cache))


def _has_storage(tensor: Any) -> bool:
    """Dense tensors have one storage; sparse and nested ones do not and are not followed."""
    try:
        tensor.untyped_storage()
    except (RuntimeError, NotImplementedError):
        return False
    return True


def _written_arguments(func: Any, args: tuple, kwargs: Mapping[str, Any]) -> list[Any]:
    """The tensors an op writes into (its schema marks them `Tensor(a!)`): self of an in-place op, out=."""
    schema = getattr(func, "_schema", None)
    if schema is None:
        return []
    written = []
    for index, argument in enumerate(schema.arguments):
        alias = argument.alias_info
        if alias is None or not alias.is_write:
            continue
        value = args[index] if index < len(args) else kwargs.get(argument.name)
        written.extend(t for t in tensors_in(value) if _has_storage(t))
    return written
