"""The options every command shares, declared once: the model options (-> a ModelSpec), the GPU options
(-> a throughput), output format and file; and the one way notes reach stderr."""

from __future__ import annotations

import contextlib
import enum
import math
import shlex
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..adapters import LoraConfig, lora_config
from ..catalog import most_common_variant
from ..compute import check_utilization
from ..emissions import GridIntensity
from ..emissions import grid_intensity as resolve_grid
from ..errors import UsageError
from ..files import check_writable
from ..loaders import is_named_model
from ..spec import ModelSpec, parse_dims, parse_input_spec, parse_kwargs, split_python_source
from ..units import LARGEST_WHOLE, parse_fraction, parse_si_number


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class ReportFormat(str, enum.Enum):
    """The formats of a command that also draws its report as a page (`--format html`)."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


# --- the model: parsed once into a ModelSpec ------------------------------------------------------------

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
BatchSizeOption = Annotated[
    Optional[int],
    typer.Option("--batch-size", "-b", metavar="N", help="Override the leading dimension of every input."),
]
SeqLenOption = Annotated[
    Optional[int],
    typer.Option(
        "--seq-len",
        metavar="TOKENS",
        help="Tokens per sequence for a Hugging Face config.json (default min(max positions, 2048)).",
    ),
]
DecoderSeqLenOption = Annotated[
    Optional[int],
    typer.Option(
        "--decoder-seq-len",
        metavar="TOKENS",
        help="Decoder tokens of a Hugging Face encoder-decoder config (default: as many "
        "as the encoder's tokens, within the decoder's max positions).",
    ),
]


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
KwargsOption = Annotated[
    Optional[str],
    typer.Option(
        "--kwargs",
        metavar="JSON",
        help="JSON object passed to the model callable (or to timm's / torchvision's model builder).",
    ),
]
RevisionOption = Annotated[
    Optional[str],
    typer.Option(
        "--revision", metavar="REV", help="Branch, tag or commit of a Hugging Face Hub id (default: its main branch)."
    ),
]
DeviceOption = Annotated[
    Optional[str],
    typer.Option(
        "--device",
        metavar="meta|cpu|cuda",
        help="meta (default: no memory; falls back to cpu if the model cannot run there), cpu, or cuda.",
    ),
]
FrozenOption = Annotated[
    list[str],
    typer.Option("--frozen", metavar="PATTERN", help="Freeze parameters/modules matching this pattern (repeatable)."),
]
CausalHalfOption = Annotated[
    bool, typer.Option("--causal-half", help="Count causal attention over the lower triangle only.")
]
AttentionWindowOption = Annotated[
    Optional[int],
    typer.Option(
        "--attention-window",
        metavar="W",
        help="Count each causal attention query against at most W keys (a sliding window, as flash attention's "
        "windowed kernels run it; default: a config's sliding_window).",
    ),
]
AttentionAsMathOption = Annotated[
    bool,
    typer.Option(
        "--attention-as-math",
        help="Count attention over the full square, as the math kernel computes it (ignores a config's sliding_window).",
    ),
]
WeightsOption = Annotated[
    Optional[str],
    typer.Option(
        "--weights",
        metavar="FILE",
        help="A state dict (torch.save) or .safetensors file "
        "whose values replace the model's; names and shapes must match.",
    ),
]
SparsityOption = Annotated[
    bool,
    typer.Option(
        "--sparsity",
        help="Read the weights' zeros (on the cpu): per weight the zero fraction and "
        "2:4 / 4:8 pattern, and effective FLOPs with the products by a zero weight left out.",
    ),
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
    revision: Optional[str] = None,
    attention_window: Optional[int] = None,
    attention_as_math: bool = False,
) -> ModelSpec:
    """The ModelSpec of the shared model options, as typed on the command line."""
    return ModelSpec(
        model,
        inputs=tuple(inputs),
        batch_size=batch_size,
        kwargs=parse_kwargs(kwargs),
        seq_len=seq_len,
        decoder_seq_len=decoder_seq_len,
        dims=parse_dims(dims),
        device=device,
        frozen=tuple(frozen),
        causal_half=causal_half,
        backward=backward,
        revision=revision,
        attention_window=attention_window,
        attention_as_math=attention_as_math,
    )


def no_model_options(command: str, **given: object) -> None:
    """Commands that take a MODEL only optionally refuse model options without one."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value not in (None, False, (), [], "")]
    if named:
        raise UsageError(f"{', '.join(named)} need{'s' if len(named) == 1 else ''} a MODEL to {command}")


# --- GPUs and their speed -------------------------------------------------------------------------------

