"""`flopcalc bench --distributed`: what a fleet of GPUs (or CPUs) sustains, measured with torch.distributed.

Every rank is a process started by a launcher (torchrun, srun + torchrun, or `launch_fleet` on one machine,
which uses torch's own `elastic_launch`) that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT.
Each rank runs the matmul ladder on its device; then all ranks time the collectives nccl-tests times, over a
ladder of message sizes, on NCCL (GPUs) or gloo (CPUs), and a ring of send/recv between neighbours. The
formulas and the records are in `flopcalc.bench.fleet`.

The package: `launch` (G ranks on one machine, supervised) over `session` (one rank's run) over `rendezvous`
(the store and the hellos), `collectives` (timing one operation) and `result` (what rank 0 assembles), over
`health` (heartbeats, failure events, the diagnosis naming the rank at fault).
"""

from .collectives import MAX_ITERATIONS, TARGET_SECONDS, WARMUP_OPS, make_collective, time_collective
from .health import HEARTBEAT_S, STALE_AFTER_S, Heartbeat, RankLostError, torch_message
from .launch import INTERRUPTED_EXIT, RankFailure, Supervisor, check_machine_holds, launch_fleet, quiet_torch_c_logs
from .session import DEFAULT_MATMUL_SECONDS, HangCallback, ProgressCallback, run_fleet_bench

__all__ = [
    "DEFAULT_MATMUL_SECONDS",
    "HEARTBEAT_S",
    "INTERRUPTED_EXIT",
    "MAX_ITERATIONS",
    "STALE_AFTER_S",
    "TARGET_SECONDS",
    "WARMUP_OPS",
    "HangCallback",
    "Heartbeat",
    "ProgressCallback",
    "RankFailure",
    "RankLostError",
    "Supervisor",
    "check_machine_holds",
    "launch_fleet",
    "make_collective",
    "quiet_torch_c_logs",
    "run_fleet_bench",
    "time_collective",
    "torch_message",
]
