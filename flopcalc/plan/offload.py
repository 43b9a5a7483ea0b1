"""Offload to the host's memory, as ZeRO-Offload, ZeRO-Infinity and FSDP's CPU offload do: what leaves each GPU,
what the host of a node must then hold, and the traffic each step sends over the GPU's host link (PCIe), priced
at the catalogue's host-link figure. Applied to one evaluated layout, so the rest of the plan is unchanged."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..catalog import load_catalog
from ..device import find_accelerator
from ..errors import UsageError
from ..units import GB, GIB
from .hardware import Fleet
from .precision import OPTIMIZER_STATES, TrainingPrecision
from .result import MemoryPerGpu, Plan
from .totals import RunSize, run_totals

OFFLOAD_TARGETS = ("optimizer", "params", "activations")
# what each target moves to the host: parameters imply the gradients and the optimizer (FSDP's
# CPUOffload(offload_params=True), ZeRO-Infinity's parameter offload with its optimizer offload)
OFFLOADED = {
    "optimizer": ("optimizer",),
    "params": ("weights", "gradients", "optimizer"),
    "activations": ("activations",),
}
NOT_MODELLED = (
    "offload: the GPU still gathers the layer it computes (its weights and activations, not counted); "
    "host-link transfers are added to the step in full (none overlapped with compute); the CPU "
    "optimizer step's time is not in the step"
)


@dataclass(frozen=True)
class HostLink:
    """One direction of a GPU's link to its host's memory (PCIe), bytes/s, and where the figure came from."""

    bandwidth: float
    source: str


@dataclass(frozen=True)
class Offload:
    """What offload changes for one layout: the GPU's memory before and after, the host's share, the traffic."""

    targets: tuple[str, ...]
    before: MemoryPerGpu
    after: MemoryPerGpu
    host_bytes_per_gpu: float
    gpus_per_node: int
    host_memory_per_node: float
    to_host_bytes: float  # per GPU per optimizer step
    to_gpu_bytes: float
    link: HostLink
    cpu_step_params: float  # parameters the host's CPUs update per GPU per step (0 without optimizer offload)
    cpu_step_bytes: float  # host memory the CPU optimizer step reads and writes, per GPU per step

    @property
    def relieved_bytes(self) -> float:
        return self.before.total - self.after.total

    @property
    def host_bytes_per_node(self) -> float:
        return self.host_bytes_per_gpu * self.gpus_per_node

    @property
    def host_fits(self) -> bool:
        return self.host_bytes_per_node <= self.host_memory_per_node

    @property
    def transfer_s(self) -> float:
        """PCIe carries both directions at once: the step waits for the larger."""
        return max(self.to_host_bytes, self.to_gpu_bytes) / self.link.bandwidth

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": list(self.targets),
            "gpu_bytes_relieved": self.relieved_bytes,
            "memory_per_gpu_bytes_before": self.before.to_dict(),
            "host_bytes_per_gpu": self.host_bytes_per_gpu,
            "host_bytes_per_node": self.host_bytes_per_node,
            "host_memory_per_node_bytes": self.host_memory_per_node,
            "host_fits": self.host_fits,
            "gpus_per_node": self.gpus_per_node,
            "to_host_bytes_per_step": self.to_host_bytes,
            "to_gpu_bytes_per_step": self.to_gpu_bytes,
            "host_link_gbps": self.link.bandwidth / GB,
            "host_link_source": self.link.source,
            "transfer_s_per_step": self.transfer_s,
            "cpu_optimizer_params_per_gpu": self.cpu_step_params,
            "cpu_optimizer_bytes_per_gpu": self.cpu_step_bytes,
        }


def offload_targets(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """`optimizer,activations` -> ("optimizer", "activations"), each known, each once."""
    if text is None:
        return ()
    items = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [item for item in items if item not in OFFLOAD_TARGETS]
    if unknown or not items:
        raise UsageError(
            f"--offload {','.join(unknown) or text!r} is not one of {', '.join(OFFLOAD_TARGETS)}",
            "write e.g. --offload optimizer or --offload params,activations",
        )
    return tuple(target for target in OFFLOAD_TARGETS if target in items)


def host_link(fleet: Fleet, catalogs: Sequence[str] = (), gbps: float | None = None) -> HostLink:
    """The figure given (--host-link-gbps, one direction), else the catalogue's host link per direction."""
    if gbps is not None:
        if isinstance(gbps, bool) or not isinstance(gbps, (int, float)) or not 0 < gbps < math.inf:
            raise UsageError(f"--host-link-gbps must be a number of GB/s > 0, got {gbps!r}")
        return HostLink(gbps * GB, "--host-link-gbps")
    gpu = fleet.throughput.gpu
    accelerator = find_accelerator(load_catalog(tuple(catalogs)), gpu) if gpu else None
    link = None if accelerator is None else accelerator.host_link
    if link is None:
        raise UsageError(
            f"the catalogue has no host link figure for {gpu or 'this GPU'}, so offload traffic cannot be priced",
            "give --host-link-gbps (GB/s per direction; PCIe Gen4 x16: 32, Gen5: 64)",
        )
    return HostLink(link.per_direction_gbps * GB, f"catalogue, {accelerator.id}: {link.describe()}")