CatalogOption = Annotated[
    Optional[list[Path]],
    typer.Option(
        "--catalog",
        metavar="FILE",
        help="Extra GPU catalogue YAML file or folder, merged over the shipped one (repeatable; "
        "also $FLOPCALC_GPU_SPECS).",
    ),
]
PrecisionOption = Annotated[
    Optional[str],
    typer.Option(
        "--precision",
        "-p",
        metavar="PRECISION",
        help="fp64, fp32, tf32, bf16, fp16, fp8, fp4 or int8. Default: the GPU's "
        "fastest dense 16-bit tensor precision (bf16, or fp16 where faster).",
    ),
]
UtilizationOption = Annotated[
    Optional[str],
    typer.Option(
        "--utilization",
        "-u",
        metavar="FRACTION",
        help="Fraction of peak sustained, in (0, 1]: 0.3 or 30%. Default 0.3, "
        "Epoch AI's recommendation for language models (0.4 for others).",
    ),
]
CalibrationOption = Annotated[
    Optional[str],
    typer.Option(
        "--calibration",
        metavar="FILE|auto",
        help="Use measured throughput from `flopcalc bench --save` (a FILE, or 'auto' for "
        "the default file) instead of the datasheet: utilization is then a fraction of "
        "measured, and --gpu is optional.",
    ),
]
GridIntensityOption = Annotated[
    Optional[str],
    typer.Option(
        "--grid-intensity",
        metavar="G",
        help="Carbon intensity of the grid in gCO2e/kWh, for kg CO2e = kWh x PUE x G / 1000 (or --region).",
    ),
]
RegionOption = Annotated[
    Optional[str],
    typer.Option(
        "--region",
        metavar="CODE",
        help="Country code (DE, FR, IN, WORLD...) whose yearly grid intensity "
        "flopcalc ships (sourced and dated; docs/conversions.md), for kg CO2e.",
    ),
]
NumGpusOption = Annotated[
    str, typer.Option("--num-gpus", "-n", metavar="N", help="GPUs sharing the work (wall clock = GPU-hours / this).")
]


def common_variant(name: Optional[str]) -> Optional[str]:
    """`V100`, `nvidia a100`, `H100` -> the family's most common variant's id (catalog.most_common_variant),
    with its note on stderr; any other name unchanged."""
    if name is None:
        return None
    variant = most_common_variant(name)
    if variant is None:
        return name
    chosen, others = variant
    typer.echo(
        f"flopcalc: note: {name.strip()} taken as {chosen}, its most common variant; "
        f"the others are {', '.join(others)} (pass one of these ids to --gpu)",
        err=True,
    )
    return chosen


GpuOption = Annotated[
    Optional[str],
    typer.Option(
        "--gpu",
        "-g",
        metavar="NAME",
        callback=common_variant,
        help="GPU id, alias or torch.cuda.get_device_name() string (optional with --calibration); "
        "a bare V100, A100 or H100 means V100-SXM2, A100-SXM4-80GB, H100-SXM.",
    ),
]


# No run sustains less than 0.01% of peak; a smaller figure is a typo, and one of 1e-300 overflows a duration.
SMALLEST_UTILIZATION = 1e-4


def parse_utilization(text: Optional[str]) -> Optional[float]:
    """`0.3` or `30%` -> 0.3; None stays None (the library's default applies, and says so)."""
    if text is None:
        return None
    utilization = check_utilization(parse_fraction(text, "--utilization"))
    if utilization < SMALLEST_UTILIZATION:
        raise UsageError(
            f"--utilization {text!r} is below {SMALLEST_UTILIZATION:g} (0.01%)",
            "give a fraction of peak in [0.0001, 1], e.g. 0.3 or 30%",
        )
    return utilization


def parse_num_gpus(text: str) -> int:
    value = parse_si_number(text, "--num-gpus")
    if value < 1 or value != int(value):
        raise UsageError(f"--num-gpus must be a whole number >= 1, got {text!r}")
    return int(value)


# --- output ---------------------------------------------------------------------------------------------

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", metavar="table|json|csv|markdown", help="Output format.")
]
ReportFormatOption = Annotated[
    ReportFormat,
    typer.Option(
        "--format",
        "-f",
        metavar="table|json|csv|markdown|html",
        help="Output format; html is one self-contained page with charts (needs the html extra), best with --output.",
    ),
]


def command_line() -> str:
    """The command as the user typed it, for the header of an HTML report."""
    return shlex.join(["flopcalc", *sys.argv[1:]])


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
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        callback=writable_path,
        help="Write to this file (atomically) instead of stdout.",
    ),
]


# Work that ends sooner shows no progress line (it would only flicker).
PROGRESS_DELAY_S = 1.0


@contextlib.contextmanager
def progress(label: str, *, delay: float = PROGRESS_DELAY_S, console: Any = None) -> Iterator[None]:
    """A spinner and `label` on stderr while the block runs, from `delay` seconds on, and only when stderr is a
    terminal (a log or a pipe gets nothing); it is cleared when the block ends, so the output is unchanged."""
    from rich.console import Console

    console = console if console is not None else Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    status = console.status(label, spinner="dots")
    lock, state = threading.Lock(), {"started": False, "over": False}

    def start() -> None:
        with lock:
            if not state["over"]:
                status.start()
                state["started"] = True

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["over"] = True
            if state["started"]:
                status.stop()


def shown_on_terminal(fmt: OutputFormat | ReportFormat, output: Optional[Path]) -> bool:
    """A table printed to stdout shows its notes; any other format, or a file, does not."""
    return fmt.value == "table" and output is None


