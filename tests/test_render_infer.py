"""`infer`'s table: on a terminal, the pass's time as a strip marked by each layer's bound and a request's
prefill then decode on one time scale; piped, neither."""

from dataclasses import replace

from flopcalc.infer import BatchBound, Decode, Hardware, InferResult, LayerBound, Prefill
from flopcalc.infer.quantisation import Precisions
from flopcalc.render.charts import COMMUNICATION_MARK, COMPUTE_MARK, MEMORY_MARK, SPARK_LEVELS
from flopcalc.render.infer import STRIP_WIDTH, bound_strip_lines, render


def _layer(name: str, compute_s: float, memory_s: float) -> LayerBound:
    return LayerBound(name, "Linear", 1e6, 1e3, 1e3, 0.0, 0.0, compute_s, memory_s)


def _result(prefill: Prefill | None = None, decode: Decode | None = None) -> InferResult:
    """Two layers: 3 ms compute-bound, then 1 ms memory-bound (3/4 and 1/4 of the pass)."""
    return InferResult(
        model="net",
        hardware=Hardware("H100-SXM", "bf16", 989e12, "datasheet", 3.35e12, 80e9),
        precisions=Precisions("bf16", "bf16", "bf16", "bf16"),
        params=1000,
        weights_bytes=2000,
        weights_bytes_by_dtype={"bf16": 2000},
        layers_pass="forward, batch 1",
        layers=(_layer("up", 3e-3, 1e-3), _layer("down", 0.5e-3, 1e-3)),
        batches=(BatchBound(1, 4e-3, 250.0, "compute", 1e6, True),),
        compute_bound_from_batch=1,
        max_batch_that_fits=None,
        prefill=prefill,
        decode=decode,
    )


def test_the_strip_gives_each_layer_its_share_of_the_width_marked_by_its_bound():
    lines = bound_strip_lines(_result())
    assert lines[1].strip() == COMPUTE_MARK * (STRIP_WIDTH * 3 // 4) + MEMORY_MARK * (STRIP_WIDTH // 4)
    assert "share of the time: compute 75.0%, memory 25.0%;" in lines[2]
    assert "ridge point 295 FLOP/byte" in lines[2]  # 989e12 / 3.35e12 = 295.2
    assert "communication" not in lines[0] and len(lines) == 3  # no GPUs to talk to; no generation: no request


def test_the_gpus_communication_gets_its_own_mark():
    """The all-reduces of tensor parallelism: a row with no FLOPs and no bytes whose time is the link's."""
    all_reduces = LayerBound("tensor-parallel all-reduces", "AllReduce", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 4e-3)
    result = _result()
    lines = bound_strip_lines(replace(result, layers=(*result.layers, all_reduces)), width=80)
    # 3 + 1 + 4 ms: 30, 10 and 40 of 80 characters
    assert lines[1].strip() == COMPUTE_MARK * 30 + MEMORY_MARK * 10 + COMMUNICATION_MARK * 40
    assert f"{COMMUNICATION_MARK} communication;" in lines[0]
    assert "compute 37.5%, memory 12.5%, communication 50.0%" in lines[2]


def test_a_request_draws_prefill_then_decode_on_one_time_scale():
    prefill = Prefill(1, 512, 1e12, 1e9, 1.0, "compute")
    decode = Decode(1, 128, ((512, 1e9),), ((512, 1e9),), 1e11, 3.0, "memory")
    lines = bound_strip_lines(_result(prefill, decode), width=40)
    prefill_line = next(line for line in lines if line.startswith("  prefill"))
    decode_line = next(line for line in lines if line.startswith("  decode"))
    # 1 s of 4 s: the first 10 of 40 characters, then decode the other 30, after it
    assert prefill_line.count(COMPUTE_MARK) == 10 and MEMORY_MARK not in prefill_line
    assert decode_line.count(MEMORY_MARK) == 30 and COMPUTE_MARK not in decode_line
    assert decode_line.index(MEMORY_MARK) == prefill_line.index(COMPUTE_MARK) + 10


def test_the_table_draws_the_strip_only_on_a_terminal():
    on_terminal = render(_result(), "table", terminal=True)
    piped = render(_result(), "table")
    assert COMPUTE_MARK * 45 in on_terminal and "layer after layer" in on_terminal
    assert piped == on_terminal.replace("\n".join(bound_strip_lines(_result())) + "\n\n", "")
    assert not set(piped) & {COMPUTE_MARK, MEMORY_MARK, COMMUNICATION_MARK, *SPARK_LEVELS} and "\x1b[" not in piped
    assert render(_result(), "markdown", terminal=True) == render(_result(), "markdown")
