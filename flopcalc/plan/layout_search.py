"""`search`: the fastest layouts of a fleet that fit, and why the others fail.

The space is bounded before it is walked: tp, pp and dp are divisors (from prime factors, so a billion GPUs have
100 candidates, not a billion), and memory grows with the micro-batch, so a bisection over the micro-batch's
divisors finds those that fit without trying the rest; at most MICRO_BATCHES_PER_SETTING of them are evaluated
per setting, spread from the smallest to the largest, with an assumption saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from ..errors import UsageError
from ..units import GIB
from .assumptions import assumptions
from .checks import positive_int
from .context import LONG_SEQUENCE, has_attention
from .divisors import LARGEST_COUNT, divisors
from .evaluation import LayoutFigures, evaluate, layout_assumptions, layout_figures
from .hardware import Fleet
from .layout import RECOMPUTE, ZERO_STAGES, Layout
from .memory import layout_memory
from .model import PlanModel
from .precision import TrainingPrecision, check_optimizer, training_precision
from .result import SearchResult
from .sharding import fsdp_setting
from .totals import RunSize

DEFAULT_TOP = 10
MICRO_BATCHES_PER_SETTING = 64  # fitting micro-batches evaluated per tp x pp x ZeRO x recompute
LISTED_VALUES = 8  # values named per rejection line; more are elided with their count


def _tp_rule(model: PlanModel, tp: int, gpus_per_node: int) -> str | None:
    """Why tensor parallelism of `tp` cannot be used, or None."""
    if tp == 1:
        return None
    if tp > gpus_per_node or gpus_per_node % tp:
        return f"tensor parallelism stays inside a node of {gpus_per_node} GPUs"
    if not model.blocks:
        return "the model shows no repeated blocks to split"
    if not model.heads:
        return "the model's attention heads are unknown (give --heads)"
    if model.heads % tp or (model.kv_heads and model.kv_heads % tp):
        kv = f" / {model.kv_heads} key-value" if model.kv_heads and model.kv_heads != model.heads else ""
        return f"does not divide the {model.heads}{kv} heads"
    return None


_divisors = lru_cache(maxsize=256)(divisors)


@dataclass
class _Search:
    """One search's fixed inputs and what it has found so far."""

    model: PlanModel
    fleet: Fleet
    setup: TrainingPrecision
    optimizer: str
    run: RunSize | None
    global_batch: int
    fixed: dict[str, Any]
    rejected: dict[str, dict[str, None]] = field(default_factory=dict)  # reason -> the values it rules out
    families: dict[tuple[int, int, int], list[tuple[float, Layout]]] = field(default_factory=dict)
    fitting: list[tuple[tuple[float, ...], Layout, LayoutFigures]] = field(default_factory=list)
    evaluated: int = 0
    capped: int = 0  # settings where more micro-batches fit than were evaluated
    capacity_factor: float = 1.0  # of the all-to-alls, when expert parallelism is tried
    fsdp: str | None = None  # an FSDP name pinned: its ZeRO stage is pinned too, hybrid shards inside a node

    def reject(self, reason: str, value: str) -> None:
        self.rejected.setdefault(reason, {})[value] = None

    def families_of(self, num_gpus: int):
        """(tp, pp, cp, dp) with tp inside a node dividing the heads, pp dividing the layers, cp splitting long
        sequences (plan/context.py), dp the global batch."""
        gpn, blocks, fixed = self.fleet.gpus_per_node, self.model.blocks, self.fixed
        for tp in _divisors(num_gpus):
            reason = _tp_rule(self.model, tp, gpn)
            if reason or fixed.get("tp", tp) != tp:
                if reason and "tp" not in fixed:
                    self.reject(reason, f"tp={tp}")
                continue
            for pp in _divisors(num_gpus // tp):
                if fixed.get("pp", pp) != pp or pp > max(blocks, 1):
                    continue
                if pp > 1 and blocks % pp:
                    self.reject(f"does not divide the {blocks} layers", f"pp={pp}")
                    continue
                for cp in self.context_splits(num_gpus // (tp * pp)):
                    dp = num_gpus // (tp * pp * cp)
                    if fixed.get("dp", dp) != dp:
                        continue
                    if self.global_batch % dp:
                        where = f"tp={tp} pp={pp}" + (f" cp={cp}" if cp > 1 else "")
                        self.reject(f"does not divide the global batch {self.global_batch}", f"dp={dp} ({where})")
                        continue
                    yield tp, pp, cp, dp

    def context_splits(self, gpus: int) -> list[int]:
        """cp 1, and for sequences of LONG_SEQUENCE tokens or more with attention, each cp that splits them into
        2 x cp chunks; a pinned --cp only."""
        if "cp" in self.fixed:
            return [self.fixed["cp"]] if gpus % self.fixed["cp"] == 0 else []
        tokens = self.model.tokens_per_example or 0
        if tokens < LONG_SEQUENCE or not has_attention(self.model):
            return [1]
        return [cp for cp in _divisors(gpus) if tokens % (2 * cp) == 0]

    def expert_splits(self, dp: int) -> list[int]:
        """ep 1, and for a mixture of experts each ep dividing dp and every layer's experts; a pinned --ep only."""
        if "ep" in self.fixed:
            return [self.fixed["ep"]] if dp % self.fixed["ep"] == 0 else []
        if not self.model.experts or any(layer.top_k is None for layer in self.model.experts):
            return [1]
        return [ep for ep in _divisors(dp) if all(layer.num_experts % ep == 0 for layer in self.model.experts)]

    def settings(self, dp: int):
        """The ZeRO stages and recomputations worth trying (selective only when there are scores to drop)."""
        scores = self.model.activations.block_scores.floating_elements
        for zero in ZERO_STAGES:
            if self.fixed.get("zero", zero) != zero or (zero and dp == 1 and "zero" not in self.fixed):
                continue
            for recompute in RECOMPUTE:
                if (recompute != "selective" or scores) and self.fixed.get("recompute", recompute) == recompute:
                    yield zero, recompute

    def try_micro_batches(self, tp: int, pp: int, dp: int, zero: int, recompute: str, ep: int = 1, cp: int = 1) -> None:
        """Bisect the micro-batches (memory grows with them) for those that fit; evaluate those, and keep the
        smallest that does not fit for the family's closest miss."""
        choices = [mb for mb in _divisors(self.global_batch // dp) if self.fixed.get("micro_batch", mb) == mb]
        capacity = self.fleet.usable_memory_bytes  # the reserve is never the model's

        _, shard_group = fsdp_setting(self.fsdp, None, dp=dp, tp=tp, cp=cp, gpus_per_node=self.fleet.gpus_per_node)

        def layout(index: int) -> Layout:
            return Layout(
                dp,
                tp,
                pp,
                zero,
                recompute,
                tp > 1,
                choices[index],
                self.global_batch,
                self.fleet.gpus_per_node,
                ep=ep,
                cp=cp,
                capacity_factor=self.capacity_factor,
                fsdp=self.fsdp,
                shard_group=shard_group,
            )

        probed: set[int] = set()

        def memory(index: int) -> float:
            probed.add(index)
            return layout_memory(self.model, layout(index), self.setup, self.optimizer).total

        low, high = 0, len(choices)
        while low < high:
            middle = (low + high) // 2
            low, high = (middle + 1, high) if memory(middle) <= capacity else (low, middle)
        if low < len(choices):
            self.families[(tp, pp, cp)].append((memory(low), layout(low)))
        tried = _spread(low, MICRO_BATCHES_PER_SETTING)
        self.capped += len(tried) < low
        for index in tried:
            chosen = layout(index)
            figures = layout_figures(self.model, chosen, self.fleet, self.setup, self.optimizer, self.run)
            self.fitting.append((_rank(chosen, figures), chosen, figures))
        self.evaluated += len(probed | set(tried))


RANK_DIGITS = 6  # step times equal to 6 significant digits tie, and the next criteria decide
RECOMPUTE_ORDER = {name: index for index, name in enumerate(RECOMPUTE)}


def _rank(layout: Layout, figures: LayoutFigures) -> tuple[float, ...]:
    """Faster first (wall clock, else step time); on a tie the larger micro-batch; then the simpler layout: fewer
    GPUs sharding each layer (tp x pp, then pp), a lower ZeRO stage, less recomputation. Memory never ranks."""
    speed = figures.training.wall_clock_s if figures.training else figures.step.step_s
    return (
        float(f"{speed:.{RANK_DIGITS}g}"),
        -layout.micro_batch,
        layout.tp * layout.pp,
        layout.pp,
        layout.zero,
        RECOMPUTE_ORDER[layout.recompute],
    )


def _spread(count: int, most: int) -> list[int]:
    """range(count), or `most` indices spread evenly over it, first and last included."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _listed(values: list[str]) -> str:
    if len(values) <= LISTED_VALUES:
        return "/".join(values)
    return "/".join([*values[: LISTED_VALUES - 2], "...", values[-1]]) + f" ({len(values)} values)"


def search(
    model: PlanModel,
    fleet: Fleet,
    num_gpus: int,
    *,
    global_batch: int,
    precision: str = "bf16",
    optimizer: str = "adamw",
    run: RunSize | None = None,
    fixed: dict[str, Any] | None = None,
    top: int = DEFAULT_TOP,
    capacity_factor: float = 1.0,
) -> SearchResult:
    """Every dp x tp x pp x ZeRO x recompute x micro-batch layout of `num_gpus` GPUs, tensor parallelism inside a
    node and dividing the heads, pipeline stages dividing the layers; keep what fits, fastest first.

    `fixed` pins dimensions (`{"tp": 8}`); sequence parallelism is on whenever tp > 1 (it only saves memory).
    Layouts rank by wall clock (by step time without a training size), then the larger micro-batch, then the
    simpler layout (`_rank`); what fits is judged against the GPU's memory less the fleet's reserve.
    """
    setup = training_precision(precision)
    check_optimizer(optimizer)
    for value, flag in ((num_gpus, "--num-gpus"), (global_batch, "--global-batch"), (top, "--top")):
        if positive_int(value, flag) > LARGEST_COUNT:
            raise UsageError(
                f"{flag} {value:.4g} is more than 2^53, the largest whole number a float holds exactly",
                f"give {flag} up to 9e15",
            )
    if model.activations is None:
        raise UsageError(
            "--search needs the activations to tell what fits",
            "give a model, or --seq-len with --layers, --hidden and --heads (and --params)",
        )
    pinned = {key: value for key, value in (fixed or {}).items() if key != "fsdp"}
    fsdp = (fixed or {}).get("fsdp")
    if fsdp is not None:  # the stage it names is pinned; the shard group follows each layout
        stage, _ = fsdp_setting(fsdp, pinned.get("zero"), dp=1, tp=1, cp=1, gpus_per_node=fleet.gpus_per_node)
        pinned["zero"] = stage
    state = _Search(
        model, fleet, setup, optimizer, run, int(global_batch), pinned, capacity_factor=capacity_factor, fsdp=fsdp
    )
    for tp, pp, cp, dp in state.families_of(int(num_gpus)):
        state.families.setdefault((tp, pp, cp), [])
        for ep in state.expert_splits(dp):
            for zero, recompute in state.settings(dp * cp):
                state.try_micro_batches(tp, pp, dp, zero, recompute, ep, cp)
    return _result(state, int(num_gpus), precision, int(top))


def _result(state: _Search, num_gpus: int, precision: str, top: int) -> SearchResult:
    """The fitting layouts ranked, the rejections in words, and the closest miss when nothing fits."""
    model, fleet = state.model, state.fleet
    state.fitting.sort(key=lambda item: item[0])
    lines = [f"{_listed(list(values))}: {reason}" for reason, values in state.rejected.items()]
    fits_by_family = {(layout.tp, layout.pp, layout.cp) for _, layout, _ in state.fitting}
    closest: tuple[float, Layout] | None = None
    for (tp, pp, cp), tried in state.families.items():
        if (tp, pp, cp) in fits_by_family or not tried:
            continue
        need, layout = min(tried, key=lambda item: item[0])
        if closest is None or need < closest[0]:
            closest = (need, layout)
        lines.append(
            f"tp={tp} pp={pp}{f' cp={cp}' if cp > 1 else ''}: {need / GIB:.3g} GiB > {fleet.usable_memory_bytes / GIB:.3g} GiB at best "
            f"(dp {layout.dp}, ZeRO-{layout.zero}, recompute {layout.recompute}, micro-batch {layout.micro_batch})"
        )
    common = assumptions(model, fleet, state.setup, state.optimizer, num_gpus)
    if num_gpus > 1:
        common += (
            "the search turns sequence parallelism on whenever tp > 1: it splits activations at no extra "
            "communication volume",
        )
    if state.capped:
        common += (
            f"where more than {MICRO_BATCHES_PER_SETTING} micro-batches fit one tp x pp x ZeRO x recompute "
            f"setting ({state.capped} settings), {MICRO_BATCHES_PER_SETTING} of them were evaluated, spread "
            "from the smallest to the largest: pin --micro-batch to evaluate another",
        )
    candidates = tuple(
        figures.plan(model, layout, fleet, common + layout_assumptions(model, layout, fleet, state.setup))
        for _, layout, figures in state.fitting[:top]
    )
    closest_plan = None
    if not candidates and closest is not None:
        closest_plan = evaluate(model, closest[1], fleet, precision=precision, optimizer=state.optimizer, run=state.run)
        closest_plan = replace(
            closest_plan, assumptions=common + layout_assumptions(model, closest[1], fleet, state.setup)
        )
    fitting = tuple(
        (figures.step.step_s, figures.memory.total) for _, _, figures in state.fitting if figures.step is not None
    )
    return SearchResult(candidates, tuple(lines), state.evaluated, closest_plan, fitting)
