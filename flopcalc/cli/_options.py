"""The options every command shares, declared once: the model options (-> a ModelSpec), the GPU options
(-> a throughput), output format and file; and the one way notes reach stderr."""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Annotated, Iterable, List, Optional

import typer

from ..compute import check_utilization
from ..errors import UsageError
from ..files import check_writable
from ..spec import ModelSpec, parse_dims, parse_input_spec, parse_kwargs, split_python_source
from ..units import LARGEST_WHOLE, parse_fraction, parse_si_number


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


# --- the model: parsed once into a ModelSpec ------------------------------------------------------------

MODEL_HELP = "file.py:callable, file.py, TorchScript .pt/.pth/.ts, torch.export .pt2, ONNX .onnx, or a Hugging Face config.json"


def existing_model(source: Optional[str]) -> Optional[str]:
    """A MODEL whose file is missing is a one-line error while the options are parsed, before torch is imported
    (seconds on a cold start); what the file holds is the loaders' to judge."""
    if source is None:
        return None
    python = split_python_source(source)
    path = Path(python[0] if python else source)
    if not path.exists():
        raise UsageError(f"model file {path} not found", "check the path; it is relative to the current folder")
    return source


# Elements of one input tensor at most: counts stay exact in a float, and torch's int64 sizes never overflow.
LARGEST_INPUT_ELEMENTS = 2**53


def checked_inputs(inputs: List[str]) -> List[str]:
    """Each --input's sizes checked while the options are parsed, before torch sees them: no dimension above
    LARGEST_WHOLE, no tensor above LARGEST_INPUT_ELEMENTS elements (the form itself the spec parser judges)."""
    for text in inputs or ():
        shape = parse_input_spec(text).shape
        elements = math.prod(shape)
        if elements > LARGEST_INPUT_ELEMENTS:
            raise UsageError(f"--input {text!r} is too large", "a tensor is at most 2**53 elements (all dims multiplied)")
    return inputs


ModelArgument = Annotated[str, typer.Argument(metavar="MODEL", callback=existing_model, help=MODEL_HELP)]
InputOption = Annotated[
    List[str],
    typer.Option("--input", "-i", metavar="SHAPE", callback=checked_inputs, help="An input tensor: SHAPE[:dtype] per positional argument, in order (1x3x224x224, "
                                       "8,1024:int64), or NAME=SHAPE[:dtype] as a keyword (pixel_values=1x3x224x224). "
                                       "Repeatable; positional ones replace the model's example inputs, named ones "
                                       "replace or add one each."),
]
BatchSizeOption = Annotated[
    Optional[int], typer.Option("--batch-size", "-b", metavar="N", help="Override the leading dimension of every input.")
]
SeqLenOption = Annotated[
    Optional[int],
    typer.Option("--seq-len", metavar="TOKENS", help="Tokens per sequence for a Hugging Face config.json (default min(max positions, 2048))."),
]
DecoderSeqLenOption = Annotated[
    Optional[int],
    typer.Option("--decoder-seq-len", metavar="TOKENS", help="Decoder tokens of a Hugging Face encoder-decoder config (default: as many "
                                            "as the encoder's tokens, within the decoder's max positions)."),
]
def checked_dims(dims: List[str]) -> List[str]:
    """A malformed or oversized --dim is reported before MODEL is looked at (the option is eager)."""
    for name, size in parse_dims(dims).items():
        if size > LARGEST_WHOLE:
            raise UsageError(f"--dim {name}={size} is too large", f"a dimension is at most {LARGEST_WHOLE:,}")
    return dims


DimOption = Annotated[
    List[str], typer.Option("--dim", metavar="NAME=SIZE", callback=checked_dims, is_eager=True,
                            help="Size a symbolic ONNX input dimension: --dim batch=8 (repeatable).")
]
KwargsOption = Annotated[Optional[str], typer.Option("--kwargs", metavar="JSON", help="JSON object passed to the model callable.")]
DeviceOption = Annotated[
    Optional[str],
    typer.Option("--device", metavar="meta|cpu|cuda", help="meta (default: no memory; falls back to cpu if the model cannot run there), cpu, or cuda."),
]
FrozenOption = Annotated[
    List[str], typer.Option("--frozen", metavar="PATTERN", help="Freeze parameters/modules matching this pattern (repeatable).")
]
CausalHalfOption = Annotated[
    bool, typer.Option("--causal-half", help="Count causal attention over the lower triangle only.")
]


def model_spec(
    model: str,
    inputs: Iterable[str] = (),
    batch_size: Optional[int] = None,
    seq_len: Optional[int] = None,
    dims: Iterable[str] = (),
    kwargs: Optional[str] = None,
    device: Optional[str] = None,
    frozen: Iterable[str] = (),
    causal_half: bool = False,
    backward: bool = True,
    decoder_seq_len: Optional[int] = None,
) -> ModelSpec:
    """The ModelSpec of the shared model options, as typed on the command line."""
    return ModelSpec(
        model, inputs=tuple(inputs), batch_size=batch_size, kwargs=parse_kwargs(kwargs), seq_len=seq_len,
        decoder_seq_len=decoder_seq_len, dims=parse_dims(dims), device=device, frozen=tuple(frozen),
        causal_half=causal_half, backward=backward,
    )


