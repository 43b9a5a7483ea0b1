"""The fleet benchmark's arithmetic and records (flopcalc/bench/fleet.py): nccl-tests' formulas written out, the
launcher's environment, the options every rank shares, the layout from every rank's hello, the result's JSON
contract and its calibration entry (read back, and as a planner reads it)."""

from __future__ import annotations

import pytest

from flopcalc.bench.fleet import (
    CollectiveResult,
    FleetConfig,
    LaunchEnv,
    RankTiming,
    bus_factor,
    combine_timings,
    group_elements,
    message_sizes,
    save_fleet_result,
)
from flopcalc.bench.fleet_layout import fleet_layout
from flopcalc.calibration import load_calibration, measured_bandwidths, parse_calibration
from flopcalc.errors import FleetError, UsageError
from tests._fleet_helpers import two_node_result


@pytest.mark.parametrize("ranks", [2, 3, 8])
def test_bus_factors_are_nccl_tests(ranks):
    assert bus_factor("all_reduce", ranks) == pytest.approx(2 * (ranks - 1) / ranks)
    assert bus_factor("all_gather", ranks) == pytest.approx((ranks - 1) / ranks)
    assert bus_factor("reduce_scatter", ranks) == pytest.approx((ranks - 1) / ranks)
    assert bus_factor("sendrecv", ranks) == 1.0


def test_collective_result_bandwidths():
    # 1 GiB all-reduce over 8 ranks in 10 ms: algbw = 2**30 / 0.01 / 1e9 = 107.37 GB/s, busbw x 2*7/8 = 187.9
    item = CollectiveResult("all_reduce", "intra", 2**30, 8, 1, 20, 0.01)
    assert item.algbw_gbps == pytest.approx(107.3741824)
    assert item.busbw_gbps == pytest.approx(107.3741824 * 14 / 8)
    gather = CollectiveResult("all_gather", "inter", 2**30, 4, 8, 5, 0.02)
    assert gather.busbw_gbps == pytest.approx(2**30 / 0.02 / 1e9 * 3 / 4)


def test_message_sizes_and_elements():
    assert message_sizes(4 * 2**20, "cpu") == (4096, 16384, 65536, 262144, 1048576, 4194304)
    assert message_sizes(2**30, "cuda") == tuple(2**30 // 4**k for k in range(7, -1, -1))  # 64 KiB .. 1 GiB
    assert message_sizes(2048, "cpu") == (2048,)
    assert group_elements(4096, 3) == 1023  # 4092 bytes: each of 3 ranks holds 341 floats
    assert group_elements(4096, 2) == 1024
    assert group_elements(4, 8) == 8  # never less than one float per rank


def test_combine_takes_the_slowest_member_then_the_slowest_group():
    timings = [
        RankTiming("intra", "all_reduce", 4096, 2, 0, 20, 1.0e-3),
        RankTiming("intra", "all_reduce", 4096, 2, 0, 20, 1.5e-3),
        RankTiming("intra", "all_reduce", 4096, 2, 1, 10, 2.0e-3),
        RankTiming("intra", "all_reduce", 4096, 2, 1, 10, 1.0e-3),
        RankTiming("world", "all_gather", 4096, 4, 0, 20, 4.0e-3),
        RankTiming("world", "all_reduce", 4096, 4, 0, 20, 3.0e-3),
    ]
    world_reduce, world_gather, intra = combine_timings(timings)  # scopes world, intra, inter; then the collectives
    assert (world_reduce.scope, world_reduce.op, world_reduce.ranks) == ("world", "all_reduce", 4)
    assert (world_gather.op, world_gather.time_s) == ("all_gather", 4.0e-3)
    # intra: group 0's slowest member took 1.5 ms, group 1's 2 ms: the fleet waits for group 1
    assert (intra.scope, intra.op, intra.groups, intra.iterations, intra.time_s) == (
        "intra",
        "all_reduce",
        2,
        10,
        2.0e-3,
    )


LAUNCHED = {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}


def test_launch_env_reads_torchrun_variables():
    env = LaunchEnv.from_environ({**LAUNCHED, "GROUP_RANK": "0", "TORCHELASTIC_USE_AGENT_STORE": "True"})
    assert (env.rank, env.world_size, env.local_rank, env.master_port, env.node_rank, env.agent_store) == (
        1,
        4,
        1,
        29500,
        0,
        True,
    )


@pytest.mark.parametrize(
    "environ, text",
    [
        ({}, "--distributed needs a launcher"),
        ({"RANK": "0", "WORLD_SIZE": "2"}, "lacks LOCAL_RANK, MASTER_ADDR, MASTER_PORT"),
        ({**LAUNCHED, "WORLD_SIZE": "1", "RANK": "0"}, "needs at least 2 ranks"),
        ({**LAUNCHED, "RANK": "4"}, "RANK=4 is outside WORLD_SIZE=4"),
        ({**LAUNCHED, "MASTER_PORT": "http"}, "MASTER_PORT='http' is not a whole number"),
    ],
)
def test_launch_env_errors(environ, text):
    with pytest.raises(UsageError, match=text):
        LaunchEnv.from_environ(environ)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"device": "mps"}, "cannot run a fleet"),
        ({"backend": "mpi"}, "unknown backend"),
        ({"timeout_s": 0}, "--timeout must be"),
        ({"max_bytes": 100}, "at least 1 KiB"),
    ],
)
def test_fleet_config_errors(kwargs, text):
    with pytest.raises(UsageError, match=text):
        FleetConfig(**kwargs)


