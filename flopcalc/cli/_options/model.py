"""The model options every command shares, parsed once into a ModelSpec."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ...errors import UsageError
from ...loaders import is_named_model
from ...spec import ModelSpec, parse_dims, parse_input_spec, parse_kwargs, split_python_source
from ...units import LARGEST_WHOLE
from .params import ReadBack, text_option, whole_option

__all__ = [
    "LARGEST_INPUT_ELEMENTS",
    "MODEL_HELP",
    "AttentionAsMathOption",
    "AttentionWindowOption",
    "BatchSizeOption",
    "CausalHalfOption",
    "DecoderSeqLenOption",
    "DeviceOption",
    "DimOption",
    "FrozenOption",
    "InputOption",
    "KwargsOption",
    "ModelArgument",
    "ModelOptions",
    "RevisionOption",
    "SeqLenOption",
    "SparsityOption",
    "WeightsOption",
    "checked_dims",
    "checked_inputs",
    "existing_model",
    "no_model_options",
    "optional_model_argument",
]

MODEL_HELP = (
    "file.py:callable, file.py, TorchScript .pt/.pth/.ts, torch.export .pt2, ONNX .onnx, a Hugging Face config.json "
    "or Hub id (org/name), or timm:NAME / torchvision:NAME"
)


def existing_model(source: Optional[str]) -> Optional[str]:
    """A MODEL whose file is missing is a one-line error while the options are parsed, before torch is imported
    (seconds on a cold start); what the file holds is the loaders' to judge. A Hub id or zoo name (no local
    path of that spelling) is the loaders' to resolve."""
    if source is None or is_named_model(source):
        return source
    python = split_python_source(source)
    path = Path(python[0] if python else source)
    if not path.exists():
        raise UsageError(f"model file {path} not found", "check the path; it is relative to the current folder")
    return source


# Elements of one input tensor at most: counts stay exact in a float, and torch's int64 sizes never overflow.
LARGEST_INPUT_ELEMENTS = 2**53


def checked_inputs(inputs: list[str]) -> list[str]:
    """Each --input's sizes checked while the options are parsed, before torch sees them: no dimension above
    LARGEST_WHOLE, no tensor above LARGEST_INPUT_ELEMENTS elements (the form itself the spec parser judges)."""
    for text in inputs or ():
        shape = parse_input_spec(text).shape
        elements = math.prod(shape)
        if elements > LARGEST_INPUT_ELEMENTS:
            raise UsageError(
                f"--input {text!r} is too large", "a tensor is at most 2**53 elements (all dims multiplied)"
            )
    return inputs


ModelArgument = Annotated[str, typer.Argument(metavar="MODEL", callback=existing_model, help=MODEL_HELP)]


def optional_model_argument(help: str) -> Any:
    """The annotation of a MODEL a command can do without (it has other ways in, said in `help`), checked as
    MODEL is."""
    return Annotated[Optional[str], typer.Argument(metavar="MODEL", callback=existing_model, help=help)]


InputOption = Annotated[
    list[str],
    typer.Option(
        "--input",
        "-i",
        metavar="SHAPE",
        callback=checked_inputs,
        help="An input tensor: SHAPE[:dtype] per positional argument, in order (1x3x224x224, "
        "8,1024:int64), or NAME=SHAPE[:dtype] as a keyword (pixel_values=1x3x224x224). "
        "Repeatable; positional ones replace the model's example inputs, named ones "
        "replace or add one each.",
    ),
]
BatchSizeOption = whole_option("--batch-size", "-b", help="Override the leading dimension of every input.")
SeqLenOption = whole_option(
    "--seq-len",
    metavar="TOKENS",
    help="Tokens per sequence for a Hugging Face config.json (default min(max positions, 2048)).",
)
DecoderSeqLenOption = whole_option(
    "--decoder-seq-len",
    metavar="TOKENS",
    help="Decoder tokens of a Hugging Face encoder-decoder config (default: as many "
    "as the encoder's tokens, within the decoder's max positions).",
)


def checked_dims(dims: list[str]) -> list[str]:
    """A malformed or oversized --dim is reported before MODEL is looked at (the option is eager)."""
    for name, size in parse_dims(dims).items():
        if size > LARGEST_WHOLE:
            raise UsageError(f"--dim {name}={size} is too large", f"a dimension is at most {LARGEST_WHOLE:,}")
    return dims


