"""NCCL paths of `bench --distributed` (flopcalc/bench/distributed.py): run only where CUDA is present; the fleet
itself needs two GPUs (NCCL refuses two ranks on one GPU). `bash benchmarks/gpu_fleet_check.sh` runs them."""

from __future__ import annotations

import functools
import signal
import socket

import pytest

torch = pytest.importorskip("torch")

from flopcalc.bench.distributed import launch_fleet  # noqa: E402
from flopcalc.bench.fleet import FleetConfig  # noqa: E402
from flopcalc.errors import FleetError  # noqa: E402
from tests._fleet_helpers import SignalSelfAt  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA (or ROCm) device"),
]
needs_two = pytest.mark.skipif(
    torch.cuda.is_available() and torch.cuda.device_count() < 2, reason="an NCCL fleet needs two GPUs"
)
MiB = 2**20


def test_a_rank_without_a_gpu_is_named_before_any_collective():
    count = torch.cuda.device_count()
    with pytest.raises(FleetError) as caught:
        launch_fleet(FleetConfig(device="cuda", seconds=1, max_bytes=MiB, timeout_s=120), count + 1)
    assert (
        f"rank {count} on host {socket.gethostname()} cannot take part: LOCAL_RANK {count} but {count} GPU(s) "
        f"are visible"
    ) in str(caught.value)


@needs_two
def test_nccl_fleet_on_every_gpu_of_this_machine():
    count = torch.cuda.device_count()
    result = launch_fleet(FleetConfig(device="cuda", seconds=3, max_bytes=256 * MiB, timeout_s=120), count)
    assert (result.backend, result.device, result.world_size, result.nodes) == ("nccl", "cuda", count, 1)
    precision = next(iter(result.matmul_summary()))
    assert precision in ("bf16", "fp16") and all(r.tflops[precision] > 1 for r in result.per_rank)
    for item in (*result.collectives, *result.p2p):
        n, seconds = item.ranks, item.time_s
        factor = {
            "all_reduce": 2 * (n - 1) / n,
            "all_gather": (n - 1) / n,
            "reduce_scatter": (n - 1) / n,
            "sendrecv": 1.0,
        }[item.op]
        assert item.busbw_gbps == pytest.approx(item.bytes / seconds / 1e9 * factor)
        assert item.busbw_gbps < 5000  # no GPU link carries 5 TB/s: more means a timing bug
    headline = result.headline("world", "all_reduce")
    assert headline.bytes == 256 * MiB and headline.busbw_gbps > 1  # PCIe alone does more


@needs_two
def test_a_killed_nccl_rank_is_named():
    with pytest.raises(FleetError, match=r"rank 0 on host .* was killed by SIGKILL"):
        launch_fleet(
            FleetConfig(device="cuda", seconds=1, max_bytes=16 * MiB, timeout_s=60),
            2,
            progress_factory=functools.partial(SignalSelfAt, "all_gather", signal.SIGKILL),
        )
