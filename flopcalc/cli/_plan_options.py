"""`flopcalc plan`'s own options: the model's shape, the layout, the fleet's links and memory, offload and the
run; and the parsing of the ones that are more than a number, so that plan.py holds the command's steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import UsageError
from ..spec import ModelSpec
from ..units import parse_si_number
from ._options import (
    ModelOptions,
    ReadBack,
    number,
    optional_model_argument,
    options_of,
    text_option,
    whole_option,
)

if TYPE_CHECKING:
    from ..plan import GivenShape

ModelArgument = optional_model_argument(
    "Model to plan: file.py:callable, file.py, .pt, .pt2, config.json or Hub id (org/name) (its input is one "
    "micro-batch), or use --params."
)
PlanSeqLenOption = whole_option(
    "--seq-len",
    metavar="TOKENS",
    help="Tokens per sequence: for --params, or a Hugging Face config.json (default min(max positions, 2048)).",
)
ParamsOption = text_option(
    "--params",
    metavar="N",
    help="Parameters N of a model not at hand, e.g. 7e9 or 7G (default: from --layers/--hidden/--heads; "
    "refused when more than 10% away from the shape's).",
)
LayersOption = whole_option("--layers", help="A model not at hand: transformer layers.")
HiddenOption = whole_option("--hidden", help="A model not at hand: hidden size.")
HeadsOption = whole_option(
    "--heads", help="Attention heads (with --params, or for a model whose graph does not show them)."
)
KvHeadsOption = whole_option("--kv-heads", help="Key/value heads (grouped-query attention; default = heads).")
FfnOption = whole_option(
    "--ffn", help="With the shape: MLP inner size (default 4 x hidden; 8 x hidden / 3 with --mlp swiglu)."
)
VocabOption = whole_option("--vocab", help="With the shape: vocabulary size (one tied embedding in N).")
HeadDimOption = whole_option("--head-dim", help="With the shape: width of one attention head (default hidden / heads).")
MlpOption = Annotated[
    str,
    typer.Option(
        "--mlp",
        metavar="gelu|swiglu",
        help="With the shape: gelu (2 matrices of hidden x ffn, default) or swiglu (3: gate, up, down).",
    ),
]
AttentionOption = Annotated[
    str,
    typer.Option(
        "--attention",
        metavar="flash|math",
        help="With the shape: flash (default; keeps no seq x seq scores) or math (keeps them).",
    ),
]
MemoryReserveOption = text_option(
    "--memory-reserve",
    metavar="GiB",
    help="GiB per GPU kept from the model: CUDA context, workspaces, fragmentation (default 1 GiB + 5% of the memory).",
)
TokensOption = text_option(
    "--tokens", metavar="N", help="Training tokens, e.g. 300G (divided by the sequence length into sequences)."
)
ExamplesOption = text_option("--examples", "-N", metavar="N", help="Training examples per epoch.")
EpochsOption = text_option("--epochs", "-E", metavar="N", help="Passes over the examples (default 1).")
GlobalBatchOption = text_option(
    "--global-batch", metavar="N", help="Examples per optimizer step (default dp x micro-batch)."
)
MicroBatchOption = whole_option("--micro-batch", help="Examples per micro-batch (default: the counted batch).")
PlanNumGpusOption = text_option("--num-gpus", "-n", metavar="N", help="GPUs in all (default dp x tp x pp).")
GpusPerNodeOption = Annotated[int, typer.Option("--gpus-per-node", metavar="N", help="GPUs per node (default 8).")]
DpOption = whole_option("--dp", help="Data-parallel replicas.")
TpOption = whole_option("--tp", help="Tensor-parallel GPUs per replica (Megatron).")
PpOption = whole_option(
    "--pp", help="Pipeline stages (1F1B); a layer count pp does not divide puts one more layer on the first stages."
)
VirtualStagesOption = whole_option(
    "--virtual-stages", help="Model chunks per GPU: interleaved 1F1B, bubble (pp-1)/(v x micro-batches) (default 1)."
)
StageLayersOption = text_option(
    "--stage-layers",
    metavar="N,N,...",
    help="Layers on each pipeline stage, first to last, e.g. 9,8,8,7 (default: "
    "even, one more on the first stages); --pp defaults to their count.",
)
ZeroOption = whole_option(
    "--zero",
    metavar="0-3",
    help="ZeRO stage 0-3: partition optimizer states (1), + gradients (2), + weights (3) over the dp group.",
)
EpOption = whole_option(
    "--ep", help="Expert-parallel GPUs: split each MoE layer's experts over N GPUs of the data-parallel group."
)
CpOption = whole_option("--cp", help="Context-parallel GPUs: split every sequence over N GPUs (ring attention).")
CapacityFactorOption = Annotated[
    str,
    typer.Option(
        "--capacity-factor",
        metavar="F",
        help="With --ep: tokens each expert takes over its evenly routed share (default 1.0).",
    ),
]
FsdpOption = text_option(
    "--fsdp",
    metavar="full|grad-op|hybrid",
    help="PyTorch FSDP's sharding: full (ZeRO-3), grad-op (ZeRO-2), hybrid (ZeRO-3 inside a node, replicated across).",
)
SequenceParallelOption = Annotated[
    bool, typer.Option("--sequence-parallel", help="Split the hidden stream's activations over the tp group too.")
]
RecomputeOption = text_option(
    "--recompute",
    metavar="none|selective|full",
    help="Activation recomputation: none (default), selective (attention scores) or full.",
)
OptimizerOption = Annotated[
    str, typer.Option("--optimizer", metavar="adamw|sgd", help="adamw (default) or sgd (with momentum).")
]
IntraNodeOption = text_option(
    "--intra-node-gbps",
    metavar="GB/s",
    help="Achievable bus bandwidth per GPU inside a node, GB/s (nccl-tests busbw; default: the catalogue's link figure).",
)
InterNodeOption = text_option(
    "--inter-node-gbps",
    metavar="GB/s",
    help="Achievable bus bandwidth per GPU across nodes, GB/s (default 25, printed as an assumption).",
)
GpuMemoryOption = text_option(
    "--gpu-memory", metavar="GiB", help='Memory per GPU in GiB (default: the catalogue\'s; an "80 GB" GPU has 80 GiB).'
)
OffloadOption = text_option(
    "--offload",
    metavar="WHAT",
    help="Move to host memory: optimizer, params (with gradients and optimizer) or "
    "activations, comma-separated (ZeRO-Offload, FSDP CPU offload).",
)
HostMemoryOption = text_option("--host-memory", metavar="GiB", help="Host (CPU) memory per node, for --offload.")
HostLinkOption = text_option(
    "--host-link-gbps", metavar="GB/s", help="GPU-to-host link per direction (default: the catalogue's PCIe figure)."
)
SearchOption = Annotated[
    bool,
    typer.Option(
        "--search",
        help="Try every dp x tp x pp x ZeRO x recompute x micro-batch of --num-gpus; options given pin their "
        "dimension.",
    ),
]
TopOption = Annotated[int, typer.Option("--top", metavar="N", help="With --search: how many layouts to show.")]
BaseDtypeOption = text_option(
    "--base-dtype",
    metavar="DTYPE",
    help="With LoRA: the frozen base's dtype: nf4 (QLoRA: 4 bits, block-64 absmax, "
    "double quantisation), fp4, int8 (LLM.int8()), bf16, fp16 or fp32 (default: "
    "the training precision's).",
)
TeacherDtypeOption = text_option(
    "--teacher-dtype",
    metavar="DTYPE",
    help="With --teacher: the teacher's weights' dtype (nf4, fp4, int8, bf16, "
    "fp16, fp32; default: the training precision's).",
)


def whole(text: Optional[str], flag: str) -> Optional[int]:
    """A whole number >= 1 given to FLAG (SI suffixes allowed), or None when not given."""
    value = number(text, flag)
    if value is not None and (value < 1 or value != int(value)):
        raise UsageError(f"{flag} must be a whole number >= 1, got {text!r}")
    return None if value is None else int(value)


def memory_reserve_gib(text: Optional[str]) -> Optional[float]:
    """--memory-reserve GiB: 0 is allowed (nothing set aside)."""
    if text is None:
        return None
    value = parse_si_number(text, "--memory-reserve")
    if value < 0:
        raise UsageError(f"--memory-reserve must be >= 0 GiB, got {text!r}")
    return value


def stage_layers_split(text: str | None) -> tuple[int, ...]:
    """`--stage-layers 9,8,8,7` -> (9, 8, 8, 7); their count and sum are checked against the model's layers."""
    if text is None:
        return ()
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() and len(item) <= 9 for item in items):
        raise UsageError(f"--stage-layers {text!r} is not a list of whole numbers", "write e.g. --stage-layers 9,8,8,7")
    return tuple(int(item) for item in items)


