"""flopcalc.plan.layout_search: the bounded search picks what a brute-force walk of every layout picks, and answers
for a million GPUs or a global batch of 2^40 without walking 1..n."""

from dataclasses import replace

import pytest

from flopcalc.compute import Throughput
from flopcalc.counting.activations import ActivationProfile, SavedBytes
from flopcalc.errors import UsageError
from flopcalc.plan import (
    MICRO_BATCHES_PER_SETTING,
    RECOMPUTE,
    ZERO_STAGES,
    Bandwidth,
    Fleet,
    Layout,
    RunSize,
    evaluate,
    model_from_params,
    search,
)

A100 = Throughput(312e12, 0.5, "A100-SXM4-80GB", "bf16")


def fleet(memory_gb, gpus_per_node=8):
    return Fleet(
        A100,
        memory_gb * 1e9,
        "test",
        gpus_per_node=gpus_per_node,
        intra_node=Bandwidth(300, "test"),
        inter_node=Bandwidth(25, "test"),
    )


def rank(plan):
    """docs/plan.md: faster first (equal to 6 significant digits ties), then the larger micro-batch, then the
    simpler layout: fewer GPUs per layer (tp x pp, then pp), lower ZeRO, less recomputation; memory never."""
    speed = plan.training.wall_clock_s if plan.training else plan.step.step_s
    t = plan.layout
    return (float(f"{speed:.6g}"), -t.micro_batch, t.tp * t.pp, t.pp, t.zero, RECOMPUTE.index(t.recompute))


