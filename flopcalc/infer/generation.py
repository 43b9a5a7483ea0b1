"""Bounds of a generation, counted from the real graph: the prefill over P prompt tokens (the logits of the last
position only, as generate() and serving engines keep), decode steps at contexts P and P+G-1 with a KV cache
filled to that length, the cache's growth per token from the model's own cache tensors, and what fits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..counting.traffic import cache_tensors
from ..errors import ModelRunError, UsageError, short_error
from ..units import format_si
from .bounds import PassBound, compute_bound_from, dominant_bound
from .cache import (
    NOT_CAUSAL_HINT,
    cache_keyword,
    elements,
    last_logits_only,
    new_cache,
    returned_cache,
    token_ids,
)
from .memory import fits
from .parallel import NOT_MODELLED
from .quantisation import BYTES_PER_ELEMENT, QUANTIZATION_LAYOUTS
from .result import BatchBound, Decode, InferResult, Prefill
from .session import Session
from .steps import midpoint, steps_time

LAST_LOGITS_NOTE = (
    "prefill keeps the logits of the last prompt position only, as generate() and serving engines "
    "do (`flopcalc count` counts them at every position)"
)
# for a model that takes no logits_to_keep
ALL_LOGITS_NOTE = (
    "prefill counts logits at every prompt position, as `flopcalc count` does (generate() needs only the last)"
)


class Counted(NamedTuple):
    """The passes counted at one batch size: the prefill, the first decode step and the last."""

    prefill: PassBound
    first: PassBound
    final: PassBound


class KvGrowth(NamedTuple):
    """Cache elements per sequence: added per token of context while the cache grows, held whatever the context
    (a recurrent state), and the most it holds (a sliding window's; None when it grows with every token)."""

    per_token: float
    fixed: float
    most: float | None = None

    def held(self, tokens: int) -> float:
        """Cache elements per sequence after `tokens` tokens."""
        grown = self.fixed + self.per_token * tokens
        return grown if self.most is None else min(grown, self.most)


class Caller:
    """Calls the session's model the Hugging Face way: a prompt (keeping the last position's logits where the
    model allows), a cache filled by an uncounted forward, a decode step of one token."""

    def __init__(self, session: Session):
        self.session = session
        self.keyword = cache_keyword(session.model, session.spec.source)
        self.last_logits = last_logits_only(session.model)
        self.grows_in_place = new_cache(session.model) is not None  # a transformers Cache, not returned tuples

    def prompt_inputs(self, batch: int, tokens: int, cache: Any) -> dict[str, Any]:
        return {
            "input_ids": token_ids(batch, tokens, self.session.device),
            "use_cache": True,
            **({self.keyword: cache} if cache is not None else {}),
            **self.last_logits,
        }

    def filled_cache(self, batch: int, context: int) -> Any:
        """A KV cache of `context` entries, made by an uncounted forward over that many tokens."""
        import torch

        session = self.session
        cache = new_cache(session.model)
        try:
            with torch.no_grad():
                output = session.model(**self.prompt_inputs(batch, context, cache))
        except (Exception, SystemExit) as error:
            raise ModelRunError(
                f"{session.spec.source}: a forward over {context} tokens to fill the KV cache "
                f"failed: {short_error(error)}"
            ) from error
        cache = cache if cache is not None else returned_cache(output, self.keyword)
        if not cache_tensors(cache):
            raise UsageError(
                f"{session.spec.source} returned no KV cache ({self.keyword}) with use_cache=True", NOT_CAUSAL_HINT
            )
        return cache

    def decode(self, batch: int, cache: Any) -> PassBound:
        """One decode step counted: a token per sequence onto `cache`."""
        inputs = {"input_ids": token_ids(batch, 1, self.session.device), self.keyword: cache, "use_cache": True}
        return self.session.count(inputs, cache)


class GenerationCounter:
    """Counts a P-token prompt and G decode steps of the session's model, and how its KV cache grows."""

    def __init__(self, session: Session, prompt: int, generate: int):
        self.session, self.prompt, self.generate = session, prompt, generate
        self.caller = Caller(session)
        self.growth: KvGrowth | None = None  # from the first batch size counted

    def count(self, batch: int) -> Counted:
        session, caller = self.session, self.caller
        cache = new_cache(session.model)
        prefill = session.count(caller.prompt_inputs(batch, self.prompt, cache), cache)
        cache = cache if cache is not None else caller.filled_cache(batch, self.prompt)
        before = elements(cache_tensors(cache))
        first = caller.decode(batch, cache)
        if self.growth is None:
            self.growth = self._growth(batch, before, cache)
        last = self.prompt + self.generate - 1
        end_cache = cache if last == self.prompt else caller.filled_cache(batch, last)
        final = first if last == self.prompt else caller.decode(batch, end_cache)
        if batch == session.sizes[0] and caller.grows_in_place:  # the last step grew it: read what it holds
            self.growth = self._held_at_end(self.growth, elements(cache_tensors(end_cache)) / batch)
        return Counted(prefill, first, final)

    def _held_at_end(self, growth: KvGrowth, held: float) -> KvGrowth:
        """A cache that holds less after the last step than its growth says has met a sliding window."""
        return growth._replace(most=held) if held < growth.held(self.prompt + self.generate) else growth

    def _growth(self, batch: int, before: int, cache: Any) -> KvGrowth:
        """From the cache a decode step grew in place, or else from one filled with one token more."""
        after = elements(cache_tensors(cache))
        if after == before:  # an immutable cache (tuples): the step returned a new one
            after = elements(cache_tensors(self.caller.filled_cache(batch, self.prompt + 1)))
        slope = (after - before) / batch
        if slope > 0:
            return KvGrowth(slope, before / batch - slope * self.prompt)
        # a sliding window the prompt already fills (transformers keeps only the window): growth from 1 to 2 tokens
        one, two = (elements(cache_tensors(self.caller.filled_cache(batch, tokens))) for tokens in (1, 2))
        slope = (two - one) / batch
        if slope <= 0:
            raise UsageError(
                f"{self.session.spec.source}: its KV cache does not grow with the context", NOT_CAUSAL_HINT
            )
        return KvGrowth(slope, one / batch - slope, most=before / batch)


def bound_generation(session: Session, prompt: int, generate: int) -> InferResult:
    """Prefill, decode and KV cache bounds at every batch size of the session."""
    counter = GenerationCounter(session, prompt, generate)
    per_batch = {batch: counter.count(batch) for batch in session.sizes}
    if session.parallel is not None:  # as the GPUs of one replica run each pass, with their communication
        per_gpu = session.parallel.per_gpu
        shapes = session.param_shapes
        per_batch = {
            batch: Counted(
                per_gpu(c.prefill, batch * prompt, shapes),
                per_gpu(c.first, batch, shapes),
                per_gpu(c.final, batch, shapes),
            )
            for batch, c in per_batch.items()
        }
    return _generation_result(counter, per_batch)


def _decode_summary(counted: Counted, batch: int, prompt: int, generate: int) -> tuple[Decode, float]:
    """The decode steps of one batch, and the time of those that are compute-bound."""
    first, final = counted.first, counted.final
    last = prompt + generate - 1
    compute_s, memory_s = steps_time(first, final, generate)
    decode = Decode(
        batch,
        generate,
        flops_per_token_at_context=tuple(sorted({prompt: first.flops / batch, last: final.flops / batch}.items())),
        bytes_per_step_at_context=tuple(sorted({prompt: first.bytes, last: final.bytes}.items())),
        flops_total=generate * (first.flops + final.flops) / 2,  # linear in the context
        time_total_s=compute_s + memory_s,
        bound=dominant_bound(compute_s, memory_s),
    )
    return decode, compute_s


def _batch_bound(
    session: Session,
    prefill: PassBound,
    decode: Decode,
    decode_compute_s: float,
    weights: float,
    kv_per_sequence: float,
    held: tuple[float, float],
) -> BatchBound:
    """`held`: the weights and a sequence's cache on one GPU (the whole model's on one GPU)."""
    batch = decode.batch_size
    memory = held[0] + batch * held[1] + prefill.activation_working_set
    latency = prefill.time_s + decode.time_total_s
    compute_s = prefill.compute_bound_s + decode_compute_s
    return BatchBound(
        batch,
        latency,
        batch * decode.tokens / latency,
        dominant_bound(compute_s, latency - compute_s),
        memory,
        fits(session.hardware, memory),
        ttft_s=prefill.time_s,
        time_per_token_s=decode.time_per_token_s,
        tokens_per_s=decode.tokens_per_s,
        kv_cache_bytes=batch * kv_per_sequence,
        prefill_bound=prefill.bound,
        decode_bound=decode.bound,
    )


def _generation_result(counter: GenerationCounter, per_batch: Mapping[int, Counted]) -> InferResult:
    session, prompt, generate, growth = counter.session, counter.prompt, counter.generate, counter.growth
    assert growth is not None  # set by the first count
    fields = session.model_fields()
    weights = fields["weights_bytes"]
    kv_per_element = BYTES_PER_ELEMENT[session.precisions.kv_cache]
    kv_per_sequence = growth.held(prompt + generate) * kv_per_element
    held = _held_per_gpu(session, weights, kv_per_sequence)
    decodes = {batch: _decode_summary(counted, batch, prompt, generate) for batch, counted in per_batch.items()}
    batches = tuple(
        _batch_bound(session, per_batch[batch].prefill, decode, compute_s, weights, kv_per_sequence, held)
        for batch, (decode, compute_s) in decodes.items()
    )
    batch0 = session.sizes[0]
    parallel = None
    if session.parallel is not None:
        session.notes.append(NOT_MODELLED)
        parallel = session.parallel.to_dict(
            held[0],
            session.parallel.kv_per_gpu(growth.per_token * kv_per_element),
            batch0,
            prompt,
            [(b.batch_size, b.tokens_per_s or 0.0) for b in batches],
        )
    counted0 = per_batch[batch0]
    session.notes.append(LAST_LOGITS_NOTE if counter.caller.last_logits else ALL_LOGITS_NOTE)
    if growth.most is not None:
        session.notes.append(
            f"the KV cache stops growing at {format_si(growth.most * kv_per_element, 'B')} per "
            "sequence (a sliding window: only the window's entries are kept); decode steps between "
            "the first and the last counted are taken as linear in the context, a lower bound"
        )
    if session.precisions.kv_cache in QUANTIZATION_LAYOUTS:
        session.notes.append(f"KV cache in {session.precisions.kv_cache} with no scales counted")
    _check_positions(session, prompt + generate)
    prefill = counted0.prefill
    return InferResult(
        **fields,
        layers_pass=f"decode step, batch {batch0}, context {prompt}",
        layers=counted0.first.layers,
        batches=batches,
        compute_bound_from_batch=compute_bound_from(midpoint(counted0.first, counted0.final), batch0),
        max_batch_that_fits=session.max_batch(held[0], held[1] + prefill.activation_working_set / batch0),
        prefill=Prefill(batch0, prompt, prefill.flops, prefill.bytes, prefill.time_s, prefill.bound),
        decode=decodes[batch0][0],
        kv_cache_bytes_per_token=growth.per_token * kv_per_element,
        kv_cache_bytes=batch0 * kv_per_sequence,
        notes=session.final_notes(),
        parallel=parallel,
    )


def _held_per_gpu(session: Session, weights: float, kv_per_sequence: float) -> tuple[float, float]:
    """The weights and one sequence's KV cache as one GPU holds them (all of both on a single GPU)."""
    parallel = session.parallel
    if parallel is None:
        return weights, kv_per_sequence
    precisions = session.precisions
    return (
        parallel.weights_per_gpu(session.param_shapes, precisions.weights, precisions.activations),
        parallel.kv_per_gpu(kv_per_sequence),
    )


def _check_positions(session: Session, tokens: int) -> None:
    config = getattr(session.model, "config", None)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if isinstance(limit, int) and tokens > limit:
        session.notes.append(f"prompt + generated tokens ({tokens}) exceed the model's {limit} positions")
