"""`flopcalc infer`: what serving a model costs on a GPU, as lower bounds from the real graph.

For any model: the forward's FLOPs and the bytes each layer moves (counting/traffic.py), priced at the serving
precisions, give each layer a roofline bound, time >= max(FLOPs / peak, bytes / bandwidth); the model's bound
is the sum over its layers, per batch size. For a causal language model (`--prompt P --generate G`): the
prefill over P tokens, decode steps counted from the real graph with a KV cache of c entries, the KV cache's
size from the model's own cache tensors, and what fits in the GPU's memory.

Every figure is a lower bound (docs/infer.md). The library never prints; `InferResult.to_dict()` is the
`--format json` contract. The rooms, top down: serving (the entry point), forward | generation, session,
result | steps | cache | memory, bounds, hardware | quantisation.
"""

from .bounds import LOWER_BOUNDS, LayerBound, PassBound, own_flops
from .hardware import Hardware, resolve_hardware
from .quantisation import (
    BYTES_PER_ELEMENT,
    INT4_GROUP,
    QUANTIZATION_LAYOUTS,
    STORAGE_DTYPES,
    Precisions,
    parameter_bytes,
    storage_dtype,
    weights_bytes,
)
from .result import SCHEMA_VERSION, BatchBound, Decode, InferResult, Prefill
from .serving import infer, parse_batch_sizes
from .steps import sum_of_max

__all__ = [
    "BYTES_PER_ELEMENT",
    "INT4_GROUP",
    "LOWER_BOUNDS",
    "QUANTIZATION_LAYOUTS",
    "SCHEMA_VERSION",
    "STORAGE_DTYPES",
    "BatchBound",
    "Decode",
    "Hardware",
    "InferResult",
    "LayerBound",
    "PassBound",
    "Precisions",
    "Prefill",
    "infer",
    "own_flops",
    "parameter_bytes",
    "parse_batch_sizes",
    "resolve_hardware",
    "storage_dtype",
    "sum_of_max",
    "weights_bytes",
]
