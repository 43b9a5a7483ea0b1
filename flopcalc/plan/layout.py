"""How the GPUs split the work (dp x tp x pp, ZeRO, recomputation, batches), and what a layout asks of a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..predict import given_stage_layers
from ..predict.step import RECOMPUTE
from .checks import positive_int
from .hardware import DEFAULT_GPUS_PER_NODE
from .model import PlanModel
from .parallel_checks import check_expert_split, check_shard_group
from .sharding import fsdp_setting

ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True)
class Layout:
    """How the GPUs split the work: dp x tp x pp GPUs, ZeRO stage, recomputation, micro- and global batch."""

    dp: int = 1
    tp: int = 1
    pp: int = 1
    zero: int = 0
    recompute: str = "none"
    sequence_parallel: bool = False
    micro_batch: int = 1
    global_batch: int | None = None  # examples per optimizer step; None = dp x micro_batch
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE
    ep: int = 1  # expert-parallel GPUs, inside the data-parallel group (plan/experts.py)
    cp: int = 1  # context-parallel GPUs, each holding 1/cp of every sequence (plan/context.py)
    capacity_factor: float = 1.0  # tokens an expert takes, over the evenly routed share (plan/experts.py)
    fsdp: str | None = None  # the FSDP name the ZeRO stage was given by (plan/sharding.py)
    shard_group: int = 0  # GPUs the model states are sharded over; 0: the whole data group (dp x cp)
    virtual: int = 1  # model chunks per GPU: interleaved 1F1B (Narayanan et al. 2021, Sec. 2.2.2); 1 = plain 1F1B
    stage_layers: tuple[int, ...] = ()  # layers per pipeline stage (--stage-layers); () = the even split

    def __post_init__(self) -> None:
        for name in ("dp", "tp", "pp", "micro_batch", "ep", "cp"):
            positive_int(getattr(self, name), f"--{name.replace('_', '-')}")
        check_expert_split(self.dp, self.ep, self.capacity_factor)
        check_shard_group(self)
        positive_int(self.virtual, "--virtual-stages")
        if self.virtual > 1 and self.pp == 1:
            raise UsageError(
                f"--virtual-stages {self.virtual} interleaves pipeline stages, and pp is 1",
                "give --pp > 1, or drop --virtual-stages",
            )
        if self.stage_layers and self.virtual > 1:
            raise UsageError(
                "--stage-layers with --virtual-stages: interleaving gives every chunk the same layers",
                "drop one of them",
            )
        if self.zero not in ZERO_STAGES:
            raise UsageError(f"--zero must be 0, 1, 2 or 3, got {self.zero!r}")
        if self.recompute not in RECOMPUTE:
            raise UsageError(f"--recompute must be none, selective or full, got {self.recompute!r}")
        if self.global_batch is not None:
            positive_int(self.global_batch, "--global-batch")
            if self.global_batch % (self.dp * self.micro_batch):
                raise UsageError(
                    f"--global-batch {self.global_batch} is not a multiple of dp x micro-batch = "
                    f"{self.dp} x {self.micro_batch}",
                    "each optimizer step runs whole micro-batches on every replica",
                )

    @property
    def num_gpus(self) -> int:
        return self.dp * self.tp * self.pp * self.cp

    @property
    def data_group(self) -> int:
        """GPUs holding the same weights: data-parallel replicas x context-parallel ranks (Megatron-Core reduces
        gradients and shards the optimizer over both)."""
        return self.dp * self.cp

    @property
    def sharded_over(self) -> int:
        """GPUs the ZeRO/FSDP stage shards the model states over: the data group, or a hybrid shard group."""
        return self.shard_group or self.data_group

    @property
    def batch(self) -> int:
        return self.global_batch if self.global_batch is not None else self.dp * self.micro_batch

    @property
    def grad_accum(self) -> int:
        """Micro-batches per replica per optimizer step (m in the bubble formula)."""
        return self.batch // (self.dp * self.micro_batch)

    @property
    def split_sequence(self) -> bool:
        return self.sequence_parallel and self.tp > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "dp": self.dp,
            "tp": self.tp,
            "pp": self.pp,
            "zero": self.zero,
            "recompute": self.recompute,
            "sequence_parallel": self.sequence_parallel,
            "micro_batch": self.micro_batch,
            "global_batch": self.batch,
            "grad_accum": self.grad_accum,
            "num_gpus": self.num_gpus,
            "gpus_per_node": self.gpus_per_node,
            "virtual_stages": self.virtual,
            "ep": self.ep,
            "cp": self.cp,
            "capacity_factor": self.capacity_factor,
            "fsdp": self.fsdp,
            "shard_group": self.sharded_over,
        }

    def label(self) -> str:
        extra = (
            f"{f', ep {self.ep}' if self.ep > 1 else ''}{f', cp {self.cp}' if self.cp > 1 else ''}"
            f"{f', FSDP {self.fsdp}' if self.fsdp else ''}"
        )
        return (
            f"dp {self.dp} x tp {self.tp} x pp {self.pp}{extra}, ZeRO-{self.zero}, recompute {self.recompute}"
            f"{', sequence parallel' if self.split_sequence else ''}, micro-batch {self.micro_batch}"
            f"{f', {self.virtual} virtual stages (interleaved 1F1B)' if self.virtual > 1 else ''}"
            f"{', layers per stage ' + ','.join(map(str, self.stage_layers)) if self.stage_layers else ''}"
        )


def check_layout(model: PlanModel, layout: Layout) -> None:
    """What a layout asks of the model's shape: tensor parallelism splits heads, pipeline stages take whole blocks."""
    if model.tuning is not None and model.tuning.has_teacher and (layout.tp > 1 or layout.pp > 1):
        raise UsageError(
            f"--teacher is planned whole on every GPU: tp {layout.tp} x pp {layout.pp} would split the "
            "student and not the teacher",
            "use --tp 1 --pp 1 (data parallelism and ZeRO) with --teacher",
        )
    if layout.tp > 1:
        if not model.blocks:
            raise UsageError(
                f"--tp {layout.tp} splits a transformer's layers, and this model shows no repeated blocks",
                "give --layers, --hidden and --heads with --params; a TorchScript module hides its "
                "blocks: plan its Python model",
            )
        if not model.heads:
            raise UsageError(
                f"--tp {layout.tp} needs the model's attention heads, which its graph does not show",
                "give --heads (and --kv-heads)",
            )
        if model.heads % layout.tp:
            raise UsageError(
                f"--tp {layout.tp} does not divide the {model.heads} attention heads",
                f"use a tp that divides {model.heads}",
            )
        if model.kv_heads and model.kv_heads % layout.tp:
            raise UsageError(
                f"--tp {layout.tp} does not divide the {model.kv_heads} key/value heads",
                f"use a tp that divides {model.kv_heads}",
            )
    if layout.stage_layers:  # one count per stage, adding up to the blocks
        given_stage_layers(layout.stage_layers, model.blocks, layout.pp)
    if layout.pp > 1:
        if not model.blocks:
            raise UsageError(
                f"--pp {layout.pp} needs repeated blocks to split, and the model shows none",
                "use --pp 1, or give --layers with --params",
            )
        if layout.pp > model.blocks:
            raise UsageError(
                f"--pp {layout.pp} is more than the model's {model.blocks} layers",
                f"use at most {model.blocks} pipeline stages",
            )
        chunks = layout.pp * layout.virtual
        if layout.virtual > 1 and model.blocks % chunks:
            raise UsageError(
                f"--pp {layout.pp} x --virtual-stages {layout.virtual} = {chunks} model chunks do not "
                f"divide the model's {model.blocks} layers",
                "interleaving gives every chunk the same number of layers (Megatron-LM's rule)",
            )
        if layout.virtual > 1 and layout.grad_accum % layout.pp:
            raise UsageError(
                f"interleaving runs micro-batches in groups of pp = {layout.pp}, and there are "
                f"{layout.grad_accum} per replica",
                "give a --global-batch of dp x micro-batch x a multiple of pp (Megatron-LM's rule)",
            )


