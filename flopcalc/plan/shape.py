"""A transformer's shape as `plan --params` takes it (layers, hidden, heads and the rest, each checked) and
Korthikanti et al. 2022's activations of it: the formulas a model not at hand is planned with."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypedDict

from ..counting.activations import ActivationProfile, SavedBytes
from ..errors import UsageError
from .checks import positive_int

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's is Python 3.11; only a type checker reads it

    from ..predict import TransformerShape

ATTENTIONS = ("flash", "math")  # a fused kernel keeps no s x s scores; eager ("math") attention keeps them
MLPS = ("gelu", "swiglu")  # two matrices and a GELU, or three (gate, up, down) and a SiLU-gated product
DEFAULT_ATTENTION = "flash"
DEFAULT_MLP = "gelu"
PARAMS_TOLERANCE = 0.10  # a --params further than this from its shape's count is refused
CORE_FLAGS = ("--layers", "--hidden", "--heads")  # a shape is these three together; the rest refine it
KIND_FIELDS = ("mlp", "attention")  # the two kinds; the other fields are sizes
GEMM_SHAPE_FIELDS = ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab")  # what the step-time model's shape holds


@dataclass(frozen=True)
class Shape:
    """A transformer's shape as `plan --params` takes it: layers, hidden size, heads (and their width), key/value
    heads, MLP width and kind, vocabulary, attention kernel."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    mlp: str
    vocab: int | None
    attention: str

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def layer_params(self) -> int:
        """Weights of one block: Q and the output projection (h x heads x head_dim each), K and V (h x kv width
        each), the MLP's 2 (GELU) or 3 (SwiGLU) matrices of h x ffn. Biases and norms (< 0.1%) are left out."""
        attention = 2 * self.hidden * self.heads * self.head_dim + 2 * self.hidden * self.kv_width
        return attention + (3 if self.mlp == "swiglu" else 2) * self.hidden * self.ffn

    @property
    def params(self) -> int:
        """layers x layer_params + one vocab x hidden embedding (tied with the output layer, as GPT's): 12Lh^2 + Vh
        for a GELU MLP of 4h, no grouped-query attention."""
        return self.layers * self.layer_params + (self.vocab or 0) * self.hidden

    def activations(self, seq_len: int, *, params: float = 0, attention: str | None = None) -> ActivationProfile:
        """Korthikanti's activations of one sequence of `seq_len` tokens through this shape's blocks (its own
        attention kernel unless `attention` names another)."""
        return korthikanti_profile(
            self.layers,
            self.hidden,
            self.heads,
            seq_len,
            kv_heads=self.kv_heads,
            ffn=self.ffn,
            params=params,
            head_dim=self.head_dim,
            mlp=self.mlp,
            attention=self.attention if attention is None else attention,
        )

    def formula(self) -> str:
        mlp = f"{3 if self.mlp == 'swiglu' else 2} x hidden x ffn ({'SwiGLU' if self.mlp == 'swiglu' else 'GELU'})"
        embedding = " + vocab x hidden (one embedding, tied)" if self.vocab else " (no --vocab: no embedding)"
        return (
            f"N from the shape = layers x (2 x hidden x heads x head_dim + 2 x hidden x kv_heads x head_dim + {mlp})"
            f"{embedding} = {self.params:,}; biases and norms not counted"
        )


@dataclass(frozen=True)
class GivenShape:
    """A transformer's shape as given, each figure None when not given: `plan`'s --layers, --hidden, --heads and the
    rest (each field's flag is its name, dashed), or a validation row's model; `resolved()` checks it."""

    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    ffn: int | None = None
    vocab: int | None = None
    mlp: str = DEFAULT_MLP
    attention: str = DEFAULT_ATTENTION

    @classmethod
    def of_gemm_shape(cls, shape: TransformerShape, *, attention: str = DEFAULT_ATTENTION) -> GivenShape:
        """The step-time model's GPT shape as plan takes it (heads of hidden / heads, a GELU MLP)."""
        return cls(**{name: getattr(shape, name) for name in GEMM_SHAPE_FIELDS}, attention=attention)

    def flags(self) -> dict[str, int | str | None]:
        """Each figure's flag and value, None where not given (the MLP and attention kinds at their defaults)."""
        return {
            _flag(item.name): None if getattr(self, item.name) == item.default else getattr(self, item.name)
            for item in fields(self)
        }

    def sizes(self) -> dict[str, int | None]:
        """The whole-number figures' flags and values (all but the MLP and attention kinds)."""
        return {_flag(item.name): getattr(self, item.name) for item in fields(self) if item.name not in KIND_FIELDS}

    def resolved(self) -> Shape | None:
        """The shape given by --layers, --hidden and --heads (all or none), each value checked; None when none."""
        if self.mlp not in MLPS:
            raise UsageError(f"--mlp must be {' or '.join(MLPS)}, got {self.mlp!r}")
        if self.attention not in ATTENTIONS:
            raise UsageError(f"--attention must be {' or '.join(ATTENTIONS)}, got {self.attention!r}")
        flags = self.flags()
        given = [flag for flag in CORE_FLAGS if flags[flag] is not None]
        extra = [flag for flag, value in flags.items() if flag not in CORE_FLAGS and value is not None]
        if given and len(given) < 3:
            raise UsageError(
                f"{', '.join(given)} without {', '.join(f for f in CORE_FLAGS if f not in given)}",
                "a transformer shape is --layers, --hidden and --heads together",
            )
        if extra and not given:
            raise UsageError(f"{', '.join(extra)} need{'s' if len(extra) == 1 else ''} --layers, --hidden and --heads")
        for flag, value in self.sizes().items():
            if value is not None:
                positive_int(value, flag)
        if self.layers is None or self.hidden is None or self.heads is None:
            return None
        return self._checked(self.layers, self.hidden, self.heads)

    def _checked(self, layers: int, hidden: int, heads: int) -> Shape:
        """The shape with its defaults filled in, once its heads divide the hidden size and the K/V heads."""
        if self.head_dim is None and hidden % heads:
            raise UsageError(
                f"--hidden {hidden} is not divisible by --heads {heads}",
                "hidden = heads x head size, or give --head-dim",
            )
        kv = heads if self.kv_heads is None else self.kv_heads
        if heads % kv:
            raise UsageError(
                f"--heads {heads} is not divisible by --kv-heads {kv}", "each K/V head serves whole query heads"
            )
        ffn = self.ffn
        if ffn is None:
            # SwiGLU's three matrices at 8h/3 hold the parameters of GELU's two at 4h (Shazeer 2020)
            ffn = round(8 * hidden / 3) if self.mlp == "swiglu" else 4 * hidden
        head_dim = self.head_dim or hidden // heads
        return Shape(layers, hidden, heads, kv, head_dim, ffn, self.mlp, self.vocab, self.attention)


