"""Bounds of one forward pass at each batch size, for any model: latency, examples per second, where the pass
turns compute-bound and the largest batch that fits."""

from __future__ import annotations

from ..errors import ModelRunError
from .bounds import compute_bound_from
from .memory import fits
from .result import BatchBound, InferResult
from .session import Session


def bound_forward(session: Session, *, steps: int = 1, latents_per_sample: int = 1) -> InferResult:
    """Bounds at each of the session's batch sizes (of model inputs); with `steps`, of one sample of a diffusion
    model: `steps` forwards, each over `latents_per_sample` latents (2 with classifier-free guidance), reported
    per sample."""
    passes = {batch: session.count(session.inputs(batch)) for batch in session.sizes}
    fields = session.model_fields()
    weights = fields["weights_bytes"]
    batches = []
    for batch, bound in passes.items():
        if not bound.time_s:
            raise ModelRunError(f"{session.spec.source} computes nothing and moves no tensor: nothing to bound")
        memory = weights + bound.activation_working_set
        samples, latency = batch // latents_per_sample, steps * bound.time_s
        batches.append(
            BatchBound(samples, latency, samples / latency, bound.bound, memory, fits(session.hardware, memory))
        )
    batch0 = session.sizes[0]
    first = passes[batch0]
    compute_bound = compute_bound_from(first, batch0)
    largest = session.max_batch(weights, first.activation_working_set / batch0)
    notes = session.final_notes()
    if steps > 1 or latents_per_sample > 1:
        guided = " with classifier-free guidance (2 latents a step)" if latents_per_sample > 1 else ""
        notes = (
            *notes,
            f"a sample is {steps} denoising steps{guided}: latency and throughput are per sample; "
            "batch sizes count samples",
        )
    return InferResult(
        **fields,
        layers_pass=f"forward, batch {batch0}",
        layers=first.layers,
        batches=tuple(batches),
        compute_bound_from_batch=None if compute_bound is None else -(-compute_bound // latents_per_sample),
        max_batch_that_fits=None if largest is None else largest // latents_per_sample,
        notes=notes,
    )
