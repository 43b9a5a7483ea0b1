"""Running the fleet benchmark (flopcalc/bench/distributed/) for real, on CPU with gloo: 3 ranks through torch's
launcher API; 4 ranks on two "nodes" started the way srun starts them (the launcher's variables set by hand, one
process each); a rank killed (SIGKILL) or stopped (SIGTERM) mid-run; one that never joins; ranks with different
options. Plus the heartbeat's last resort against a hang, and how torch's errors are shortened."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flopcalc.bench.distributed import Heartbeat, launch_fleet, run_fleet_bench, torch_message
from flopcalc.bench.fleet import FleetConfig, LaunchEnv, group_elements
from flopcalc.calibration import FLEET_OPS, load_calibration, measured_bandwidths
from flopcalc.errors import FleetError, UsageError
from tests._fleet_helpers import VICTIM, SignalSelfAt

ROOT = Path(__file__).resolve().parents[1]
HOST = socket.gethostname()


def test_nproc_checks():
    with pytest.raises(UsageError, match="--nproc must be at least 2"):
        launch_fleet(FleetConfig(), 1)


def test_torch_message_keeps_the_first_sentence_without_the_source_path():
    error = RuntimeError(
        "[/__w/pytorch/third_party/gloo/pair.cc:553] Connection closed by peer [1.2.3.4]:80. "
        "This is typically caused by a remote worker crashing."
    )
    assert torch_message(error) == "RuntimeError: Connection closed by peer [1.2.3.4]:80"


def test_the_heartbeat_ends_a_hung_step_in_one_line():
    class Store:
        def __init__(self):
            self.data = {}

        def add(self, key, amount):
            self.data[key] = self.data.get(key, 0) + amount

        def set(self, key, value):
            self.data[key] = value

        def append(self, key, value):
            self.data[key] = self.data.get(key, "") + value

    store, said = Store(), []
    heart = Heartbeat(store, 3, "node-a", interval=0.01, on_hang=said.append)
    heart.begin("all_reduce of 1 GiB (world)", 0.05)
    deadline = time.monotonic() + 5
    while not said and time.monotonic() < deadline:
        time.sleep(0.01)
    heart.stop()
    assert said == [
        "rank 3 on host node-a hung in all_reduce of 1 GiB (world) for 0 s, past every timeout: stopping it"
    ]
    assert store.data["beat/3"] >= 1 and store.data["at/3"] == "all_reduce of 1 GiB (world)"
    assert json.loads(store.data["events"]) == {
        "rank": 3,
        "host": "node-a",
        "kind": "failed",
        "phase": "all_reduce of 1 GiB (world)",
        "message": "hung",
    }


def check_collectives(collectives, ranks, sizes):
    """Every collective at every size, with bytes a whole number of floats per rank and busbw = the formula."""
    assert [(item["op"], item["bytes"]) for item in collectives] == [
        (op, group_elements(size, ranks) * 4) for op in FLEET_OPS for size in sizes
    ]
    for item in collectives:
        n, size, seconds = item["ranks"], item["bytes"], item["time_s"]
        assert n == ranks and size % (4 * n) == 0 and seconds > 0 and 1 <= item["iterations"] <= 20
        assert item["algbw_gbps"] == pytest.approx(size / seconds / 1e9)
        factor = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n, "reduce_scatter": (n - 1) / n}[item["op"]]
        assert item["busbw_gbps"] == pytest.approx(size / seconds / 1e9 * factor)


def test_three_ranks_through_the_launcher_api():
    result = launch_fleet(FleetConfig(device="cpu", seconds=2, max_bytes=16 * 1024, timeout_s=60), 3)
    assert (result.world_size, result.nodes, result.ranks_per_node, result.backend) == (3, 1, 3, "gloo")
    assert [(r.rank, r.host, r.local_rank) for r in result.per_rank] == [(0, HOST, 0), (1, HOST, 1), (2, HOST, 2)]
    assert all(report.tflops.get("fp32", 0) > 0 for report in result.per_rank), result.notes
    data = result.to_dict()
    check_collectives(data["collectives"], 3, (4096, 16384))
    ring = data["p2p"]["results"]
    assert [item["bytes"] for item in ring] == [4096, 16384]
    assert all(item["busbw_gbps"] == pytest.approx(item["bytes"] / item["time_s"] / 1e9) for item in ring)
    assert set(result.to_calibration().busbw_gbps) == {"world"}


@pytest.mark.parametrize(
    "signum, what", [(signal.SIGKILL, "was killed by SIGKILL"), (signal.SIGTERM, "was interrupted (Ctrl-C or SIGTERM)")]
)
def test_a_rank_killed_under_the_launcher_api_is_named(signum, what):
    started = time.monotonic()
    with pytest.raises(FleetError) as caught:
        launch_fleet(
            FleetConfig(device="cpu", seconds=0.2, max_bytes=4096, timeout_s=30),
            2,
            progress_factory=functools.partial(SignalSelfAt, "all_gather", signum),
        )
    assert str(caught.value) == f"rank 0 on host {HOST} {what}; the launcher stopped the other ranks"
    assert time.monotonic() - started < 25  # the other rank stops at once, not after the launcher's grace period
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the launcher's handlers are gone again


STOP_RANK_0 = """
import functools, signal, sys, time
from flopcalc.bench.distributed import launch_fleet
from flopcalc.bench.fleet import FleetConfig
from flopcalc.errors import FleetError
from tests._fleet_helpers import SignalSelfAt
mark = sys.argv[2]
try:
    launch_fleet(FleetConfig(device="cpu", seconds=0.2, max_bytes=4096, timeout_s=float(sys.argv[1])), 2,
                 progress_factory=functools.partial(SignalSelfAt, "all_gather", signal.SIGSTOP, mark))
