"""A second opinion: fvcore's FlopCountAnalysis and torch's FlopCounterMode on the same model and inputs.

`count --compare fvcore,torch` shows their totals (and per top-level module where they give it) next to
flopcalc's, in flopcalc's unit, by category, and names the known reason of each difference actually seen on
this model (docs/mfu.md, "A second opinion"). fvcore counts the forward only; FlopCounterMode also counts
the backward.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .api import count_spec, load
from .counting.report import CATEGORIES, MULTIPLY_ADD_CATEGORIES, CountReport
from .errors import UsageError, short_error
from .spec import CallArgs, ModelSpec

COUNTERS = ("fvcore", "torch")

# fvcore's handles that count multiply-adds (one per multiply-add): doubled to FLOPs
_FVCORE_PRODUCTS = {
    "addmm": "matmul",
    "linear": "matmul",
    "matmul": "matmul",
    "bmm": "matmul",
    "mm": "matmul",
    "einsum": "matmul",
    "baddbmm": "matmul",
    "conv": "conv",
    "_convolution": "conv",
}


@dataclass(frozen=True)
class CounterResult:
    """What one other counter said, in FLOP (1 multiply-add = 2) by flopcalc's categories."""

    name: str
    version: str
    forward_by_category: Mapping[str, int]
    backward_by_category: Mapping[str, int] | None  # None: the counter has no backward
    as_reported: int  # its own total, in its own unit
    reported_unit: str
    modules: Mapping[str, int] = field(default_factory=dict)  # top-level module -> forward FLOP
    skipped_ops: Mapping[str, int] = field(default_factory=dict)  # ops it had no handle for
    error: str | None = None
    note: str | None = None

    @property
    def forward(self) -> int:
        return sum(self.forward_by_category.values())

    @property
    def backward(self) -> int | None:
        return None if self.backward_by_category is None else sum(self.backward_by_category.values())


