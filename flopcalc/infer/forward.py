"""Bounds of one forward pass at each batch size, for any model: latency, examples per second, where the pass
turns compute-bound and the largest batch that fits."""

from __future__ import annotations

from ..errors import ModelRunError
from .bounds import compute_bound_from
from .memory import fits
from .result import BatchBound, InferResult
from .session import Session


def bound_forward(session: Session) -> InferResult:
    passes = {batch: session.count(session.inputs(batch)) for batch in session.sizes}
    fields = session.model_fields()
    weights = fields["weights_bytes"]
    batches = []
    for batch, bound in passes.items():
        if not bound.time_s:
            raise ModelRunError(f"{session.spec.source} computes nothing and moves no tensor: nothing to bound")
        memory = weights + bound.activation_working_set
        batches.append(
            BatchBound(batch, bound.time_s, batch / bound.time_s, bound.bound, memory, fits(session.hardware, memory))
        )
    batch0 = session.sizes[0]
    first = passes[batch0]
    return InferResult(
        **fields,
        layers_pass=f"forward, batch {batch0}",
        layers=first.layers,
        batches=tuple(batches),
        compute_bound_from_batch=compute_bound_from(first, batch0),
        max_batch_that_fits=session.max_batch(weights, first.activation_working_set / batch0),
        notes=session.final_notes(),
    )