def notes_to_stderr(notes: Iterable[str], *, shown: bool, warnings: Iterable[str] = ()) -> None:
    """Notes (and warnings) the output does not show go to stderr, one line each, so none is lost."""
    if not shown:
        for warning in warnings:
            typer.echo(f"flopcalc: warning: {warning}", err=True)
        for note in notes:
            typer.echo(f"flopcalc: note: {note}", err=True)


def parse_grid(grid_intensity: str | None, region: str | None) -> GridIntensity | None:
    """--grid-intensity G (gCO2e/kWh) or --region CODE, as the grid intensity emissions are priced at."""
    value = None if grid_intensity is None else parse_si_number(grid_intensity, "--grid-intensity")
    return resolve_grid(value, region)


# --- fine-tuning with adapters and distillation (train, plan) ----------------------------------------------

LoraRankOption = Annotated[
    Optional[int],
    typer.Option(
        "--lora-rank",
        metavar="R",
        help="Fine-tune with LoRA adapters of rank R (the base frozen): counted and measured "
        "with the adapters in the graph.",
    ),
]
LoraTargetsOption = Annotated[
    Optional[str],
    typer.Option(
        "--lora-targets",
        metavar="PATTERN",
        help="With --lora-rank: the layers to adapt, comma-separated module types "
        "(Linear) or name patterns (q_proj,v_proj; 'model.layers.*.mlp.*'); "
        "default every Linear inside the repeated blocks (attention and MLP "
        "projections).",
    ),
]
LoraAlphaOption = Annotated[
    Optional[str],
    typer.Option("--lora-alpha", metavar="ALPHA", help="With --lora-rank: LoRA's alpha (scale alpha / r; default 2r)."),
]
AdapterConfigOption = Annotated[
    Optional[str],
    typer.Option(
        "--adapter-config",
        metavar="FILE",
        help="A PEFT adapter_config.json (LoRA) instead of --lora-rank/--lora-targets.",
    ),
]
TeacherOption = Annotated[
    Optional[str],
    typer.Option(
        "--teacher",
        metavar="MODEL",
        help="Distillation: the teacher model (any source count takes), frozen; its forward per example is added.",
    ),
]
TeacherInputOption = Annotated[
    list[str],
    typer.Option(
        "--teacher-input",
        metavar="SHAPE",
        callback=checked_inputs,
        help="The teacher's --input (repeatable; default: its own example inputs).",
    ),
]
TeacherBatchSizeOption = Annotated[
    Optional[int],
    typer.Option("--teacher-batch-size", metavar="N", help="The teacher's --batch-size (default: the student's)."),
]
TeacherSeqLenOption = Annotated[
    Optional[int],
    typer.Option(
        "--teacher-seq-len",
        metavar="TOKENS",
        help="The teacher's --seq-len for a config.json (default: the student's).",
    ),
]
TeacherKwargsOption = Annotated[
    Optional[str],
    typer.Option("--teacher-kwargs", metavar="JSON", help="The teacher's --kwargs (a JSON object for its callable)."),
]


def teacher_spec(
    teacher: Optional[str],
    inputs: Iterable[str],
    batch_size: Optional[int],
    seq_len: Optional[int],
    kwargs: Optional[str],
    student: Optional[ModelSpec],
) -> Optional[ModelSpec]:
    """The teacher's ModelSpec: its own options, else the student's batch size and (for a config.json teacher)
    sequence length, so one example is the same example for both. None without --teacher."""
    if teacher is None:
        given = [
            flag
            for flag, value in (
                ("--teacher-input", inputs),
                ("--teacher-batch-size", batch_size),
                ("--teacher-seq-len", seq_len),
                ("--teacher-kwargs", kwargs),
            )
            if value
        ]
        if given:
            raise UsageError(
                f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a teacher",
                "give the teacher with --teacher MODEL",
            )
        return None
    existing_model(teacher)
    if student is None:
        raise UsageError(
            "--teacher needs a MODEL (the student) to distil into",
            "give the student as MODEL and the teacher with --teacher",
        )
    if batch_size is None and not inputs:
        batch_size = student.batch_size
    if seq_len is None and teacher.endswith(".json"):
        seq_len = student.seq_len
    return ModelSpec(
        teacher,
        inputs=tuple(inputs),
        batch_size=batch_size,
        kwargs=parse_kwargs(kwargs),
        seq_len=seq_len,
        device=student.device,
    )


def lora_options(
    rank: Optional[int],
    targets: Optional[str],
    alpha: Optional[str],
    adapter_config: Optional[str],
    model: Optional[str],
) -> Optional[LoraConfig]:
    """The LoRA setup of --lora-rank/--lora-targets/--lora-alpha or --adapter-config; None when none is given."""
    config = lora_config(
        rank, targets, None if alpha is None else parse_si_number(alpha, "--lora-alpha"), adapter_config
    )
    if config is not None and model is None:
        raise UsageError(
            "LoRA needs a MODEL: the adapters are put into its graph", "give a model file or config.json as MODEL"
        )
    return config
