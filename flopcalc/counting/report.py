"""Frozen results of a count. Plain data: no torch, so renderers and budgets import it cheaply."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import UnsupportedOpsError, short_error

SCHEMA_VERSION = 1

# Every FLOP falls in exactly one of these; order is the order tables show them in.
CATEGORIES: tuple[str, ...] = (
    "matmul",
    "conv",
    "attention",
    "norm",
    "activation",
    "elementwise",
    "pool",
    "reduction",
    "other",
)

# Categories whose FLOPs are multiply-adds counted as 2 each; `--unit mac` halves exactly these.
MULTIPLY_ADD_CATEGORIES = frozenset({"matmul", "conv", "attention"})

UNITS = ("flop", "mac")


def formula_flops(
    compute: Callable[[], Any], name: str, unsupported: Counter[str], formula_errors: dict[str, str]
) -> Any:
    """Run one op's formula; an op with no formula (None) or one that cannot read its arguments (the first message
    kept) is counted unsupported and gives None, never a guessed zero."""
    try:
        flops = compute()
    except Exception as error:
        formula_errors.setdefault(name, short_error(error))
        flops = None
    if flops is None:
        unsupported[name] += 1
    return flops


def listed_ops(ops: Mapping[str, int]) -> str:
    """`aten.foo x3, aten.bar x1`: ops and how often each ran, by name."""
    return ", ".join(f"{op} x{n}" for op, n in sorted(ops.items()))


def unsupported_ops_note(unsupported: Mapping[str, int], consequence: str | None = None) -> str | None:
    """The one wording of "these ops have no formula", with what that means where it is said (the meter: MFU is
    a lower bound); None when every op had one. Every command and the meter say it through here."""
    if not unsupported:
        return None
    return f"unsupported ops (no formula, not counted{'; ' + consequence if consequence else ''}): {listed_ops(unsupported)}"


def unsupported_ops_error(unsupported: Mapping[str, int]) -> UnsupportedOpsError:
    """What `strict=True` raises when an op had no formula."""
    return UnsupportedOpsError(
        f"ops without a FLOP formula: {listed_ops(unsupported)}", "drop strict to count them as unknown", field="strict"
    )


def _halve_multiply_adds(by_category: Mapping[str, int]) -> dict[str, int]:
    return {c: (v // 2 if c in MULTIPLY_ADD_CATEGORIES else v) for c, v in by_category.items()}


def _halve_skipped(by_category: Mapping[str, int] | None) -> dict[str, int] | None:
    return None if by_category is None else _halve_multiply_adds(by_category)


@dataclass(frozen=True)
class InputInfo:
    """One input tensor the model was called with; `name` is its keyword, None when passed positionally."""

    shape: tuple[int, ...]
    dtype: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def __str__(self) -> str:
        text = "x".join(map(str, self.shape)) + f" {self.dtype}"
        return text if self.name is None else f"{self.name}={text}"


@dataclass(frozen=True)
class LayerCount:
    """One module of the tree; its counts include everything its children ran."""

    name: str  # qualified name, "" for the root
    type: str  # class name
    depth: int  # 0 for the root
    params: int  # parameters of this module and its children, each counted once
    forward_by_category: Mapping[str, int]
    backward_by_category: Mapping[str, int]
    # with sparsity counted: the products with a zero weight, by category, that the effective figures leave out;
    # None when sparsity was not counted
    skipped_forward_by_category: Mapping[str, int] | None = None
    skipped_backward_by_category: Mapping[str, int] | None = None

    @property
    def forward(self) -> int:
        return sum(self.forward_by_category.values())

    @property
    def effective_forward(self) -> int:
        """Forward FLOPs less the products with a zero weight (the forward itself without sparsity counted)."""
        return self.forward - sum((self.skipped_forward_by_category or {}).values())

    @property
    def effective_backward(self) -> int:
        return self.backward - sum((self.skipped_backward_by_category or {}).values())

    @property
    def backward(self) -> int:
        return sum(self.backward_by_category.values())

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "depth": self.depth,
            "params": self.params,
            "forward": self.forward,
            "backward": self.backward,
            "forward_by_category": dict(self.forward_by_category),
            "backward_by_category": dict(self.backward_by_category),
            **(
                {"effective_forward": self.effective_forward, "effective_backward": self.effective_backward}
                if self.skipped_forward_by_category is not None
                else {}
            ),
        }


@dataclass(frozen=True)
class WeightSparsity:
    """The zeros of one weight that a matmul or convolution multiplies by, read from its values.

    `pattern` is the N:M structure the zeros form along the reduction dimension (each output's row of the
    weight as the GEMM sees it: `in_features` for a linear, `in_channels/groups x kernel` for a convolution):
    "2:4" when every group of 4 consecutive weights of a row holds at most 2 non-zeros, "4:8" likewise for
    groups of 8 (2:4 implies 4:8); None otherwise. `layout` is how the weight is stored: "strided" (dense),
    a torch sparse layout ("sparse_coo", "sparse_csr", ...) or "semi_structured" (2:4 compressed)."""

    name: str  # the parameter's qualified name, e.g. "fc1.weight"
    layer: str  # the module holding it
    shape: tuple[int, ...]
    zeros: int
    numel: int
    pattern: str | None = None
    layout: str = "strided"

    @property
    def zero_fraction(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layer": self.layer,
            "shape": list(self.shape),
            "zeros": self.zeros,
            "numel": self.numel,
            "zero_fraction": self.zero_fraction,
            "pattern": self.pattern,
            "layout": self.layout,
        }


def tree_ancestors(path: str, separator: str = ".") -> list[str]:
    """`a.b.c` -> ["", "a", "a.b", "a.b.c"]: the path itself and every layer that encloses it."""
    if not path:
        return [""]
    parts = path.split(separator)
    return [""] + [separator.join(parts[:i]) for i in range(1, len(parts) + 1)]


def build_layers(
    tree: Iterable[tuple[str, str, int]],
    forward: Mapping[str, Mapping[str, int]],
    backward: Mapping[str, Mapping[str, int]],
    separator: str = ".",
    skipped: tuple[Mapping[str, Mapping[str, int]], Mapping[str, Mapping[str, int]]] | None = None,
) -> tuple[LayerCount, ...]:
    """LayerCounts with inclusive counts: each layer's own FLOPs plus its descendants'.

    `tree` lists (name, type, params) in tree order, root ("") first; `forward`/`backward` map the name of
    the layer that ran an op to its FLOPs by category; names nest by `separator` (modules ".", ONNX "/").
    `skipped`, when sparsity was counted: the (forward, backward) FLOPs with a zero weight, mapped the same way."""
    tables = {"forward": forward, "backward": backward}
    if skipped is not None:
        tables.update({"skipped_forward": skipped[0], "skipped_backward": skipped[1]})
    inclusive: dict[str, dict[str, Counter[str]]] = {key: defaultdict(Counter) for key in tables}
    for key, own in tables.items():
        for path, counts in own.items():
            for ancestor in tree_ancestors(path, separator):
                inclusive[key][ancestor].update(counts)

    def by_category(key: str, name: str) -> dict[str, int] | None:
        if key not in inclusive:
            return None
        return {c: int(inclusive[key][name][c]) for c in CATEGORIES}

    return tuple(
        LayerCount(
            name=name,
            type=type_name,
            depth=0 if not name else name.count(separator) + 1,
            params=params,
            forward_by_category=by_category("forward", name) or {},
            backward_by_category=by_category("backward", name) or {},
            skipped_forward_by_category=by_category("skipped_forward", name),
            skipped_backward_by_category=by_category("skipped_backward", name),
        )
        for name, type_name, params in tree
    )


@dataclass(frozen=True)
class TransformerShape:
    """What the FLOP-per-token formulas quoted for transformers need, read from the model (its config and its
    embedding tables): layers L, query heads H, head dimension Q, and which parameters are embedding tables."""

    layers: int
    heads: int
    head_dim: int
    embedding_params: int = 0  # parameters of the token embedding table(s)
    position_embedding_params: int = 0  # other embedding tables: learned positions, token types
    tied_output: bool = False  # the token table is also the output projection (GPT-2, nanoGPT)
    source: str = ""  # where the figures came from, e.g. "config (gpt2)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": self.layers,
            "heads": self.heads,
            "head_dim": self.head_dim,
            "embedding_params": self.embedding_params,
            "position_embedding_params": self.position_embedding_params,
            "tied_output": self.tied_output,
            "source": self.source,
        }


@dataclass(frozen=True)
class ExpertLayer:
    """One mixture-of-experts layer's experts (counting/experts.py finds them): plain data, so a plan can split
    them over GPUs (expert parallelism) without the module tree."""

    name: str  # the experts module's qualified name
    num_experts: int
    top_k: int | None  # None: could not be read, every expert counted as active
    params: int  # expert parameters of the layer, all experts


@dataclass(frozen=True)
class CountReport:
    """What `flopcalc.count` found: per-layer forward/backward FLOPs, parameters, unsupported ops."""

    model: str
    inputs: tuple[InputInfo, ...]
    device: str
    layers: tuple[LayerCount, ...]  # layers[0] is the root; parents come before their children
    params: int
    param_bytes: int
    unsupported_ops: Mapping[str, int] = field(default_factory=dict)
    backward_counted: bool = True
    unit: str = "flop"
    notes: tuple[str, ...] = ()
    options: Mapping[str, object] = field(default_factory=dict)
    # forward FLOPs that activation checkpointing re-ran during the backward: hardware work, not model FLOPs
    recomputed_by_category: Mapping[str, int] = field(default_factory=dict)
    # L, H, Q of a transformer, when the model says them (its config): what the FLOP conventions need
    transformer: TransformerShape | None = None
    # parameters each token runs through: a mixture of experts uses top_k of its experts; None = all
    active_params: int | None = None
    # the mixture-of-experts layers, outermost first (empty for a dense model)
    expert_layers: tuple[ExpertLayer, ...] = ()

    # with `sparsity` counted: the zeros of every weight a matmul or convolution multiplied by; None = not counted
    sparsity: tuple[WeightSparsity, ...] | None = None

    @property
    def effective_forward(self) -> int:
        """Forward FLOPs less the products with a zero weight: equal to `forward` when sparsity was not counted."""
        return self.root.effective_forward

    @property
    def effective_backward(self) -> int:
        return self.root.effective_backward

    @property
    def effective_total(self) -> int:
        return self.effective_forward + self.effective_backward

    @property
    def sparse_pattern(self) -> str | None:
        """ "2:4" when every weight the matmuls and convolutions multiply by is 2:4 (what sparse tensor cores
        run at their sparse peak), else None; also None when sparsity was not counted or no weight was seen."""
        if not self.sparsity:
            return None
        return "2:4" if all(w.pattern == "2:4" for w in self.sparsity) else None

    @property
    def active(self) -> int:
        """Active parameters: `params` except for mixtures of experts (experts x top_k / num_experts)."""
        return self.params if self.active_params is None else self.active_params

    @property
    def root(self) -> LayerCount:
        return self.layers[0]

    @property
    def forward(self) -> int:
        return self.root.forward

    @property
    def backward(self) -> int:
        return self.root.backward

    @property
    def total(self) -> int:
        return self.forward + self.backward

    @property
    def recomputed(self) -> int:
        """FLOPs activation checkpointing re-ran in the backward: in hardware FLOPs (HFU), not in model FLOPs (MFU)."""
        return sum(self.recomputed_by_category.values())

    @property
    def forward_by_category(self) -> Mapping[str, int]:
        return self.root.forward_by_category

    @property
    def backward_by_category(self) -> Mapping[str, int]:
        return self.root.backward_by_category

    @property
    def batch_size(self) -> int:
        """Leading dimension of the first input: what per-example figures divide by."""
        if not self.inputs or not self.inputs[0].shape:
            return 1
        return int(self.inputs[0].shape[0])

    def in_unit(self, unit: str) -> CountReport:
        """The same report in `flop` (1 multiply-add = 2) or `mac` (multiply-add categories halved)."""
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}")
        if unit == self.unit:
            return self
        if self.unit != "flop":
            raise ValueError("convert from the flop report")
        layers = tuple(
            replace(
                layer,
                forward_by_category=_halve_multiply_adds(layer.forward_by_category),
                backward_by_category=_halve_multiply_adds(layer.backward_by_category),
                skipped_forward_by_category=_halve_skipped(layer.skipped_forward_by_category),
                skipped_backward_by_category=_halve_skipped(layer.skipped_backward_by_category),
            )
            for layer in self.layers
        )
        return replace(
            self, layers=layers, unit=unit, recomputed_by_category=_halve_multiply_adds(self.recomputed_by_category)
        )

    def layer(self, name: str) -> LayerCount:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of `flopcalc count --format json` (docs/json.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "inputs": [i.to_dict() for i in self.inputs],
            "unit": self.unit,
            "device": self.device,
            "backward_counted": self.backward_counted,
            "totals": {
                "forward": self.forward,
                "backward": self.backward,
                "total": self.total,
                "params": self.params,
                "active_params": self.active,
                "param_bytes": self.param_bytes,
                "forward_by_category": dict(self.forward_by_category),
                "backward_by_category": dict(self.backward_by_category),
                **({"recomputed": self.recomputed} if self.recomputed else {}),
                **(
                    {
                        "effective_forward": self.effective_forward,
                        "effective_backward": self.effective_backward,
                        "effective_total": self.effective_total,
                    }
                    if self.sparsity is not None
                    else {}
                ),
            },
            **(
                {"sparsity": {"pattern": self.sparse_pattern, "weights": [w.to_dict() for w in self.sparsity]}}
                if self.sparsity is not None
                else {}
            ),
            "layers": [layer.to_dict() for layer in self.layers],
            "unsupported_ops": dict(self.unsupported_ops),
            "notes": list(self.notes),
            "options": dict(self.options),
        }