def layout_from_options(
    model: PlanModel,
    *,
    num_gpus: int | None = None,
    global_batch: int | None = None,
    sequence_parallel: bool = False,
    gpus_per_node: int = DEFAULT_GPUS_PER_NODE,
    dp: int | None = None,
    tp: int | None = None,
    pp: int | None = None,
    zero: int | None = None,
    recompute: str | None = None,
    micro_batch: int | None = None,
    ep: int | None = None,
    cp: int | None = None,
    capacity_factor: float = 1.0,
    fsdp: str | None = None,
    virtual: int | None = None,
    stage_layers: tuple[int, ...] = (),
) -> Layout:
    """The layout a user names, with what is left out filled in: dp x tp x pp (x cp) must make `num_gpus`, dp
    defaults to what is left over, the micro-batch to the batch the model was counted with; `fsdp` names a ZeRO
    stage (plan/sharding.py)."""
    tp, pp, cp = (1 if tp is None else tp), (1 if pp is None else pp), (1 if cp is None else cp)
    if min(tp, pp, cp, 1 if dp is None else dp) < 1:
        raise UsageError("--dp, --tp, --pp and --cp must be whole numbers >= 1")
    names, split = ("tp x pp", tp * pp) if cp == 1 else ("tp x pp x cp", tp * pp * cp)
    if num_gpus is None:
        num_gpus = (1 if dp is None else dp) * split
    if dp is None:
        if num_gpus % split:
            raise UsageError(
                f"--num-gpus {num_gpus} is not a multiple of {names} = {split}",
                f"dp x {names} must make the number of GPUs",
            )
        dp = num_gpus // split
    if dp * split != num_gpus:
        sizes = f"{dp} x {tp} x {pp}" + (f" x {cp}" if cp > 1 else "")
        raise UsageError(
            f"dp x {names} = {sizes} = {dp * split}, not --num-gpus {num_gpus}",
            f"dp x {names} must make the number of GPUs",
        )
    zero, shard_group = fsdp_setting(fsdp, zero, dp=dp, tp=tp, cp=cp, gpus_per_node=gpus_per_node)
    return Layout(
        dp=dp,
        tp=tp,
        pp=pp,
        zero=0 if zero is None else zero,
        recompute=recompute or "none",
        sequence_parallel=sequence_parallel,
        micro_batch=model.batch if micro_batch is None else micro_batch,
        global_batch=global_batch,
        gpus_per_node=gpus_per_node,
        ep=1 if ep is None else ep,
        cp=cp,
        capacity_factor=capacity_factor,
        fsdp=fsdp,
        shard_group=shard_group,
        virtual=1 if virtual is None else virtual,
        stage_layers=stage_layers,
    )