DimOption = Annotated[
    list[str],
    typer.Option(
        "--dim",
        metavar="NAME=SIZE",
        callback=checked_dims,
        is_eager=True,
        help="Size a symbolic ONNX input dimension: --dim batch=8 (repeatable).",
    ),
]
KwargsOption = text_option(
    "--kwargs",
    metavar="JSON",
    help="JSON object passed to the model callable (or to timm's / torchvision's model builder).",
)
RevisionOption = text_option(
    "--revision", metavar="REV", help="Branch, tag or commit of a Hugging Face Hub id (default: its main branch)."
)
DeviceOption = text_option(
    "--device",
    metavar="meta|cpu|cuda",
    help="meta (default: no memory; falls back to cpu if the model cannot run there), cpu, or cuda.",
)
FrozenOption = Annotated[
    list[str],
    typer.Option("--frozen", metavar="PATTERN", help="Freeze parameters/modules matching this pattern (repeatable)."),
]
CausalHalfOption = Annotated[
    bool, typer.Option("--causal-half", help="Count causal attention over the lower triangle only.")
]
AttentionWindowOption = whole_option(
    "--attention-window",
    metavar="W",
    help="Count each causal attention query against at most W keys (a sliding window, as flash attention's "
    "windowed kernels run it; default: a config's sliding_window).",
)
AttentionAsMathOption = Annotated[
    bool,
    typer.Option(
        "--attention-as-math",
        help="Count attention over the full square, as the math kernel computes it (ignores a config's sliding_window).",
    ),
]
WeightsOption = text_option(
    "--weights",
    metavar="FILE",
    help="A state dict (torch.save) or .safetensors file whose values replace the model's; names and shapes must match.",
)
SparsityOption = Annotated[
    bool,
    typer.Option(
        "--sparsity",
        help="Read the weights' zeros (on the cpu): per weight the zero fraction and "
        "2:4 / 4:8 pattern, and effective FLOPs with the products by a zero weight left out.",
    ),
]


@dataclass(frozen=True)
class ModelOptions(ReadBack):
    """The shared model options as the command received them (those it does not declare keep their defaults):
    one value from the signature to a ModelSpec, or to the refusal of options given without a MODEL. The fields
    but MODEL (each command says its own) are the options' declarations, in the order --help lists them."""

    model: Optional[str] = None
    input: InputOption = field(default_factory=list)
    batch_size: BatchSizeOption = None
    seq_len: SeqLenOption = None
    decoder_seq_len: DecoderSeqLenOption = None
    dim: DimOption = field(default_factory=list)
    kwargs: KwargsOption = None
    revision: RevisionOption = None
    attention_window: AttentionWindowOption = None
    attention_as_math: AttentionAsMathOption = False
    device: DeviceOption = None
    frozen: FrozenOption = field(default_factory=list)
    causal_half: CausalHalfOption = False
    weights: WeightsOption = None
    sparsity: SparsityOption = False

    def spec(self, *, backward: bool = True, sparse_peak: bool = False) -> ModelSpec:
        """The ModelSpec of a given MODEL; the 2:4-sparse peak reads the weights as --sparsity does."""
        assert self.model is not None, "spec() is for a command given a MODEL"
        return ModelSpec(
            self.model,
            inputs=tuple(self.input),
            batch_size=self.batch_size,
            kwargs=parse_kwargs(self.kwargs),
            seq_len=self.seq_len,
            decoder_seq_len=self.decoder_seq_len,
            dims=parse_dims(self.dim),
            device=self.device,
            frozen=tuple(self.frozen),
            causal_half=self.causal_half,
            backward=backward,
            weights=self.weights,
            sparsity=self.sparsity or sparse_peak,
            revision=self.revision,
            attention_window=self.attention_window,
            attention_as_math=self.attention_as_math,
        )

    def given(self, *, besides: Iterable[str] = ()) -> dict[str, object]:
        """The model options but MODEL and `besides`, by parameter name (no_model_options picks the given ones)."""
        skipped = {"model", *besides}
        return {option.name: getattr(self, option.name) for option in fields(self) if option.name not in skipped}

    def spec_or_none(
        self, command: str, *, besides: Iterable[str] = (), sparse_peak: bool = False
    ) -> Optional[ModelSpec]:
        """The ModelSpec with a MODEL (`sparse_peak` as spec's); without one None, once no model option was
        given but `besides` (the command reads those without a MODEL too, or refuses them itself)."""
        if self.model is not None:
            return self.spec(sparse_peak=sparse_peak)
        no_model_options(command, **self.given(besides=besides))
        return None


def no_model_options(command: str, **given: object) -> None:
    """Commands that take a MODEL only optionally refuse model options without one."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value not in (None, False, (), [], "")]
    if named:
        raise UsageError(f"{', '.join(named)} need{'s' if len(named) == 1 else ''} a MODEL to {command}")
