"""`flopcalc plan`: does a training run fit in GPU memory, how to split it over GPUs, how long it takes.

The model is counted once (`model`); everything after is arithmetic on its figures (`evaluation` for one layout,
`layout_search` for all of them), so thousands of layouts take well under a second. One module per part of the
arithmetic, each formula with its source in docs/plan.md: model states and activations (`memory`: ZeRO,
Korthikanti et al.), ring collectives (`communication`), the step and its 1F1B bubble (`schedule`), the whole run
(`totals`); expert and context parallelism (`experts`, `context`), FSDP's names (`sharding`) and fp8 GEMMs (`fp8`)
each in a module of its own. Plain floats throughout; result objects (`result`) are frozen, `to_dict()` the JSON
contract.
"""

from ..compute import SECONDS_PER_HOUR
from ..units import GB, GIB, SECONDS_PER_DAY  # re-exported: plan's users read memory in GiB and links in GB/s
from .assumptions import assumptions, layout_notes
from .checks import positive, positive_int
from .communication import TP_ALL_REDUCES_PER_BLOCK, TP_ALL_REDUCES_RECOMPUTED, ring_all_reduce_s, ring_gather_s
from .evaluation import LayoutFigures, evaluate, layout_figures
from .finetune import frozen_dtype, model_with_adapters, with_teacher
from .hardware import (
    DEFAULT_GPUS_PER_NODE,
    DEFAULT_INTER_NODE_GBPS,
    RESERVE_CONTEXT_GIB,
    RESERVE_FRAGMENTATION,
    Bandwidth,
    Fleet,
    default_reserve_bytes,
)
from .layout import RECOMPUTE, ZERO_STAGES, Layout, check_layout, layout_from_options
from .layout_search import DEFAULT_TOP, MICRO_BATCHES_PER_SETTING, search
from .memory import layout_memory
from .model import FineTuning, PlanModel, model_from_params, model_from_report, model_from_spec
from .offload import OFFLOAD_TARGETS, HostLink, Offload, apply_offload, host_link, offload_targets
from .precision import (
    OPTIMIZER_NAMES,
    OPTIMIZER_STATES,
    OPTIMIZERS,
    TRAINING_PRECISIONS,
    TrainingPrecision,
    check_optimizer,
    training_precision,
)
from .predicted import (
    PREDICTED_PRECISIONS,
    predicted_step_time,
    predicted_utilization,
    prediction_shape,
    training_prediction,
)
from .resolve import INTER_NODE_ORIGIN, calibrated_bandwidths, resolve_fleet, step_profile, training_throughput
from .result import SCHEMA_VERSION, MemoryPerGpu, Plan, RunTotals, SearchResult, StepTime
from .schedule import recompute_flops, step_time
from .shape import (
    ATTENTIONS,
    DEFAULT_ATTENTION,
    DEFAULT_MLP,
    MLPS,
    PARAMS_TOLERANCE,
    GivenShape,
    Shape,
    korthikanti_profile,
    transformer_shape,
)
from .totals import RunSize, run_size, run_totals

__all__ = [
    "ATTENTIONS",
    "DEFAULT_ATTENTION",
    "DEFAULT_GPUS_PER_NODE",
    "DEFAULT_INTER_NODE_GBPS",
    "DEFAULT_MLP",
    "DEFAULT_TOP",
    "GB",
    "GIB",
    "INTER_NODE_ORIGIN",
    "MICRO_BATCHES_PER_SETTING",
    "MLPS",
    "OPTIMIZERS",
    "OPTIMIZER_NAMES",
    "OPTIMIZER_STATES",
    "PARAMS_TOLERANCE",
    "PREDICTED_PRECISIONS",
    "RECOMPUTE",
    "RESERVE_CONTEXT_GIB",
    "RESERVE_FRAGMENTATION",
    "SCHEMA_VERSION",
    "SECONDS_PER_DAY",
    "SECONDS_PER_HOUR",
    "TP_ALL_REDUCES_PER_BLOCK",
    "TP_ALL_REDUCES_RECOMPUTED",
    "TRAINING_PRECISIONS",
    "ZERO_STAGES",
    "Bandwidth",
    "FineTuning",
    "Fleet",
    "GivenShape",
    "Layout",
    "LayoutFigures",
    "MemoryPerGpu",
    "Plan",
    "PlanModel",
    "RunSize",
    "RunTotals",
    "SearchResult",
    "Shape",
    "StepTime",
    "TrainingPrecision",
    "assumptions",
    "calibrated_bandwidths",
    "frozen_dtype",
    "model_with_adapters",
    "with_teacher",
    "check_layout",
    "check_optimizer",
    "default_reserve_bytes",
    "evaluate",
    "korthikanti_profile",
    "layout_figures",
    "layout_from_options",
    "layout_memory",
    "layout_notes",
    "model_from_params",
    "model_from_report",
    "model_from_spec",
    "positive",
    "positive_int",
    "predicted_step_time",
    "predicted_utilization",
    "prediction_shape",
    "recompute_flops",
    "resolve_fleet",
    "ring_all_reduce_s",
    "ring_gather_s",
    "run_size",
    "run_totals",
    "search",
    "step_profile",
    "step_time",
    "training_precision",
    "training_prediction",
    "training_throughput",
    "transformer_shape",
    "OFFLOAD_TARGETS",
    "HostLink",
    "Offload",
    "apply_offload",
    "host_link",
    "offload_targets",
]
