"""`infer(...)`, the library call behind `flopcalc infer`: checks the request, resolves the GPU and precisions,
loads the model through the one load pipeline (meta, then the CPU behind the memory guard) and bounds it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from ..api import on_meta_then_cpu
from ..errors import UsageError
from ..loaders.base import LoadedModel
from ..spec import ModelSpec
from .bounds import LOWER_BOUNDS, predicted_note
from .forward import bound_forward
from .generation import bound_generation
from .hardware import Hardware, resolve_hardware
from .parallel import ServingLayout, resolve_parallel
from .quantisation import BYTES_PER_ELEMENT, STORAGE_DTYPES, Precisions, storage_dtype, stored
from .result import InferResult
from .session import Session

# The largest batch size and generation length taken: beyond any serving run, and far inside what torch's int64
# shapes hold, so no overflow reaches torch.
MAX_BATCH_SIZE = 1 << 24
MAX_TOKENS = 1 << 24


def parse_batch_sizes(text: str | Iterable[int]) -> tuple[int, ...]:
    """`1,8,64` -> (1, 8, 64): whole numbers >= 1, sorted, each once."""
    items = [part.strip() for part in text.split(",")] if isinstance(text, str) else [str(v) for v in text]
    if not items or any(not re.fullmatch(r"\d+", item) for item in items):
        raise UsageError(f"--batch-size {text!r} is not a list of whole numbers", "write e.g. --batch-size 1,8,64")
    sizes = sorted({int(item) for item in items})
    if sizes[0] < 1:
        raise UsageError(f"--batch-size {text!r}: a batch size must be at least 1", "write e.g. --batch-size 1,8,64")
    if sizes[-1] > MAX_BATCH_SIZE:
        raise UsageError(
            f"--batch-size {sizes[-1]} is too large: a batch size must be at most {MAX_BATCH_SIZE:,}",
            "write e.g. --batch-size 1,8,64",
        )
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
    sparse_peak: bool = False,
    tp: int = 1,
    pp: int = 1,
    replicas: int = 1,
    gpus_per_node: int = 8,
    intra_node_gbps: float | None = None,
    inter_node_gbps: float | None = None,
    steps: int | None = None,
    guidance: bool = False,
) -> InferResult:
    """Serving bounds of `spec`'s model on `gpu`, at each batch size; with `prompt` and `generate`, of generating
    G tokens after a P-token prompt (a causal language model), on `tp` x `pp` GPUs per replica. With
    `spec.sparsity` the weights are read: 2:4 ones are stored compressed (values and metadata); `sparse_peak`
    prices FLOPs at the GPU's 2:4-sparse peak, only when every weight multiplied is 2:4 (and implies
    `spec.sparsity`). For a diffusion model, `steps` bounds one sample as that many denoising steps, each a
    forward of two latents per sample with `guidance` (classifier-free): latency per sample, samples per second."""
    sizes = parse_batch_sizes(batch_sizes)
    generation = _generation_lengths(spec, prompt, generate)
    latents_per_sample = _denoising(steps, guidance, generation)
    sizes = tuple(size * latents_per_sample for size in sizes)
    layout = ServingLayout(tp, pp, replicas, gpus_per_node)
    if not layout.several and (intra_node_gbps is not None or inter_node_gbps is not None):
        raise UsageError(
            "--intra-node-gbps and --inter-node-gbps price the links of --tp/--pp", "give --tp or --pp, or drop them"
        )
    if layout.several and generation is None:
        raise UsageError("--tp, --pp and --replicas split a generation over GPUs", "give --prompt and --generate")
    if spec.batch_size is not None:
        raise UsageError("give batch sizes with batch_sizes (--batch-size 1,8,64), not in the ModelSpec")
    hardware, serving = resolve_hardware(
        gpu, precision, compute_precision, calibration=calibration, catalogs=catalogs, sparse_peak=sparse_peak
    )
    precisions = _precisions(hardware, serving, weight_dtype, kv_dtype)
    # a generation makes its own token ids: load with a prompt's worth, so a model needs no example inputs
    prompt_ids = () if generation is None else (f"{sizes[0]}x{generation[0]}:int64",)
    load_spec = replace(
        spec,
        batch_size=sizes[0],
        inputs=prompt_ids or spec.inputs,
        backward=False,
        sparsity=spec.sparsity or sparse_peak,
    )

    def bound(loaded: LoadedModel, example: Any) -> InferResult:
        if steps is not None and loaded.kind != "diffusion":
            raise UsageError(
                f"--steps applies to diffusion models; {spec.source} is not one", "give a diffusers config.json"
            )
        session = Session(load_spec, loaded, example, hardware, precisions, sizes, sparse_peak)
        if layout.several:
            session.parallel = resolve_parallel(
                layout,
                session.model,
                spec.source,
                hardware.gpu,
                BYTES_PER_ELEMENT[precisions.activations],
                catalogs,
                intra_node_gbps,
                inter_node_gbps,
            )
        if generation is not None:
            return bound_generation(session, *generation)
        return bound_forward(session, steps=steps or 1, latents_per_sample=latents_per_sample)

    result, _, fallback = on_meta_then_cpu(load_spec, bound)
    profile = hardware.profile
    times = LOWER_BOUNDS if profile is None else predicted_note(profile, hardware.profile_origin)
    return replace(result, notes=(times, *fallback, *result.notes))


def _denoising(steps: int | None, guidance: bool, generation: tuple[int, int] | None) -> int:
    """The latents one sample puts through each denoising step: 2 with classifier-free guidance (the conditioned
    and the unconditioned one), else 1."""
    if steps is None:
        if guidance:
            raise UsageError("--guidance doubles each denoising step", "give --steps N with it")
        return 1
    if steps < 1:
        raise UsageError(f"--steps {steps} must be at least 1 denoising step")
    if generation is not None:
        raise UsageError("--steps bounds a diffusion model's sampling; --prompt/--generate a language model's")
    return 2 if guidance else 1


def _precisions(hardware: Hardware, serving: str, weight_dtype: str | None, kv_dtype: str | None) -> Precisions:
    if serving not in BYTES_PER_ELEMENT:
        raise UsageError(f"--precision {serving} has no storage size", f"use one of {', '.join(STORAGE_DTYPES)}")
    return Precisions(
        activations=serving,
        compute=hardware.precision,
        weights=storage_dtype(weight_dtype, "--weight-dtype") if weight_dtype else stored(serving),
        kv_cache=storage_dtype(kv_dtype, "--kv-dtype") if kv_dtype else stored(serving),
    )


def _generation_lengths(spec: ModelSpec, prompt: int | None, generate: int | None) -> tuple[int, int] | None:
    if prompt is None and generate is None:
        return None
    if prompt is None or generate is None:
        raise UsageError("--prompt and --generate go together", "give both, e.g. --prompt 512 --generate 128")
    for flag, value in (("--prompt", prompt), ("--generate", generate)):
        if value < 1:
            raise UsageError(f"{flag} {value} must be at least 1 token")
    if prompt + generate > MAX_TOKENS:
        raise UsageError(
            f"--prompt {prompt} + --generate {generate} tokens is too long: at most {MAX_TOKENS:,} tokens in all",
            "give a shorter prompt or generation",
        )
    if spec.inputs or spec.seq_len is not None:
        raise UsageError("--prompt sets the tokens of a generation", "drop --input and --seq-len")
    return prompt, generate
