"""The FLOP-per-token formulas people quote for transformers, next to the count (docs/mfu.md).

An MFU is only comparable with another when both count the same FLOPs. Papers and trainers use formulas:
Kaplan's 6N, PaLM's 6N + 12·L·H·Q·T (nanoGPT's estimate_mfu), the same with the attention term halved for
the causal mask (MaxText), torchtitan's variant with the embedding tables left out of N. This module computes
each from the counted model's shape and parameters, and says where and by how much each differs from the
count. No torch here: it reads the report and, for detection, the model's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .compute import step_flops
from .counting.report import CountReport, TransformerShape
from .units import format_si

_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads", "n_heads")
_WIDTH_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
_NOT_PRODUCTS = ("norm", "activation", "elementwise", "pool", "reduction", "other")


def _first_int(config: Any, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def detect_transformer(model: Any) -> TransformerShape | None:
    """L, H, Q from the model's `config` (a Hugging Face config, nanoGPT's GPTConfig, or any object that names
    them the usual ways), and the parameters of its embedding tables; None when it says no such thing."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    if callable(getattr(config, "get_text_config", None)):
        config = config.get_text_config()
    layers, heads = _first_int(config, _LAYER_KEYS), _first_int(config, _HEAD_KEYS)
    if layers is None or heads is None:
        return None
    head_dim = _first_int(config, ("head_dim",))
    width = _first_int(config, _WIDTH_KEYS)
    if head_dim is None and width is not None and width % heads == 0:
        head_dim = width // heads
    if head_dim is None:
        return None
    token, other, tied = _embedding_tables(model, getattr(config, "vocab_size", None))
    name = getattr(config, "model_type", None) or type(config).__name__
    return TransformerShape(layers, heads, head_dim, token, other, tied, f"the model's config ({name})")


def _embedding_tables(model: Any, vocab: Any) -> tuple[int, int, bool]:
    """Parameters of the token table(s) (as many rows as the vocabulary) and of the other tables (positions,
    token types), each table once; and whether a token table is also a linear layer's weight (tied)."""
    modules = list(model.modules()) if callable(getattr(model, "modules", None)) else []
    linear_weights = {id(m.weight) for m in modules if hasattr(m, "in_features") and hasattr(m, "weight")}
    seen: set[int] = set()
    token = other = 0
    tied = False
    for module in modules:
        rows, weight = getattr(module, "num_embeddings", None), getattr(module, "weight", None)
        if not isinstance(rows, int) or weight is None or id(weight) in seen:
            continue
        seen.add(id(weight))
        if rows == vocab or vocab is None and not token:
            token += weight.numel()
            tied = tied or id(weight) in linear_weights
        else:
            other += weight.numel()
    return token, other, tied


@dataclass(frozen=True)
class Convention:
    """One quoted formula: its figure per token (forward + backward), its parts, and how it differs."""

    key: str
    name: str
    formula: str
    source: str
    params: int  # the N it uses
    parameter_term: int  # 6 x N
    attention_term: int  # 12·L·H·Q·T, its half, or 0
    differences: tuple[str, ...]

    @property
    def flops_per_token(self) -> int:
        return self.parameter_term + self.attention_term

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "formula": self.formula,
            "source": self.source,
            "params": self.params,
            "parameter_term": self.parameter_term,
            "attention_term": self.attention_term,
            "flops_per_token": self.flops_per_token,
            "differences": list(self.differences),
        }


@dataclass(frozen=True)
class ConventionsTable:
    """The counted FLOPs per token next to each convention, for one counted transformer."""

    shape: TransformerShape
    seq_len: int
    tokens: int  # tokens in the counted batch
    params: int
    counted_per_token: float
    counted_products_per_token: float  # matmul + conv: the parameters' products
    counted_attention_per_token: float
    counted_other_per_token: float  # norms, activations, elementwise, losses, ...
    causal_half: bool
    conventions: tuple[Convention, ...]

    def to_dict(self) -> dict[str, Any]:
        """The `conventions` block of `count`/`train --format json` (docs/json.md)."""
        return {
            "shape": {**self.shape.to_dict(), "seq_len": self.seq_len},
            "params": self.params,
            "tokens_counted": self.tokens,
            "counted": {
                "flops_per_token": self.counted_per_token,
                "matmul_per_token": self.counted_products_per_token,
                "attention_per_token": self.counted_attention_per_token,
                "other_per_token": self.counted_other_per_token,
                "causal_half": self.causal_half,
            },
            "conventions": [c.to_dict() for c in self.conventions],
        }


def palm_attention_per_token(layers: int, heads: int, head_dim: int, seq_len: int) -> int:
    """PaLM's attention term per token, 12·L·H·Q·T: the T x T scores and their weighted sum, forward and backward."""
    return 12 * layers * heads * head_dim * seq_len