class ShapeRefinements(TypedDict, total=False):
    """GivenShape's fields beyond layers, hidden and heads, as keywords, so that a type checker checks each one a
    caller passes (transformer_shape)."""

    kv_heads: int | None
    head_dim: int | None
    ffn: int | None
    vocab: int | None
    mlp: str
    attention: str


class ShapeFigures(ShapeRefinements, total=False):
    """Every GivenShape field as a keyword (`layers=32, hidden=4096`: model_from_params)."""

    layers: int | None
    hidden: int | None
    heads: int | None


def _flag(field_name: str) -> str:
    return f"--{field_name.replace('_', '-')}"


def transformer_shape(
    layers: int | None, hidden: int | None, heads: int | None, **given: Unpack[ShapeRefinements]
) -> Shape | None:
    """The shape given by --layers, --hidden and --heads (all or none) and the rest of GivenShape's figures (by
    keyword), each value checked; None when none."""
    return GivenShape(layers, hidden, heads, **given).resolved()


def gemm_ffn(shape: Shape | None) -> int | None:
    """The MLP width the step-time model's two-matrix MLP takes: a SwiGLU's three h x ffn matrices do the
    GEMM FLOPs of two h x 1.5 ffn ones."""
    if shape is None:
        return None
    return round(1.5 * shape.ffn) if shape.mlp == "swiglu" else shape.ffn


def kernel_words(attention: str) -> str:
    """How the attention kernel treats the s x s scores, for method lines and notes."""
    return (
        "flash attention: no s x s scores kept" if attention == "flash" else "materialised attention: s x s scores kept"
    )


def korthikanti_profile(
    layers: int,
    hidden: int,
    heads: int,
    seq_len: int,
    *,
    kv_heads: int | None = None,
    ffn: int | None = None,
    params: float = 0,
    head_dim: int | None = None,
    mlp: str = "gelu",
    attention: str = "math",
) -> ActivationProfile:
    """Korthikanti et al. 2022's activations of one sequence through `layers` GPT blocks, as an ActivationProfile.

    Per block (s tokens, h hidden, a heads, 16-bit = 2 bytes per element, dropout masks 1 byte):
    replicated 10sh bytes (the two LayerNorm inputs 4sh, the QKV and MLP inputs 4sh, two dropout masks 2sh),
    split 24sh (Q, K, V 6sh, the output projection's input 2sh, the GELU's input and output 16sh with a 4h MLP),
    scores 5as^2 (softmax output 2as^2, its dropout mask as^2 and output 2as^2): sh(34 + 5as/h) in all.
    A SwiGLU MLP keeps four ffn-wide tensors instead of two (the gate and up outputs, the SiLU's output, their
    product); `attention="flash"` keeps no scores (a fused kernel re-computes them in the backward).
    """
    s, h, a = seq_len, hidden, heads
    width = h if head_dim is None else a * head_dim  # Q's (and the attention output's) width
    kv_width = width * (kv_heads or heads) // heads
    inner = ffn or 4 * h
    mlp_tensors = 4 if mlp == "swiglu" else 2
    per_block_replicated = SavedBytes(4 * s * h, 2 * s * h)
    per_block_split = SavedBytes(s * width + 2 * s * kv_width + s * width + mlp_tensors * s * inner, 0)
    per_block_scores = SavedBytes(2 * a * s * s, a * s * s) if attention == "math" else SavedBytes(0, 0)
    blocks = per_block_replicated.scaled(layers), per_block_split.scaled(layers), per_block_scores.scaled(layers)
    return ActivationProfile(
        batch_size=1,
        total=blocks[0] + blocks[1] + blocks[2],
        blocks="(formula)",
        layers=layers,
        block_replicated=blocks[0],
        block_split=blocks[1],
        block_scores=blocks[2],
        block_input=SavedBytes(s * h * layers, 0),
        params=int(params),
        block_params=int(params),
        hidden=h,
        seq_len=s,
        heads=a,
        kv_heads=kv_heads or heads,
    )
