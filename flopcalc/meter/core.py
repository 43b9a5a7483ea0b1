"""A throughput and MFU meter for training loops.

The training step is counted once, on the meta device, by the same counter as `flopcalc count` (forward +
backward, 1 multiply-add = 2 FLOPs, frozen parameters honoured, activation checkpointing's re-run forward kept
apart as hardware-only FLOPs). In the loop, `step()` reads the clock (and synchronises the device only when
asked) and keeps a rolling window; `reading()` turns the window into steps/s, samples/s, tokens/s, achieved
FLOP/s and MFU against each peak it knows, every figure labelled with its peak. `fleet_reading()` sums the
counters of every rank under torch.distributed.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn as nn
from torch.utils._pytree import tree_structure

from ..api import count, count_spec
from ..counting.report import CountReport, unsupported_ops_note
from ..errors import ArgumentTypeError, FlopcalcError, UsageError, check_number, short_error
from ..spec import ModelSpec, map_tensors, tensors_in
from .peaks import PEAK_KINDS, Peak, resolve_peaks
from .reading import MeterReading

StepFunction = Callable[[nn.Module, Any], Any]


# --------------------------------------------------------------------------------------------- counting


class _Step(nn.Module):
    """Runs `step(model, batch)` as a module's forward, so the counter counts a training step that is not
    `model(batch)` (Lightning's training_step, a loss taken from a Hugging Face output)."""

    def __init__(self, model: nn.Module, step: StepFunction):
        super().__init__()
        self.model = model
        self._step = step

    def forward(self, batch: Any) -> Any:
        return self._step(self.model, batch)


def _unwrapped(model: nn.Module) -> nn.Module:
    """The module that holds the arithmetic: DistributedDataParallel's and torch.compile's wrappers run it."""
    for _ in range(4):
        inner = getattr(model, "_orig_mod", None) or (
            model.module if type(model).__name__ in ("DistributedDataParallel", "DataParallel") else None
        )
        if inner is None:
            return model
        model = inner
    return model


def meta_copy(model: nn.Module, *, detach: Sequence[Any] = ()) -> nn.Module:
    """The module's structure with every parameter and buffer on the meta device, nothing allocated.

    A deep copy whose memo already maps each registered tensor to a meta tensor of the same shape, dtype and
    `requires_grad` (tied weights stay tied: one tensor, one meta tensor), so the user's module is never
    touched and no weight is copied. Objects in `detach` (a trainer the module points back to) become None.
    """
    memo: dict[int, Any] = {id(obj): None for obj in detach}
    for tensor in list(model.parameters()) + list(model.buffers()):
        if id(tensor) in memo:
            continue
        meta = tensor.detach().to("meta")
        memo[id(tensor)] = (
            nn.Parameter(meta, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else meta
        )
    return copy.deepcopy(model, memo)


def on_device(batch: Any, device: str | torch.device) -> Any:
    """The batch with every tensor moved to `device`, its nesting kept (spec.map_tensors)."""
    return map_tensors(lambda tensor: tensor.to(device), batch)


def _first_tensor(batch: Any) -> torch.Tensor | None:
    return next(iter(tensors_in(batch)), None)


def batch_shape_key(batch: Any) -> tuple:
    """The nesting and the shapes of a batch's tensors, in order: a batch with the same key costs the same FLOPs."""
    return (str(tree_structure(batch)),) + tuple((tuple(t.shape), t.dtype) for t in tensors_in(batch))


def batch_size_and_tokens(batch: Any) -> tuple[int | None, int | None]:
    """Samples in a batch (the first tensor's leading dimension) and tokens, when that tensor holds token ids
    (integers, batch x sequence); otherwise tokens are None."""
    first = _first_tensor(batch)
    if first is None or first.dim() == 0:
        return None, None
    tokens = first.numel() if first.dim() == 2 and not first.is_floating_point() and not first.is_complex() else None
    return int(first.shape[0]), tokens


def count_training_step(
    model: nn.Module, batch: Any, *, step: StepFunction | None = None, detach: Sequence[Any] = ()
) -> CountReport:
    """Count one training step of `model` on `batch` (forward + backward) without running it for real.

    The step is `model(*batch)` (a tuple), `model(**batch)` (a dict) or `model(batch)`, or `step(model, batch)`
    when given. It is counted on a meta copy (`meta_copy`); a model that cannot run there (it reads values, it
    keeps tensors outside its parameters and buffers) is counted once on its own device instead, with a note.
    """
    model = _unwrapped(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            target = meta_copy(model, detach=detach)
            return _count(target, on_device(batch, "meta"), step)
    except (FlopcalcError, RuntimeError, TypeError, ValueError, NotImplementedError, AttributeError) as error:
        reason = getattr(error, "message", None) or short_error(error)
    report = _count(model, batch, step)
    device = report.device
    return replace(
        report,
        notes=report.notes
        + (f"the step could not be counted on the meta device ({reason}); counted once on {device}",),
    )


def _count(model: nn.Module, batch: Any, step: StepFunction | None) -> CountReport:
    if step is not None:
        return count(_Step(model, step), (batch,))
    return count(model, batch)


# --------------------------------------------------------------------------------------------- the meter


@dataclass(frozen=True)
class _Cost:
    """What one counted batch costs and holds."""

    model_flops: int
    hardware_flops: int
    samples: int
    tokens: int | None


def _count_notes(report: CountReport) -> list[str]:
    """What the count leaves out that a reader of the MFU must know."""
    notes = [] if report.backward_counted else ["the backward pass was not counted: model FLOPs are the forward only"]
    unsupported = unsupported_ops_note(report.unsupported_ops, "MFU is a lower bound")
    return notes + ([unsupported] if unsupported else [])


def _example_cost(report: CountReport, example: Any, tokens_per_sample: int | None) -> _Cost:
    """The counted step's FLOPs with the samples and tokens of its batch (the example's, else the report's)."""
    samples, tokens = (
        batch_size_and_tokens(example) if example is not None else (report.batch_size, _report_tokens(report))
    )
    samples = samples or report.batch_size
    if tokens_per_sample is not None:
        tokens = tokens_per_sample * samples
    return _Cost(report.total, report.total + report.recomputed, samples, tokens)


class ThroughputMeter:
    """Measures a training loop's throughput and MFU from FLOPs counted once, on meta, before the loop.

        meter = flopcalc.ThroughputMeter(model, example_batch, device_name="H100-SXM", calibration="auto")
        for batch in loader:
            train_step(batch)
            meter.step(batch_size=len(batch["input_ids"]))
            if step % 50 == 0:
                print(meter.reading())

    Build it with `from_model(model, example)` (the example batch is what the model is called with: a tuple of
    positional arguments, a dict of keyword arguments, or one tensor; `step=` gives a different training step
    such as `lambda model, batch: model(**batch).loss`), `from_spec(spec)` (a ModelSpec) or `from_report(report)`
    (a count you already have); `ThroughputMeter(model, example)` / `(spec=...)` / `(report=...)` is the same.
    Peaks: `peak_flops` (FLOP/s, given), the datasheet dense peak of `device_name` (default: the CUDA device the
    model is on) at `precision` (default: its fastest 16-bit one), and the measured peak of a `calibration` file
    (`flopcalc bench --save`; "auto" for the default file). `window` steps make the rolling figures; `sync=True`
    synchronises the CUDA device before each reading of the clock (exact per-step times, a slower loop).
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        example: Any = None,
        *,
        spec: ModelSpec | None = None,
        report: CountReport | None = None,
        step: StepFunction | None = None,
        device_name: str | None = None,
        precision: str | None = None,
        peak_flops: float | None = None,
        calibration: str | None = None,
        catalogs: Sequence[str] = (),
        window: int = 50,
        sync: bool = False,
        tokens_per_sample: int | None = None,
        clock: Callable[[], float] = time.perf_counter,
        detach: Sequence[Any] = (),
    ):
        given = [name for name, value in (("model", model), ("spec", spec), ("report", report)) if value is not None]
        if len(given) != 1:
            raise UsageError(
                "ThroughputMeter needs one of model (with an example batch), spec or report",
                f"got {', '.join(given) or 'none'}",
            )
        if model is not None and example is None:
            raise UsageError("ThroughputMeter(model) needs an example batch: what the model is called with")
        check_number(window, "window", whole=True, minimum=1, above=False)
        check_number(peak_flops, "peak_flops", optional=True)
        check_number(tokens_per_sample, "tokens_per_sample", whole=True, minimum=1, above=False, optional=True)
        self._model = model
        self._step_fn = step
        self._detach = tuple(detach)
        self._clock = clock
        self._sync = sync
        if report is None:
            report = (
                count_spec(spec) if spec is not None else count_training_step(model, example, step=step, detach=detach)
            )
        self.report = report
        notes = _count_notes(report)
        self._cost = _example_cost(report, example, tokens_per_sample)
        self._costs: dict[tuple, _Cost] = {} if example is None else {batch_shape_key(example): self._cost}
        self._cuda = (
            _cuda_device(model)
            if model is not None
            else (torch.cuda.current_device() if torch.cuda.is_available() else None)
        )
        detected = device_name or (torch.cuda.get_device_name(self._cuda) if self._cuda is not None else None)
        self.peaks, peak_notes = resolve_peaks(
            device_name=detected,
            gpu_given=device_name is not None,
            precision=precision,
            peak_flops=peak_flops,
            calibration=calibration,
            catalogs=catalogs,
        )
        self.device_name = detected
        self.notes: list[str] = [*notes, *peak_notes]
        self._said: set[str] = set()
        self._marks: deque[float] = deque(maxlen=window + 1)
        self._work: deque[tuple[float, float, float, float | None]] = deque(maxlen=window)
        self._totals = [0, 0.0, 0.0, 0.0, 0.0]  # steps, model FLOPs, hardware FLOPs, samples, tokens
        self._tokens_known = True
        self._started: float | None = None

    # -- the three ways in ------------------------------------------------------------------------------

    @classmethod
    def from_model(cls, model: nn.Module, example: Any, **options: Any) -> ThroughputMeter:
        """Count one training step of `model` on the `example` batch (on a meta copy) and meter it."""
        if model is None or example is None:
            raise UsageError(
                "from_model needs a model and an example batch: what the model is called with", field="example"
            )
        return cls(model, example, **options)

    @classmethod
    def from_spec(cls, spec: ModelSpec, **options: Any) -> ThroughputMeter:
        """Count a model source (a ModelSpec, through the one load pipeline) and meter it."""
        if not isinstance(spec, ModelSpec):
            raise ArgumentTypeError(f"spec must be a ModelSpec, got {type(spec).__name__}", field="spec")
        return cls(spec=spec, **options)

    @classmethod
    def from_report(cls, report: CountReport, **options: Any) -> ThroughputMeter:
        """Meter a step whose count you already have (`flopcalc.count(...)`)."""
        if not isinstance(report, CountReport):
            raise ArgumentTypeError(f"report must be a CountReport, got {type(report).__name__}", field="report")
        return cls(report=report, **options)

    # -- the loop ---------------------------------------------------------------------------------------

    @property
    def flops_per_step(self) -> int:
        """Counted model FLOPs (forward + backward) of the example batch."""
        return self._cost.model_flops

    def start(self) -> None:
        """Start the clock now (otherwise the first `step()` starts it, and that step is not timed)."""
        self._mark(self._now())

    def step(self, batch_size: int | None = None, tokens: int | None = None, *, batch: Any = None) -> None:
        """Record one training step that has just finished.

        - no arguments: a step on a batch like the example;
        - `batch_size` / `tokens`: FLOPs scale per sample, or per token when tokens are given and the example
          had token ids (a changed sequence length is then an approximation: attention grows with its square;
          said once in the notes);
        - `batch=`: the batch itself; a shape not seen before is counted on meta (once per shape) and exact.
        """
        check_number(batch_size, "batch_size", optional=True)
        check_number(tokens, "tokens", minimum=0, above=False, optional=True)
        now = self._now()
        if not self._marks:
            self._mark(now)
            return
        cost = self._cost_of(batch, batch_size, tokens)
        self._marks.append(now)
        self._work.append(cost)
        totals = self._totals
        totals[0] += 1
        totals[1] += cost[0]
        totals[2] += cost[1]
        totals[3] += cost[2]
        if cost[3] is None:
            self._tokens_known = False
        else:
            totals[4] += cost[3]

    def reading(self) -> MeterReading:
        """This rank's figures over the last `window` steps."""
        work = list(self._work)
        seconds = self._marks[-1] - self._marks[0] if len(self._marks) > 1 else 0.0
        tokens = None if any(w[3] is None for w in work) else sum(w[3] for w in work)
        return MeterReading(
            steps=len(work),
            seconds=seconds,
            samples=sum(w[2] for w in work),
            tokens=tokens,
            model_flops=sum(w[0] for w in work),
            hardware_flops=sum(w[1] for w in work),
            peaks=self.peaks,
            notes=tuple(self.notes),
        )

    def total(self) -> MeterReading:
        """This rank's figures over every step since the clock started."""
        steps, model_flops, hardware_flops, samples, tokens = self._totals
        seconds = self._marks[-1] - self._started if self._started is not None and self._marks else 0.0
        return MeterReading(
            steps=steps,
            seconds=seconds,
            samples=samples,
            tokens=tokens if self._tokens_known else None,
            model_flops=model_flops,
            hardware_flops=hardware_flops,
            peaks=self.peaks,
            notes=tuple(self.notes),
        )

    def fleet_reading(self, *, window: bool = True) -> MeterReading:
        """Every rank's figures summed under torch.distributed (a collective: call it on every rank).

        Counters are all-reduced: FLOPs, samples, tokens and each kind of peak are summed; the wall time is the
        slowest rank's (the fleet is as fast as it); steps are the ranks' mean. A peak kind that some rank lacks
        is left out. Without an initialised process group it is this rank's reading.
        """
        mine = self.reading() if window else self.total()
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return replace(mine, scope="fleet")
        world = dist.get_world_size()
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        by_kind = {peak.kind: peak for peak in mine.peaks}
        summed = [
            float(mine.steps),
            mine.samples,
            mine.tokens if mine.tokens is not None else 0.0,
            1.0 if mine.tokens is None else 0.0,
            mine.model_flops,
            mine.hardware_flops,
        ]
        for kind in PEAK_KINDS:
            summed += [by_kind[kind].flops if kind in by_kind else 0.0, 1.0 if kind in by_kind else 0.0]
        values = torch.tensor(summed, dtype=torch.float64, device=device)
        slowest = torch.tensor([mine.seconds], dtype=torch.float64, device=device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        numbers = values.tolist()
        steps, samples, tokens, tokenless, model_flops, hardware_flops = numbers[:6]
        peaks = []
        for index, kind in enumerate(PEAK_KINDS):
            flops, ranks = numbers[6 + 2 * index : 8 + 2 * index]
            if round(ranks) == world:
                label = by_kind[kind].label if kind in by_kind else kind
                peaks.append(Peak(kind, flops, f"{world} x {label}" if world > 1 else label))
        notes = list(mine.notes)
        missing = [kind for kind in by_kind if kind not in {p.kind for p in peaks}]
        if missing:
            notes.append(f"fleet MFU against {', '.join(missing)} left out: not every rank knows that peak")
        return MeterReading(
            steps=round(steps / world),
            seconds=float(slowest.item()),
            samples=samples,
            tokens=None if tokenless else tokens,
            model_flops=model_flops,
            hardware_flops=hardware_flops,
            peaks=tuple(peaks),
            scope="fleet",
            world_size=world,
            notes=tuple(notes),
        )

    # -- internals --------------------------------------------------------------------------------------

    def _now(self) -> float:
        if self._sync and self._cuda is not None:
            torch.cuda.synchronize(self._cuda)
        return self._clock()

    def _mark(self, now: float) -> None:
        self._marks.clear()
        self._work.clear()
        self._marks.append(now)
        if self._started is None:
            self._started = now

    def _say(self, note: str) -> None:
        if note not in self._said:
            self._said.add(note)
            self.notes.append(note)

    def _cost_of(
        self, batch: Any, batch_size: int | None, tokens: int | None
    ) -> tuple[float, float, float, float | None]:
        base = self._cost
        if batch is not None:
            key = batch_shape_key(batch)
            cost = self._costs.get(key)
            if cost is None:
                cost = self._costs[key] = self._recount(batch)
            base = cost
            if batch_size is None and tokens is None:
                return base.model_flops, base.hardware_flops, base.samples, base.tokens
        if tokens is not None and base.tokens:
            scale = tokens / base.tokens
            samples = batch_size if batch_size is not None else base.samples * scale
            if batch_size is not None and base.samples and tokens * base.samples != batch_size * base.tokens:
                self._say(
                    f"sequence length changed from {base.tokens // base.samples} tokens per sample: FLOPs "
                    "scaled per token, an approximation (attention grows with its square); pass batch= "
                    "to count each shape"
                )
            return base.model_flops * scale, base.hardware_flops * scale, samples, tokens
        if batch_size is not None:
            scale = batch_size / base.samples
            per_sample_tokens = None if base.tokens is None else base.tokens * scale
            return (
                base.model_flops * scale,
                base.hardware_flops * scale,
                batch_size,
                (tokens if tokens is not None else per_sample_tokens),
            )
        if tokens is not None:
            self._say("tokens given without a token count for the example: FLOPs are the example batch's")
        return base.model_flops, base.hardware_flops, base.samples, tokens if tokens is not None else base.tokens

    def _recount(self, batch: Any) -> _Cost:
        if self._model is None:
            raise UsageError("step(batch=...) needs a meter built from a model", "give batch_size= or tokens= instead")
        report = count_training_step(self._model, batch, step=self._step_fn, detach=self._detach)
        samples, tokens = batch_size_and_tokens(batch)
        self._say("a new batch shape was counted on meta (once per shape)")
        return _Cost(report.total, report.total + report.recomputed, samples or report.batch_size, tokens)


def _report_tokens(report: CountReport) -> int | None:
    """Tokens in a counted batch whose first input is token ids (integers, batch x sequence)."""
    if not report.inputs:
        return None
    first = report.inputs[0]
    if len(first.shape) == 2 and first.dtype.startswith(("int", "uint")):
        return first.shape[0] * first.shape[1]
    return None


def _cuda_device(model: nn.Module) -> int | None:
    for tensor in model.parameters():
        if tensor.device.type == "cuda":
            return tensor.device.index if tensor.device.index is not None else torch.cuda.current_device()
        return None
    return None
