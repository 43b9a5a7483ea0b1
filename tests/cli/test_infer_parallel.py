"""`flopcalc infer --tp/--pp/-n` through CliRunner: the table's lines about several GPUs, one-line errors."""

import json

import pytest

from tests._cli import invoke

GENERATION = ("--gpu", "H100-SXM", "--prompt", "8", "--generate", "2")


def test_table_and_json_of_two_gpus_and_two_replicas(tiny_llama):
    table = invoke("infer", tiny_llama, *GENERATION, "--tp", "2", "-n", "2")
    assert table.exit_code == 0, table.output
    assert "tp 2 x pp 1 = 2 GPUs per replica, 2 replica(s), 4 GPUs" in table.stdout
    assert "4 all-reduces per pass on intra-node 450 GB/s + 1 us per ring step" in table.stdout
    assert "tensor-parallel all-reduces (2 x 2 layers)" in table.stdout
    data = json.loads(invoke("infer", tiny_llama, *GENERATION, "--tp", "2", "--format", "json").stdout)
    assert data["parallel"]["tp"] == 2 and data["parallel"]["all_reduces_per_step"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (("--tp", "3"), "--tp 3 must divide the 8 GPUs of a node"),
        (("--tp", "8"), "--tp 8 does not divide the model's 4 attention heads"),
        (("--pp", "3"), "--pp 3 does not divide the model's 2 layers"),
        (("--tp", "2", "--prompt", "8"), "--prompt and --generate go together"),
    ],
)
def test_bad_layouts_are_one_line_and_exit_2(tiny_llama, args, message):
    base = GENERATION if "--prompt" not in args else ("--gpu", "H100-SXM")
    result = invoke("infer", tiny_llama, *base, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_several_gpus_without_a_generation_is_one_line(tiny_llama):
    result = invoke("infer", tiny_llama, "--gpu", "H100-SXM", "--tp", "2")
    assert result.exit_code == 2 and "split a generation" in result.stderr


def test_a_gpu_without_an_intra_node_link_needs_one_given(tiny_llama):
    result = invoke("infer", tiny_llama, "--gpu", "L4", "--prompt", "8", "--generate", "2", "--tp", "2")
    assert result.exit_code == 2, result.output
    assert "L4 has no intra-node link figure" in result.stderr and "--intra-node-gbps" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    given = invoke(
        "infer",
        tiny_llama,
        "--gpu",
        "L4",
        "--prompt",
        "8",
        "--generate",
        "2",
        "--tp",
        "2",
        "--intra-node-gbps",
        "32",
        "--format",
        "json",
    )
    assert given.exit_code == 0, given.output
    link = json.loads(given.stdout)["parallel"]["tensor_parallel_link"]
    assert link["gbps"] == 32 and link["source"].startswith("--intra-node-gbps")


def test_link_figures_without_several_gpus_are_refused(tiny_llama):
    result = invoke("infer", tiny_llama, *GENERATION, "--intra-node-gbps", "100")
    assert result.exit_code == 2 and "price the links of --tp/--pp" in result.stderr