def no_model_options(command: str, **given: object) -> None:
    """Commands that take a MODEL only optionally refuse model options without one."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value not in (None, False, (), [], "")]
    if named:
        raise UsageError(f"{', '.join(named)} need{'s' if len(named) == 1 else ''} a MODEL to {command}")


# --- GPUs and their speed -------------------------------------------------------------------------------

CatalogOption = Annotated[
    Optional[List[Path]],
    typer.Option("--catalog", metavar="FILE", help="Extra GPU catalogue YAML file or folder, merged over the shipped one (repeatable; "
                                   "also $FLOPCALC_GPU_SPECS)."),
]
PrecisionOption = Annotated[
    Optional[str],
    typer.Option("--precision", "-p", metavar="PRECISION", help="fp64, fp32, tf32, bf16, fp16, fp8, fp4 or int8. Default: the GPU's "
                                          "fastest dense 16-bit tensor precision (bf16, or fp16 where faster)."),
]
UtilizationOption = Annotated[
    Optional[str],
    typer.Option("--utilization", "-u", metavar="FRACTION", help="Fraction of peak sustained, in (0, 1]: 0.3 or 30%. Default 0.3, "
                                            "Epoch AI's recommendation for language models (0.4 for others)."),
]
CalibrationOption = Annotated[
    Optional[str],
    typer.Option("--calibration", metavar="FILE|auto", help="Use measured throughput from `flopcalc bench --save` (a FILE, or 'auto' for "
                                       "the default file) instead of the datasheet: utilization is then a fraction of "
                                       "measured, and --gpu is optional."),
]
NumGpusOption = Annotated[str, typer.Option("--num-gpus", "-n", metavar="N", help="GPUs sharing the work (wall clock = GPU-hours / this).")]
# A bare family name means its most common variant (the one clusters and papers mostly mean), with a note
# naming the others; every id here is checked against the catalogue by the tests.
COMMON_VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "v100": ("V100-SXM2", ("V100-PCIe", "V100S-PCIe")),
    "a100": ("A100-SXM4-80GB", ("A100-SXM4-40GB", "A100-PCIe-80GB", "A100-PCIe-40GB")),
    "h100": ("H100-SXM", ("H100-PCIe", "H100-NVL")),
}


def common_variant(name: Optional[str]) -> Optional[str]:
    """`V100`, `nvidia a100`, `H100` -> the family's most common variant's id, with a note on stderr; any
    other name unchanged (the catalogue resolves it, or says which ids it could mean)."""
    if name is None:
        return None
    key = name.strip().lower().removeprefix("nvidia ").removeprefix("tesla ").strip()
    if key not in COMMON_VARIANTS:
        return name
    chosen, others = COMMON_VARIANTS[key]
    typer.echo(f"flopcalc: note: {name.strip()} taken as {chosen}, its most common variant; "
               f"the others are {', '.join(others)} (pass one of these ids to --gpu)", err=True)
    return chosen


GpuOption = Annotated[
    Optional[str],
    typer.Option("--gpu", "-g", metavar="NAME", callback=common_variant,
                 help="GPU id, alias or torch.cuda.get_device_name() string (optional with --calibration); "
                      "a bare V100, A100 or H100 means V100-SXM2, A100-SXM4-80GB, H100-SXM."),
]


# No run sustains less than 0.01% of peak; a smaller figure is a typo, and one of 1e-300 overflows a duration.
SMALLEST_UTILIZATION = 1e-4


def parse_utilization(text: Optional[str]) -> Optional[float]:
    """`0.3` or `30%` -> 0.3; None stays None (the library's default applies, and says so)."""
    if text is None:
        return None
    utilization = check_utilization(parse_fraction(text, "--utilization"))
    if utilization < SMALLEST_UTILIZATION:
        raise UsageError(f"--utilization {text!r} is below {SMALLEST_UTILIZATION:g} (0.01%)",
                         "give a fraction of peak in [0.0001, 1], e.g. 0.3 or 30%")
    return utilization


def parse_num_gpus(text: str) -> int:
    value = parse_si_number(text, "--num-gpus")
    if value < 1 or value != int(value):
        raise UsageError(f"--num-gpus must be a whole number >= 1, got {text!r}")
    return int(value)


# --- output ---------------------------------------------------------------------------------------------

FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", metavar="table|json|csv|markdown", help="Output format.")]
def writable_path(path: Optional[Path]) -> Optional[Path]:
    """An output path checked while the options are parsed (before any work); a bad one is a usage error."""
    if path is not None:
        try:
            check_writable(path)
        except UsageError as error:
            raise typer.BadParameter(str(error)) from None
    return path


OutputOption = Annotated[
    Optional[Path],
    typer.Option("--output", "-o", metavar="FILE", callback=writable_path, help="Write to this file (atomically) instead of stdout."),
]


def shown_on_terminal(fmt: OutputFormat, output: Optional[Path]) -> bool:
    """A table printed to stdout shows its notes; any other format, or a file, does not."""
    return fmt is OutputFormat.table and output is None


def notes_to_stderr(notes: Iterable[str], *, shown: bool, warnings: Iterable[str] = ()) -> None:
    """Notes (and warnings) the output does not show go to stderr, one line each, so none is lost."""
    if not shown:
        for warning in warnings:
            typer.echo(f"flopcalc: warning: {warning}", err=True)
        for note in notes:
            typer.echo(f"flopcalc: note: {note}", err=True)