def apply_offload(
    plan: Plan,
    targets: tuple[str, ...],
    fleet: Fleet,
    precision: TrainingPrecision,
    optimizer: str,
    run: RunSize | None,
    link: HostLink,
    host_memory_gib: float | None,
) -> Plan:
    """`plan` with `targets` offloaded: its memory per GPU relieved, its step longer by the host-link traffic,
    its run totals again; `Plan.offload` says what moved where."""
    if host_memory_gib is None:
        raise UsageError(
            "--offload needs the host memory of a node to know what fits there",
            "give --host-memory GiB (e.g. 2048 for a DGX H100's 2 TB)",
        )
    if isinstance(host_memory_gib, bool) or not 0 < host_memory_gib < math.inf:
        raise UsageError(f"--host-memory must be a number of GiB > 0, got {host_memory_gib!r}")
    before, layout = plan.memory, plan.layout
    moved = {field for target in targets for field in OFFLOADED[target]}
    after = replace(
        before,
        **{field: 0.0 for field in moved if field != "activations"},
        **({"activations": 0.0 if before.activations is not None else None} if "activations" in moved else {}),
    )
    host = sum(getattr(before, field) or 0.0 for field in moved)
    m = layout.grad_accum
    # the parameters whose optimizer states this GPU holds (its ZeRO shard), from the bytes they take
    optimizer_per_param = precision.optimizer_bytes(optimizer)
    shard_params = before.optimizer / optimizer_per_param if optimizer_per_param else 0.0
    to_host = to_gpu = 0.0
    if "params" in targets:  # every micro-batch: the weights in for forward and backward, the gradients out
        to_gpu += m * 2 * before.weights
        to_host += m * before.gradients
    elif "optimizer" in targets:  # once a step: the shard's gradients out, its updated weights back
        to_host += shard_params * precision.gradient_bytes
        to_gpu += shard_params * precision.weight_bytes
    if "activations" in targets and before.activations:  # each stashed micro-batch out in forward, in for backward
        stash = before.activations / _in_flight(before.stage, layout.pp, m)
        to_host += m * stash
        to_gpu += m * stash
    # the CPU step of AdamW / SGD: reads the gradient, reads and writes the master weights and each state
    cpu_bytes = shard_params * (
        precision.gradient_bytes
        + 2 * (precision.master_bytes or precision.weight_bytes)
        + 2 * OPTIMIZER_STATES[optimizer] * precision.state_bytes
    )
    offload = Offload(
        targets,
        before,
        after,
        host,
        min(layout.num_gpus, fleet.gpus_per_node),
        host_memory_gib * GIB,
        to_host,
        to_gpu,
        link,
        shard_params if "optimizer" in moved else 0.0,
        cpu_bytes if "optimizer" in moved else 0.0,
    )
    step = plan.step
    if step is not None:
        step = replace(
            step, exposed_comm_s=step.exposed_comm_s + offload.transfer_s, step_s=step.step_s + offload.transfer_s
        )
    training = plan.training
    if step is not None and run is not None:
        training = run_totals(plan.model, layout, fleet, step, run)
    notes = (*plan.notes, NOT_MODELLED)
    return replace(plan, memory=after, step=step, training=training, notes=notes, offload=offload)


def _in_flight(stage: str, pp: int, grad_accum: int) -> int:
    """Micro-batches whose activations a stage holds at once under 1F1B (as plan.memory counts them)."""
    return min(pp, grad_accum) if stage == "first" else 1