except FleetError as error:
    print(f"{time.time() - float(open(mark).read()):.1f}", error, sep="\\n")
"""


def test_a_stopped_rank_ends_the_run_within_the_timeout(tmp_path):
    """Issue 25: rank 0 stops itself (SIGSTOP: alive, never exits) in the middle of the collectives; the other
    rank waits in one. The process that started them sees rank 0's heartbeat stand still and ends the run, in
    one line, within --timeout of the stop, instead of waiting for rank 0 to exit."""
    timeout = 20
    process = subprocess.Popen(
        [sys.executable, "-c", STOP_RANK_0, str(timeout), str(tmp_path / "stopped_at")],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"},
    )
    try:
        out, err = process.communicate(timeout=timeout + 90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the stopped rank too
        process.communicate()
        raise AssertionError(f"the run was still going {timeout + 90} s after it started") from None
    assert process.returncode == 0, err
    since_stopped, line = out.strip().splitlines()
    assert line.startswith(f"rank 0 on host {HOST} stopped responding: its heartbeat has not moved for "), line
    assert line.endswith("s (the process is stopped or frozen); flopcalc stopped the other ranks"), line
    assert float(since_stopped) < timeout + 5  # the launcher's teardown on a loaded machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ranks(ranks, world_size, args, *, victim=None, node_of=None, tmp_path=None):
    """Start ranks the way srun (or any launcher) does: one process each, the launcher's variables set by hand.
    `args`: the options, or a function of the rank giving them; `victim`: (rank, extra environment) of a rank run
    by the VICTIM script."""
    port = free_port()
    processes = {}
    for rank in ranks:
        env = {key: value for key, value in os.environ.items() if key not in ("TORCH_CPP_LOG_LEVEL", "GROUP_RANK")}
        env.update(
            RANK=str(rank),
            WORLD_SIZE=str(world_size),
            LOCAL_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            PYTHONWARNINGS="ignore",
            PYTHONPATH=str(ROOT),
        )
        if node_of is not None:
            env.update(GROUP_RANK=str(node_of(rank)), LOCAL_RANK=str(rank % 2))
        rank_args = args(rank) if callable(args) else args
        command = [sys.executable, "-m", "flopcalc", "bench", "--distributed", *rank_args]
        if victim is not None and victim[0] == rank:
            env.update(victim[1])
            command = [sys.executable, "-c", VICTIM, "bench", "--distributed", *rank_args]
        processes[rank] = subprocess.Popen(
            command, cwd=tmp_path or ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    finished = {}
    for rank, process in processes.items():
        try:
            out, err = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for other in processes.values():
                other.kill()
            raise
        finished[rank] = (process.returncode, out, err)
    return finished


def one_error_line(finished, rank):
    code, out, err = finished[rank]
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("flopcalc: error: "), finished[rank]
    return lines[0]


def test_two_nodes_measure_intra_and_inter_and_rank_0_alone_writes(tmp_path):
    """4 ranks as 2 nodes x 2 (torchrun's GROUP_RANK says which node): world, intra-node and inter-node groups."""
    saved = tmp_path / "cal.yaml"
    args = [
        "--device",
        "cpu",
        "--seconds",
        "0.2",
        "--max-bytes",
        "4K",
        "--timeout",
        "60",
        "--format",
        "json",
        "--save",
        "--calibration",
        str(saved),
    ]
    finished = start_ranks(range(4), 4, args, node_of=lambda rank: rank // 2, tmp_path=tmp_path)
    for rank in (1, 2, 3):
        assert finished[rank] == (0, "", ""), finished[rank]  # only rank 0 writes anything
    code, out, err = finished[0]
    assert code == 0, err
    data = json.loads(out)
    assert (data["world_size"], data["nodes"], data["ranks_per_node"]) == (4, 2, 2)
    scopes = {(item["scope"], item["ranks"], item["groups"]) for item in data["collectives"]}
    assert scopes == {("world", 4, 1), ("intra", 2, 2), ("inter", 2, 2)}
    for scope, ranks in (("world", 4), ("intra", 2), ("inter", 2)):
        check_collectives([item for item in data["collectives"] if item["scope"] == scope], ranks, (4096,))
    assert [(r["rank"], r["node"], r["local_rank"]) for r in data["per_rank"]] == [
        (0, 0, 0),
        (1, 0, 1),
        (2, 1, 0),
        (3, 1, 1),
    ]
    fleet = load_calibration(saved).devices[data["device_name"]].fleet["gloo 2x2"]
    assert set(fleet.busbw_gbps) == {"world", "intra", "inter"} and data["calibration_file"] == str(saved)
    assert measured_bandwidths(load_calibration(saved)).inter_node_busbw_gbps == pytest.approx(
        data["headline_busbw_gbps"]["inter"]["all_reduce"]
    )


def test_a_killed_rank_is_named_by_the_survivors():
    timeout = 30
    args = ["--device", "cpu", "--seconds", "0.2", "--max-bytes", "16K", "--timeout", str(timeout)]
    finished = start_ranks(range(3), 3, args, victim=(1, {"VICTIM_AT": "3", "VICTIM_SIGNAL": "SIGKILL"}))
    assert finished[1][0] == -signal.SIGKILL
    for survivor in (0, 2):
        line = one_error_line(finished, survivor)
        assert f"rank 1 on host {HOST} stopped responding during all_gather of 4 KiB (world)" in line, line
        assert f"seen by rank {survivor} on host {HOST} after" in line
        seconds = float(line.split(" after ")[1].split(" s:")[0])
        assert seconds < timeout  # a dead peer is found at once, not at the timeout


def test_sigterm_ends_a_rank_cleanly_and_the_other_hears_why(tmp_path):
    report = tmp_path / "victim.txt"
    args = ["--device", "cpu", "--seconds", "0.2", "--max-bytes", "4K", "--timeout", "30"]
    finished = start_ranks(
        range(2), 2, args, victim=(1, {"VICTIM_AT": "2", "VICTIM_SIGNAL": "SIGTERM", "VICTIM_REPORT": str(report)})
    )
    assert report.read_text() == "initialized=False\n"  # the process group was destroyed on the way out
    code, out, err = finished[1]
    assert code == 130 and err.strip() == "flopcalc: error: interrupted", err
    line = one_error_line(finished, 0)
    assert line == (
        f"flopcalc: error: rank 1 on host {HOST} failed during all_gather of 4 KiB (world): "
        "interrupted (stopped by SIGTERM)"
    )


# The handshake runs before any process group exists, so ranks that never meet can be threads of this process.


def run_ranks_in_threads(configs, world_size, port):
    """run_fleet_bench for ranks 0..len(configs)-1 of `world_size`, one thread each; what each raised."""
    raised = {}

    def rank_main(rank, config):
        env = LaunchEnv(rank=rank, world_size=world_size, local_rank=rank, master_addr="127.0.0.1", master_port=port)
        try:
            run_fleet_bench(config, env)
        except Exception as error:  # noqa: BLE001 - the test looks at what it was
            raised[rank] = error

    threads = [threading.Thread(target=rank_main, args=(rank, config)) for rank, config in enumerate(configs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return raised


def test_a_rank_that_never_joins_is_named_within_the_timeout():
    port = free_port()
    started = time.monotonic()
    raised = run_ranks_in_threads([FleetConfig(device="cpu", timeout_s=1)] * 2, 3, port)
    assert time.monotonic() - started < 1 + 5  # the timeout, the store host's moment to let others read why
    assert str(raised[0]).startswith(
        f"rank 2 never joined within 1 s (--timeout): 2 of 3 ranks reached the rendezvous store at 127.0.0.1:{port}"
    )
    assert "rank 2 never joined" in str(raised[1])


def test_a_missing_rank_0_is_named_by_the_others():
    env = LaunchEnv(rank=1, world_size=2, local_rank=1, master_addr="127.0.0.1", master_port=free_port())
    started = time.monotonic()
    with pytest.raises(FleetError) as caught:
        run_fleet_bench(FleetConfig(device="cpu", timeout_s=1), env)
    assert time.monotonic() - started < 1 + 3
    assert str(caught.value).startswith(
        f"rank 0 never joined: rank 1 on host {HOST} found no rendezvous store at "
        f"127.0.0.1:{env.master_port} (rank 0 hosts it) within 1 s (--timeout)"
    )


def test_ranks_started_with_different_options_stop_before_any_collective():
    configs = [
        FleetConfig(device="cpu", timeout_s=10, max_bytes=4096),
        FleetConfig(device="cpu", timeout_s=10, max_bytes=8192),
    ]
    raised = run_ranks_in_threads(configs, 2, free_port())
    for rank in (0, 1):
        assert str(raised[rank]).startswith(
            f"mismatched options: rank 1 on host {HOST} has max_bytes=8192, rank 0 on host {HOST} has max_bytes=4096"
        )


@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter"])
def test_collectives_use_torchs_current_calls_without_deprecation_warnings(op):
    """torch 2.13 deprecates all_gather_into_tensor / reduce_scatter_tensor: every rank printed a FutureWarning
    (four lines of a two-rank run's stderr). The *_single calls are used where torch has them."""
    import warnings

    import torch
    import torch.distributed as dist

    from flopcalc.bench.distributed import make_collective

    if not hasattr(dist, "all_gather_single"):
        pytest.skip("this torch predates all_gather_single")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            make_collective(op, None, [0], 0, 4, torch.device("cpu"))(False)
    finally:
        dist.destroy_process_group()


# --- the machine's limits (issue 25): ranks it cannot hold, buffers that do not fit ------------------------


def test_nproc_refuses_more_ranks_than_the_cores_hold(monkeypatch):
    from flopcalc.bench.distributed import launch

    monkeypatch.setattr(launch, "available_cpus", lambda: 2)
    with pytest.raises(UsageError) as caught:
        launch_fleet(FleetConfig(device="cpu"), 9)
    assert str(caught.value) == (
        "--nproc 9 is more than 4 ranks per CPU core (2 available): the ranks would starve "
        "each other's heartbeats and collectives (use --nproc 8 or fewer)"
    )


def test_nproc_refuses_more_ranks_than_the_memory_holds(monkeypatch):
    from flopcalc.bench.distributed import launch

    monkeypatch.setattr(launch, "available_memory", lambda: 8 * 2**30)
    # a rank: 512 MiB of process + 3 x 1 GiB of buffers = 3.5 GiB; 8 GiB holds 2 of them
    with pytest.raises(UsageError) as caught:
        launch_fleet(FleetConfig(device="cpu", max_bytes=2**30), 3)
    assert str(caught.value) == (
        "--nproc 3 needs about 10.5 GiB of memory (3.5 GiB per rank: its process and "
        "message buffers), but 8 GiB is free (use --nproc 2 or fewer)"
    )
    with pytest.raises(UsageError, match=r"but 8 GiB is free \(lower --max-bytes, or free some memory\)"):
        launch_fleet(FleetConfig(device="cpu", max_bytes=4 * 2**30), 2)


def test_nproc_refuses_more_ranks_than_gpus(monkeypatch):
    import torch

    from flopcalc.bench.distributed import launch

    monkeypatch.setattr(launch, "resolve_device", lambda requested: "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError) as caught:
        launch_fleet(FleetConfig(device="cuda"), 2)
    assert str(caught.value) == (
        "--nproc 2 needs 2 GPUs (one rank per GPU), but 1 is visible (use --nproc 1 or fewer, or --device cpu)"
    )


def test_max_bytes_beyond_free_memory_stops_every_rank_before_any_collective(monkeypatch):
    from flopcalc.bench.distributed import session

    monkeypatch.setattr(session, "available_memory", lambda: 2**30)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    configs = [FleetConfig(device="cpu", timeout_s=10, max_bytes=256 * 2**20)] * 2
    raised = run_ranks_in_threads(configs, 2, free_port())
    # 2 ranks x 3 buffers of 256 MiB = 1.5 GiB > 1 GiB
    for rank in (0, 1):
        assert str(raised[rank]) == (
            f"rank 0 on host {HOST} cannot take part: --max-bytes 256 MiB needs about 1.5 GiB of message buffers "
            f"for 2 ranks, but host {HOST} has 1 GiB free (lower --max-bytes)"
        )


# --- supervision and the hello race, without processes ------------------------------------------------------


def test_the_supervisor_ends_the_run_for_a_silent_rank_or_a_failure_the_others_outlive(tmp_path):
    from flopcalc.bench.distributed import Supervisor
    from flopcalc.bench.distributed.launch import FAILED_RANK_GRACE_S

    supervisor = Supervisor(tmp_path, 3, timeout_s=20)
    assert supervisor.stale_s == 10  # half the timeout
    about = {"pid": 1, "host": "node-a"}
    pulses = {0: (100.0, about), 1: (100.0, about), 2: (100.0, about)}
    assert supervisor.judge(pulses, {}, 109.0) is None
    assert supervisor.judge(pulses, {}, 111.0) == (
        "rank 0 on host node-a stopped responding: its heartbeat has not moved for 11 s (the process is stopped or "
        "frozen); flopcalc stopped the other ranks"
    )
    assert (
        supervisor.judge(
            pulses, {0: (0, {"message": None}), 1: (0, {"message": None}), 2: (0, {"message": None})}, 200.0
        )
        is None
    )  # all ended: nothing to stop
    fresh = {rank: (300.0, about) for rank in range(3)}
    ended = {
        1: (0, {"message": "rank 2 never joined", "secondary": True}),
        2: (0, {"message": "rank 2 failed: boom", "secondary": False}),
    }
    assert supervisor.judge(fresh, ended, 300.0) is None  # rank 0 may still end on its own
    assert supervisor.judge(fresh, ended, 300.0 + FAILED_RANK_GRACE_S + 0.1) == "rank 2 failed: boom"
    assert Supervisor(tmp_path, 2, timeout_s=1).stale_s == 2.5  # never quicker than a heartbeat's staleness


def test_a_rank_that_reads_a_mismatch_event_judges_the_hellos_itself():
    """The race behind a flaky test: rank 0 finds rank 1's hello missing, rank 1 posts it, judges the options
    and posts its failure, and rank 0 then reads that event. Every hello is there by then, so rank 0 judges them
    too (it used to report "rank 1 ... stopped: mismatched options"), and both ranks report the same line."""
    from flopcalc.bench.distributed.rendezvous import exchange_hellos

    class Store:
        """Rank 0's view: its first look for the hellos comes just before rank 1 posts its hello and verdict."""

        def __init__(self):
            self.data, self.looks = {}, 0

        def set(self, key, value):
            self.data[key] = value.encode()

        def check(self, keys):
            self.looks += 1
            if self.looks == 2:  # rank 1 arrives, judges and stops between rank 0's first and second look
                self.data["hello/1"] = json.dumps({"rank": 1}).encode()
                self.data["events"] = (
                    json.dumps(
                        {
                            "rank": 1,
                            "host": "b",
                            "kind": "failed",
                            "phase": "joining",
                            "message": "mismatched options: ...",
                        }
                    ).encode()
                    + b"\n"
                )
            return all(key in self.data for key in keys)

        def get(self, key):
            return self.data[key]

        def multi_get(self, keys):
            return [self.data[key] for key in keys]

    env = LaunchEnv(rank=0, world_size=2, local_rank=0, master_addr="127.0.0.1", master_port=1)
    assert exchange_hellos(Store(), env, {"rank": 0}, timeout=5) == [{"rank": 0}, {"rank": 1}]


def test_a_hung_step_interrupts_the_main_thread_when_no_one_said_how_to_end_it():
    class Store:
        def add(self, key, amount):
            pass

        def set(self, key, value):
            pass

        def append(self, key, value):
            pass

    heart = Heartbeat(Store(), 0, "node-a", interval=0.01)
    try:
        with pytest.raises(KeyboardInterrupt):
            heart.begin("all_reduce of 4 KiB (world)", 0.05)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        heart.stop()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_the_supervisor_finds_a_rank_that_never_pulsed_among_its_children():
    """A rank stopped before its first pulse (still importing torch) has no pid on file: the supervisor finds it
    by the RANK the launcher put in its environment, among this process's own children."""
    from flopcalc.bench.distributed.launch import _rank_children

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={**os.environ, "RANK": "5", "TORCHELASTIC_RUN_ID": "flopcalc-test"},
    )
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={key: value for key, value in os.environ.items() if key != "TORCHELASTIC_RUN_ID"},
    )
    try:
        assert _rank_children() == {5: child.pid}
    finally:
        for process in (child, stranger):
            process.kill()
            process.wait()