MODEL_SHAPE_FLAGS = ("--heads", "--kv-heads")  # a MODEL may need them too: its graph may not show its heads


def plan_shape(ctx: typer.Context) -> GivenShape:
    """The transformer shape given on the command line, for a model not at hand."""
    from ..plan import GivenShape  # the plan library loads with the command, not with the CLI

    return options_of(GivenShape, ctx)


def plan_spec(options: ModelOptions, shape: GivenShape) -> Optional[ModelSpec]:
    """The model file's spec, or None for --params (which needs --seq-len and takes none of the file's options)."""
    spec = options.spec_or_none("plan", besides=["seq_len"])
    named = [flag for flag, value in shape.flags().items() if value is not None and flag not in MODEL_SHAPE_FLAGS]
    if spec is not None and named:
        raise UsageError(f"{', '.join(named)} describe a model given by --params", "a MODEL shows its own shape")
    return spec


@dataclass(frozen=True)
class FleetOptions(ReadBack):
    """plan's own options of the fleet, beside the GPU options: the links and the memory per GPU. The fields are
    the options' declarations, in the order --help lists them."""

    intra_node_gbps: IntraNodeOption = None
    inter_node_gbps: InterNodeOption = None
    gpu_memory: GpuMemoryOption = None
    memory_reserve: MemoryReserveOption = None