def palm_flops_per_token(
    params: int, layers: int, heads: int, head_dim: int, seq_len: int, *, causal: bool = False
) -> int:
    """PaLM's model FLOPs per token (Chowdhery et al. 2022, App. B): 6N + 12·L·H·Q·T; `causal` halves the
    attention term (the lower triangle of the T x T scores)."""
    attention = palm_attention_per_token(layers, heads, head_dim, seq_len)
    return 6 * params + (attention // 2 if causal else attention)


def _sequence_length(report: CountReport) -> tuple[int, int] | None:
    """(tokens per sample, tokens in the batch) when the first input is token ids (integers, batch x seq)."""
    if not report.inputs:
        return None
    first = report.inputs[0]
    if len(first.shape) != 2 or not first.dtype.startswith(("int", "uint")):
        return None
    return first.shape[1], first.shape[0] * first.shape[1]


@dataclass(frozen=True)
class _Quoted:
    """One published formula as quoted: what its N keeps and how much of PaLM's attention term it adds."""

    key: str
    name: str
    formula: str
    source: str
    includes: str  # the embedding table its N keeps: "token" (position tables out) or "none" (every table out)
    attention_divisor: int  # 0: no attention term; 1: PaLM's 12·L·H·Q·T; 2: its half


_QUOTED = (
    _Quoted(
        "kaplan_6n",
        "6N",
        "6 x N, N = parameters less every embedding table",
        "Kaplan et al. 2020, Scaling Laws for Neural Language Models, sec. 2.1",
        "none",
        0,
    ),
    _Quoted(
        "palm",
        "6N + 12LHQT",
        "6 x N + 12 x L x H x Q x T, N = parameters less position tables",
        "PaLM (Chowdhery et al. 2022, app. B); nanoGPT's estimate_mfu",
        "token",
        1,
    ),
    _Quoted(
        "palm_causal",
        "6N + 6LHQT",
        "6 x N + 6 x L x H x Q x T: PaLM's attention term halved",
        "MaxText's MFU (attention halved for the causal mask, 2025)",
        "token",
        2,
    ),
    _Quoted(
        "torchtitan",
        "6(N-E) + 12LHQT",
        "6 x (N - embedding tables) + 12 x L x H x Q x T",
        "torchtitan (get_nparams_and_flops: nn.Embedding parameters out of N, no causal halving)",
        "none",
        1,
    ),
)


def conventions_for(report: CountReport) -> ConventionsTable | None:
    """The conventions table of a counted transformer (its shape known, its input token ids), else None."""
    shape = report.transformer
    lengths = _sequence_length(report)
    if shape is None or lengths is None or report.unit != "flop":
        return None
    seq_len, tokens = lengths
    counted = _counted_per_token(report, seq_len, tokens)
    full = palm_attention_per_token(shape.layers, shape.heads, shape.head_dim, seq_len)
    n_all = report.params
    n_keeping = {
        "token": n_all - shape.position_embedding_params,
        "none": n_all - shape.embedding_params - shape.position_embedding_params,
    }
    rows = tuple(_convention(quoted, shape, counted, n_keeping[quoted.includes], full) for quoted in _QUOTED)
    return ConventionsTable(
        shape,
        seq_len,
        tokens,
        n_all,
        counted.total,
        counted.products,
        counted.attention,
        counted.other,
        counted.causal_half,
        rows,
    )


def _counted_per_token(report: CountReport, seq_len: int, tokens: int) -> _Counted:
    """The counted step's FLOPs per token, whole and by part (a forward-only count x3 part by part, as
    step_flops assumes for the whole)."""
    forward, backward, _ = step_flops(report)
    scale = (forward + backward) / report.forward if report.forward else 0
    by_category = {
        c: (report.forward_by_category[c] + report.backward_by_category[c]) for c in report.forward_by_category
    }
    if not report.backward_counted:
        by_category = {c: v * scale for c, v in by_category.items()}
    window = report.options.get("attention_window")
    return _Counted(
        (forward + backward) / tokens,
        (by_category["matmul"] + by_category["conv"]) / tokens,
        by_category["attention"] / tokens,
        sum(by_category[c] for c in _NOT_PRODUCTS) / tokens,
        bool(report.options.get("causal_half")),
        window if window is not None and window < seq_len else None,
    )


def _convention(quoted: _Quoted, shape: TransformerShape, counted: _Counted, n: int, full: int) -> Convention:
    attention = full // quoted.attention_divisor if quoted.attention_divisor else 0
    return Convention(
        quoted.key,
        quoted.name,
        quoted.formula,
        quoted.source,
        n,
        6 * n,
        attention,
        _differences(shape, counted, n, attention, includes=quoted.includes, full=full),
    )


@dataclass(frozen=True)
class _Counted:
    total: float
    products: float
    attention: float
    other: float
    causal_half: bool
    attention_window: int | None = None  # attention counted over a sliding window of this many keys


def _si(value: float) -> str:
    return format_si(value)


def _differences(
    shape: TransformerShape, counted: _Counted, n: int, attention_term: int, *, includes: str, full: int
) -> tuple[str, ...]:
    """What separates a formula from the count, each with its size per token."""
    lines = []
    parameter_gap = 6 * n - counted.products
    parts = []
    if includes == "token" and shape.embedding_params and not shape.tied_output:
        parts.append(
            f"N holds the token table ({_si(shape.embedding_params)} parameters) whose lookup does no "
            f"products: +{_si(6 * shape.embedding_params)}"
        )
    if includes == "none" and shape.tied_output and shape.embedding_params:
        parts.append(
            f"the output head shares the token table, left out of N, so its products are missing: "
            f"-{_si(6 * shape.embedding_params)}"
        )
    parts.append(
        "6 per parameter assumes every product has an input gradient (the first layer has none) and "
        "counts biases as products"
    )
    lines.append(
        f"parameters: 6N = {_si(6 * n)} vs {_si(counted.products)} counted in matrix products "
        f"({parameter_gap:+,.0f}); " + "; ".join(parts)
    )
    if attention_term == 0:
        lines.append(f"attention: the scores and the weighted sum are left out; counted {_si(counted.attention)}")
    else:
        half = "half the T x T square (causal mask)" if attention_term < full else "the full T x T square"
        if counted.attention_window is not None:
            counted_part = f"a sliding window of {counted.attention_window:,} keys"
        elif counted.causal_half:
            counted_part = "the lower triangle (--causal-half)"
        else:
            counted_part = "the full square"
        lines.append(
            f"attention: {_si(attention_term)} for {half} vs {_si(counted.attention)} counted over {counted_part}"
        )
    lines.append(f"not products (norms, activations, elementwise, loss): in no formula; counted {_si(counted.other)}")
    return tuple(lines)