def brute_force(model, gpus, num_gpus, global_batch, run, micro_batches=None):
    """Every layout, in the search's order, walking 1..n for each dimension and evaluating each one whole."""
    fitting, tried = [], 0
    for tp in (d for d in range(1, num_gpus + 1) if num_gpus % d == 0):
        if tp > gpus.gpus_per_node or gpus.gpus_per_node % tp:
            continue
        for pp in (d for d in range(1, num_gpus // tp + 1) if (num_gpus // tp) % d == 0):
            dp = num_gpus // (tp * pp)
            if global_batch % dp or (pp > 1 and model.blocks % pp):  # the search splits layers evenly
                continue
            if global_batch % dp:
                continue
            q = global_batch // dp
            choices = micro_batches(q) if micro_batches else [d for d in range(1, q + 1) if q % d == 0]
            for zero in ZERO_STAGES:
                if zero and dp == 1:
                    continue
                for recompute in RECOMPUTE:
                    for micro_batch in choices:
                        layout = Layout(
                            dp, tp, pp, zero, recompute, tp > 1, micro_batch, global_batch, gpus.gpus_per_node
                        )
                        try:
                            plan = evaluate(model, layout, gpus, run=run)
                        except UsageError:  # tp not dividing the heads, pp more than the layers
                            continue
                        tried += 1
                        if plan.memory.total <= gpus.gpu_memory_bytes:
                            fitting.append(plan)
    fitting.sort(key=lambda plan: rank(plan))
    return fitting, tried


@pytest.mark.parametrize("memory_gb", [18, 24])
def test_the_search_ranks_exactly_what_a_brute_force_walk_ranks(memory_gb):
    """12 layers, 12 heads on 16 GPUs with a global batch of 96 (12 divisors): about half the layouts fit in 24 GB,
    so the bisection's boundary is crossed in most settings."""
    model = model_from_params(1e9, 1024, layers=12, hidden=1536, heads=12, attention="math")
    gpus, run = fleet(memory_gb), RunSize(1e6)
    expected, tried = brute_force(model, gpus, 16, 96, run)
    result = search(model, gpus, 16, global_batch=96, run=run, top=10**6)
    assert 0 < len(expected) < tried
    assert [plan.layout for plan in result.candidates] == [plan.layout for plan in expected]
    assert [plan.layout_dict() for plan in result.candidates] == [plan.layout_dict() for plan in expected]
    assert result.evaluated <= tried  # the bisection skips micro-batches beyond the first that does not fit


def test_when_nothing_fits_the_closest_layout_is_the_brute_forces_least_memory():
    model = model_from_params(1e9, 1024, layers=12, hidden=1536, heads=12, attention="math")
    gpus = fleet(1)
    expected, _ = brute_force(model, fleet(10**6), 4, 16, None)
    least = min(expected, key=lambda plan: plan.memory.total)  # first of the least, in the search's order
    result = search(model, gpus, 4, global_batch=16)
    assert not result.candidates
    assert result.closest.layout == least.layout and result.closest.memory == least.memory


def test_a_million_gpus_answer_with_layouts_that_fit_and_the_families_ruled_out():
    model = model_from_params(70e9, 4096, layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672, attention="math")
    result = search(model, fleet(80), 10**6, global_batch=2**22 * 5**6, run=RunSize(5e8))
    assert result.candidates and all(plan.fits and plan.layout.num_gpus == 10**6 for plan in result.candidates)
    walls = [plan.training.wall_clock_s for plan in result.candidates]
    assert walls == sorted(walls)
    # a million has 49 divisors: tp beyond a node of 8 is named once per divisor, elided past 8 names
    beyond = next(line for line in result.rejected if "inside a node of 8 GPUs" in line)
    assert beyond.startswith("tp=5/tp=10/tp=16/") and beyond.count("/tp=") == 6 and "(45 values)" in beyond
    assert any(line.startswith("pp=25/") and "80 layers" in line for line in result.rejected)
    best = result.best.layout
    pinned = search(
        model,
        fleet(80),
        10**6,
        global_batch=2**22 * 5**6,
        run=RunSize(5e8),
        fixed={"tp": best.tp, "pp": best.pp, "zero": best.zero, "recompute": best.recompute},
    )
    assert pinned.best.layout == best  # pinning the winner's setting finds it again


def test_a_global_batch_of_2_to_the_40_bisects_its_41_micro_batches():
    """Memory grows with the micro-batch, so the fitting ones are those below a boundary: the same set a walk over
    every power of two finds, in a handful of evaluations per setting."""
    model = model_from_params(1e9, 1024, layers=12, hidden=1536, heads=12, attention="math")
    gpus, run = fleet(24), RunSize(1e15)
    powers = lambda q: [2**k for k in range(q.bit_length()) if q % 2**k == 0]  # noqa: E731
    expected, tried = brute_force(model, gpus, 16, 2**40, run, micro_batches=powers)
    result = search(model, gpus, 16, global_batch=2**40, run=run, top=10**6)
    assert [plan.layout for plan in result.candidates] == [plan.layout for plan in expected]
    assert result.evaluated < tried / 2


def test_more_micro_batches_that_fit_than_the_cap_are_sampled_with_an_assumption_saying_so():
    """A model keeping 1 KB per example fits every micro-batch of a global batch of 720,720 (240 divisors) in
    80 GB: 64 of them are evaluated, the smallest and the largest among them, and an assumption says so."""
    profile = ActivationProfile(
        batch_size=1,
        total=SavedBytes(512, 0),
        blocks="(test)",
        layers=1,
        block_replicated=SavedBytes(512, 0),
        block_split=SavedBytes(0, 0),
        block_scores=SavedBytes(0, 0),
        block_input=SavedBytes(512, 0),
        params=1000,
        block_params=1000,
        hidden=256,
        seq_len=1,
        heads=1,
        kv_heads=1,
    )
    model = replace(model_from_params(1e3, 1), activations=profile, layers=1, heads=1, kv_heads=1)
    result = search(model, fleet(80), 1, global_batch=720_720, fixed={"recompute": "none"}, top=1000)
    micro_batches = sorted(plan.layout.micro_batch for plan in result.candidates)
    assert len(micro_batches) == MICRO_BATCHES_PER_SETTING == len(set(micro_batches))
    assert micro_batches[0] == 1 and micro_batches[-1] == 720_720
    assert all(720_720 % micro_batch == 0 for micro_batch in micro_batches)
    assert any("64 of them were evaluated" in line and "pin --micro-batch" in line for line in result.best.assumptions)
    few = search(model, fleet(80), 1, global_batch=64, fixed={"recompute": "none"})
    assert not any("pin --micro-batch" in line for line in few.best.assumptions)


def test_counts_beyond_what_a_float_holds_exactly_are_refused():
    model = model_from_params(1e9, 1024, layers=12, hidden=1536, heads=12, attention="math")
    with pytest.raises(UsageError, match="--num-gpus .* more than 2\\^53"):
        search(model, fleet(80), 2**60, global_batch=8)
    with pytest.raises(UsageError, match="--global-batch .* more than 2\\^53"):
        search(model, fleet(80), 8, global_batch=10**18)