@dataclass(frozen=True)
class Difference:
    """A known reason a counter's figure differs from flopcalc's, seen on this model."""

    counter: str
    reason: str
    categories: tuple[str, ...]
    flopcalc: int  # flopcalc's FLOPs in those categories (and directions)
    other: int  # the counter's
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "counter": self.counter,
            "reason": self.reason,
            "categories": list(self.categories),
            "flopcalc": self.flopcalc,
            "other": self.other,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class Comparison:
    report: CountReport  # flopcalc's, in flop
    counters: tuple[CounterResult, ...]
    differences: tuple[Difference, ...]
    unit: str = "flop"

    def _in_unit(self, by_category: Mapping[str, int] | None) -> dict[str, int] | None:
        if by_category is None:
            return None
        return {
            c: (v // 2 if self.unit == "mac" and c in MULTIPLY_ADD_CATEGORIES else v) for c, v in by_category.items()
        }

    def in_unit(self, unit: str) -> Comparison:
        return Comparison(self.report, self.counters, self.differences, unit)

    def rows(self) -> list[dict[str, Any]]:
        """flopcalc and each counter: forward, backward, total, in this comparison's unit."""
        flopcalc = self.report.in_unit(self.unit)
        rows = [
            {
                "counter": "flopcalc",
                "forward": flopcalc.forward,
                "backward": flopcalc.backward if flopcalc.backward_counted else None,
            }
        ]
        for result in self.counters:
            forward = self._in_unit(result.forward_by_category)
            backward = self._in_unit(result.backward_by_category)
            rows.append(
                {
                    "counter": result.name,
                    "forward": sum(forward.values()) if not result.error else None,
                    "backward": None if backward is None or result.error else sum(backward.values()),
                }
            )
        for row in rows:
            row["total"] = None if row["forward"] is None else row["forward"] + (row["backward"] or 0)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The `compare` block of `count --format json` (docs/json.md)."""
        flopcalc = self.report.in_unit(self.unit)
        top = [layer for layer in flopcalc.layers if layer.depth == 1]
        counters = []
        for result in self.counters:
            modules = {name: (value // 2 if self.unit == "mac" else value) for name, value in result.modules.items()}
            counters.append(
                {
                    "name": result.name,
                    "version": result.version,
                    "error": result.error,
                    "as_reported": result.as_reported,
                    "reported_unit": result.reported_unit,
                    "forward": None if result.error else sum(self._in_unit(result.forward_by_category).values()),
                    "backward": None
                    if result.backward_by_category is None or result.error
                    else sum(self._in_unit(result.backward_by_category).values()),
                    "forward_by_category": self._in_unit(result.forward_by_category),
                    "backward_by_category": self._in_unit(result.backward_by_category),
                    "modules": modules,
                    "skipped_ops": dict(result.skipped_ops),
                    "note": result.note,
                }
            )
        return {
            "unit": self.unit,
            "flopcalc": {
                "forward": flopcalc.forward,
                "backward": flopcalc.backward,
                "modules": {layer.name: layer.forward for layer in top},
            },
            "counters": counters,
            "differences": [d.to_dict() for d in self.differences],
        }


def parse_counters(text: str) -> tuple[str, ...]:
    """`fvcore,torch` -> ("fvcore", "torch"); an unknown name is a UsageError."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in COUNTERS]
    if unknown or not names:
        raise UsageError(
            f"--compare {text!r}: unknown counter {', '.join(unknown) or '(none)'}",
            f"use one or more of {','.join(COUNTERS)}",
        )
    return names


def compare_spec(spec: ModelSpec, counters: Sequence[str] = COUNTERS, *, strict: bool = False) -> Comparison:
    """Count the spec with flopcalc, then run the other counters on the same model and inputs (loaded anew, on
    the device flopcalc's count ran on) and name the differences."""
    report = count_spec(spec, strict=strict)
    if report.device == "onnx":
        raise UsageError(
            "--compare runs PyTorch counters: an ONNX graph has no module to run",
            "compare the PyTorch model the graph came from",
        )
    results = []
    model_facts: dict[str, Any] = {}
    for name in counters:
        loaded, example = load(spec, report.device)  # anew for each: no counter sees another's leftovers
        model_facts = model_facts or _facts(loaded.module)
        runner = _run_fvcore if name == "fvcore" else _run_torch
        try:
            results.append(runner(loaded.module, example, spec))
        except Exception as error:  # a second opinion that cannot be had is said, not fatal
            results.append(
                _on_cpu(runner, spec, report, error)
                or CounterResult(name, _version(name), _all_categories({}), None, 0, "", error=short_error(error))
            )
    differences = tuple(d for result in results if not result.error for d in _differences(report, result, model_facts))
    return Comparison(report, tuple(results), differences)


# --------------------------------------------------------------------------------------------- runners

# a counter that cannot run on meta (fvcore's tracer and some convolutions) reruns on the CPU up to this size. Not
# the memory guard of `api.check_fits_in_memory` (which only stops an OS kill): a second opinion should cost
# seconds, and a model this size already takes a real forward and backward on the CPU to get it.
CPU_RETRY_MAX_PARAM_BYTES = 2 * 1024**3


def _on_cpu(runner: Any, spec: ModelSpec, report: CountReport, error: Exception) -> CounterResult | None:
    """The counter's result on the CPU when it failed on meta and the weights are small enough; else None."""
    if report.device != "meta" or report.param_bytes > CPU_RETRY_MAX_PARAM_BYTES:
        return None
    try:
        loaded, example = load(spec, "cpu")
        result = runner(loaded.module, example, spec)
    except Exception:
        return None
    return replace(result, note=f"ran on cpu: on meta it failed ({short_error(error)})")


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fvcore" if name == "fvcore" else "torch")
    except PackageNotFoundError:
        return "not installed"


def _as_call(inputs: Any) -> tuple[tuple, dict]:
    call = CallArgs.of(inputs)  # positional, keyword, or both (named --inputs)
    return call.args, dict(call.kwargs)


def _run_fvcore(module: Any, inputs: Any, spec: ModelSpec) -> CounterResult:
    from fvcore.nn import FlopCountAnalysis

    args, kwargs = _as_call(inputs)
    if kwargs:
        raise UsageError("fvcore traces positional inputs only; this model takes keyword inputs")
    analysis = FlopCountAnalysis(module, args)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            by_operator = dict(analysis.by_operator())
            by_module_op = {name: dict(ops) for name, ops in analysis.by_module_and_operator().items()}
            skipped = dict(analysis.unsupported_ops())
        finally:
            logging.disable(logging.NOTSET)
    forward: dict[str, int] = defaultdict(int)
    for op, value in by_operator.items():
        category = _FVCORE_PRODUCTS.get(op) or _fvcore_category(op)
        forward[category] += value * (2 if op in _FVCORE_PRODUCTS else 1)
    modules = {
        name: sum(v * (2 if op in _FVCORE_PRODUCTS else 1) for op, v in ops.items())
        for name, ops in by_module_op.items()
        if name and "." not in name
    }
    return CounterResult(
        "fvcore",
        _version("fvcore"),
        _all_categories(forward),
        None,
        sum(by_operator.values()),
        "fvcore flops (one per multiply-add)",
        modules,
        {op.replace("aten::", "aten."): n for op, n in skipped.items()},
    )


def _fvcore_category(op: str) -> str:
    """fvcore's other handles: norms, upsampling, pooling."""
    if "norm" in op:
        return "norm"
    if "pool" in op:
        return "pool"
    return "other"


def _run_torch(module: Any, inputs: Any, spec: ModelSpec) -> CounterResult:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .counting.counter import apply_frozen, backward_roots  # the count's own freezing and backward roots

    args, kwargs = _as_call(inputs)
    frozen = apply_frozen(module, spec.frozen)
    try:
        with torch.enable_grad():
            with FlopCounterMode(display=False) as forward_mode:
                output = module(*args, **kwargs)
            roots = backward_roots(output)
            backward_counts: dict = {}
            if spec.backward and roots:
                with FlopCounterMode(display=False) as backward_mode:
                    torch.autograd.backward(roots, [torch.ones_like(t) for t in roots])
                backward_counts = backward_mode.get_flop_counts().get("Global", {})
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    counts = forward_mode.get_flop_counts()
    forward = _torch_by_category(counts.get("Global", {}))
    root = type(module).__name__
    modules = {
        name[len(root) + 1 :]: int(sum(ops.values()))
        for name, ops in counts.items()
        if name.startswith(root + ".") and name.count(".") == 1
    }
    backward = _torch_by_category(backward_counts) if spec.backward else None
    total = sum(forward.values()) + sum((backward or {}).values())
    return CounterResult("torch", _version("torch"), forward, backward, total, "FLOP (one multiply-add = 2)", modules)


def _torch_by_category(counts: Mapping[Any, int]) -> dict[str, int]:
    by_category: dict[str, int] = defaultdict(int)
    for op, value in counts.items():
        name = getattr(op, "__name__", str(op)).split(".")[-1]
        category = "attention" if "attention" in name else "conv" if "conv" in name else "matmul"
        by_category[category] += int(value)
    return _all_categories(by_category)


def _all_categories(values: Mapping[str, int]) -> dict[str, int]:
    return {c: int(values.get(c, 0)) for c in CATEGORIES}


def _facts(module: Any) -> dict[str, Any]:
    """What the difference rules need to know about the model: its grouped convolutions."""
    grouped = [name for name, m in module.named_modules() if getattr(m, "groups", 1) > 1 and hasattr(m, "kernel_size")]
    return {"grouped_convs": grouped}


# --------------------------------------------------------------------------------------------- reasons


def _differences(report: CountReport, result: CounterResult, facts: Mapping[str, Any]) -> list[Difference]:
    """Every known reason the other counter's figure differs from ours, each with both figures."""
    found: list[Difference] = []

    def add(reason, categories, ours, other, explanation):
        found.append(Difference(result.name, reason, tuple(categories), int(ours), int(other), explanation))

    if result.name == "fvcore":
        _fvcore_differences(report, result, add)
    else:
        _flop_counter_differences(report, result, facts, add)
    return found


def _fvcore_differences(report: CountReport, result: CounterResult, add) -> None:
    """fvcore: multiply-adds counted once, forward only, no attention handle, no elementwise ops."""
    fwd, bwd = report.forward_by_category, report.backward_by_category
    theirs_fwd = result.forward_by_category
    products = [c for c in ("matmul", "conv") if theirs_fwd[c]]
    if products:
        reported = sum(theirs_fwd[c] for c in products) // 2
        add(
            "multiply_add_once",
            products,
            sum(fwd[c] for c in products),
            reported,
            f"fvcore counts a multiply-add as one flop: it reported {reported:,} for "
            f"{' and '.join(products)}, {sum(theirs_fwd[c] for c in products):,} in FLOP (x2, shown)",
        )
    if report.backward_counted and report.backward:
        add(
            "forward_only",
            [c for c in CATEGORIES if bwd[c]],
            report.backward,
            0,
            "fvcore counts the forward pass only: flopcalc's backward has nothing to compare with",
        )
    if fwd["attention"] and not theirs_fwd["attention"]:
        add(
            "no_attention_handle",
            ["attention"],
            fwd["attention"],
            0,
            "fvcore has no handle for scaled_dot_product_attention: the attention products are skipped",
        )
    skipped = {op: n for op, n in result.skipped_ops.items() if "attention" not in op}
    missing = [c for c in ("norm", "activation", "elementwise", "pool", "reduction", "other") if fwd[c] > theirs_fwd[c]]
    if missing:
        reasons = ["it ignores elementwise ops and activations by design"]
        if skipped:
            reasons.append("it has no handle for " + ", ".join(f"{op} x{n}" for op, n in sorted(skipped.items())))
        if fwd["elementwise"] and products:
            reasons.append("its linear and convolution handles leave out the bias adds")
        add(
            "no_handle",
            missing,
            sum(fwd[c] for c in missing),
            sum(theirs_fwd[c] for c in missing),
            "fvcore counts none of flopcalc's " + ", ".join(missing) + " FLOPs: " + "; ".join(reasons),
        )


def _flop_counter_differences(report: CountReport, result: CounterResult, facts: Mapping[str, Any], add) -> None:
    """torch.utils.flop_counter.FlopCounterMode: products only, grouped-conv backward, attention on meta."""
    fwd, bwd = report.forward_by_category, report.backward_by_category
    theirs_fwd, theirs_bwd = result.forward_by_category, result.backward_by_category
    others = [c for c in ("norm", "activation", "elementwise", "pool", "reduction", "other") if fwd[c] or bwd[c]]
    if others:
        add(
            "products_only",
            others,
            sum(fwd[c] + bwd[c] for c in others),
            0,
            "FlopCounterMode counts matrix products, convolutions and attention kernels only; flopcalc also counts "
            + ", ".join(others)
            + " (bias adds included)",
        )
    if theirs_bwd is not None and facts.get("grouped_convs") and theirs_bwd["conv"] > bwd["conv"]:
        add(
            "conv_groups_backward",
            ["conv"],
            bwd["conv"],
            theirs_bwd["conv"],
            "FlopCounterMode ignores `groups` in the convolution backward (the weight gradient is counted as a dense "
            f"convolution): {theirs_bwd['conv'] - bwd['conv']:,} FLOP too many, from the grouped convolution(s) "
            + ", ".join(facts["grouped_convs"]),
        )
    attention_seen = fwd["attention"] + bwd["attention"]
    theirs_attention = theirs_fwd["attention"] + (theirs_bwd["attention"] if theirs_bwd else 0)
    if attention_seen and not theirs_attention:
        extra = theirs_fwd["matmul"] + (theirs_bwd["matmul"] if theirs_bwd else 0) - fwd["matmul"] - bwd["matmul"]
        if report.device == "meta" and extra > 0:
            add(
                "attention_as_matmul",
                ["attention", "matmul"],
                attention_seen,
                extra,
                "on the meta device scaled_dot_product_attention runs as its math decomposition: FlopCounterMode "
                "counts its products as bmm (matmul), flopcalc as the attention call",
            )
        else:
            add(
                "fused_attention_uncounted",
                ["attention"],
                attention_seen,
                0,
                f"FlopCounterMode has no formula for the fused attention kernel run on {report.device}: attention "
                "is not in its figure",
            )
    if report.options.get("causal_half") and attention_seen:
        add(
            "causal_half",
            ["attention"],
            attention_seen,
            theirs_attention,
            "flopcalc counted causal attention over the lower triangle (--causal-half); FlopCounterMode counts the "
            "full square",
        )