def hello(rank, host="a", local_rank=None, **changes):
    data = {
        "rank": rank,
        "host": host,
        "pid": 100 + rank,
        "local_rank": rank if local_rank is None else local_rank,
        "node_rank": None,
        "device": "cuda",
        "device_name": "NVIDIA H100 80GB HBM3",
        "backend": "nccl",
        "torch_version": "2.13.0",
        "options": FleetConfig().options(),
        "error": None,
    }
    data.update(changes)
    return data


def test_layout_groups_nodes_by_host_and_makes_scopes():
    hellos = [hello(0, "a", 0), hello(1, "a", 1), hello(2, "b", 0), hello(3, "b", 1)]
    layout = fleet_layout(hellos)
    assert layout.nodes == ((0, 1), (2, 3)) and layout.ranks_per_node == 2
    assert layout.scopes() == ("world", "intra", "inter")
    assert layout.groups("world") == ((0, 1, 2, 3),)
    assert layout.groups("inter") == ((0, 2), (1, 3))  # local rank i of every node, for each i
    assert fleet_layout(hellos[:2]).scopes() == ("world",)


def test_layout_prefers_the_launchers_node_index():
    hellos = [hello(rank, "same-host", rank % 2, node_rank=rank // 2) for rank in range(4)]
    assert fleet_layout(hellos).nodes == ((0, 1), (2, 3))


@pytest.mark.parametrize(
    "changes, text",
    [
        ({"backend": "gloo"}, "mismatched backend: rank 1 on host b has 'gloo', rank 0 on host a has 'nccl'"),
        ({"device_name": "NVIDIA A100-SXM4-80GB"}, "mismatched device: rank 1 on host b has 'NVIDIA A100"),
        (
            {"options": {**FleetConfig().options(), "max_bytes": 4096}},
            "mismatched options: rank 1 on host b has max_bytes=4096",
        ),
        ({"error": "LOCAL_RANK 1 but 1 GPU(s) are visible on b"}, "rank 1 on host b cannot take part: LOCAL_RANK 1"),
    ],
)
def test_layout_refuses_ranks_that_cannot_work_together(changes, text):
    with pytest.raises(FleetError, match=text.replace("(", r"\(").replace(")", r"\)")):
        fleet_layout([hello(0, "a"), hello(1, "b", 0, **changes)])


def test_layout_refuses_uneven_nodes_and_shared_local_ranks():
    with pytest.raises(FleetError, match="different numbers of ranks"):
        fleet_layout([hello(0, "a", 0), hello(1, "a", 1), hello(2, "b", 0)])
    with pytest.raises(FleetError, match="both have LOCAL_RANK 0"):
        fleet_layout([hello(0, "a", 0), hello(1, "a", 0)])


def test_result_json_contract_and_headlines():
    data = two_node_result().to_dict()
    assert data["schema_version"] == 1
    assert {"world_size", "nodes", "backend", "device", "per_rank", "collectives", "p2p", "notes"} <= set(data)
    assert set(data["per_rank"][0]) == {"rank", "host", "local_rank", "node", "tflops"}
    assert set(data["collectives"][0]) == {
        "op",
        "bytes",
        "time_s",
        "algbw_gbps",
        "busbw_gbps",
        "scope",
        "ranks",
        "groups",
        "iterations",
    }
    # the headline is the largest message: all_reduce over 16 ranks, 1 GiB in 20 ms
    assert data["headline_busbw_gbps"]["world"]["all_reduce"] == pytest.approx(2**30 / 0.02 / 1e9 * 2 * 15 / 16)
    assert data["headline_busbw_gbps"]["inter"]["all_gather"] == pytest.approx(2**30 / 0.012 / 1e9 * 1 / 2)
    assert data["p2p"]["busbw_gbps"] == pytest.approx(2**30 / 0.05 / 1e9)
    assert data["matmul"]["bf16"] == {
        "min_tflops": 610.0,
        "median_tflops": 700.0,
        "max_tflops": 700.0,
        "ranks": 16,
        "slowest_rank": 11,
        "slowest_host": "gpu-1",
    }


def test_calibration_round_trip_and_the_planner_query(tmp_path):
    result = two_node_result()
    path = tmp_path / "cal.yaml"
    save_fleet_result(result, path)
    text = path.read_text()
    calibration = load_calibration(path)
    assert parse_calibration(calibration.to_yaml()).to_yaml() == text  # read back identically
    fleet = calibration.devices["NVIDIA H100 80GB HBM3"].fleet["nccl 2x8"]
    assert fleet.to_dict()["busbw_gbps"] == result.headline_busbw()
    assert fleet.message_bytes["intra"]["all_reduce"] == 2**30 and fleet.slowest_tflops == {"bf16": 610.0}
    figures = measured_bandwidths(calibration, "NVIDIA H100 80GB HBM3")
    assert figures.intra_node_busbw_gbps == pytest.approx(2**30 / 0.02 / 1e9 * 2 * 7 / 8)
    assert figures.inter_node_busbw_gbps == pytest.approx(2**30 / 0.02 / 1e9 * 2 * 1 / 2)
    assert figures.p2p_gbps == pytest.approx(2**30 / 0.05 / 1e9)
    assert (figures.nodes, figures.ranks_per_node, figures.backend) == (2, 8, "nccl")
    assert figures.label.startswith("measured by flopcalc bench --distributed on 2 nodes x 8 NVIDIA H100 80GB HBM3")
    assert measured_bandwidths(calibration) == figures  # the only device with fleet figures
