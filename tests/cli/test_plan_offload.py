"""`flopcalc plan --offload` through CliRunner: the JSON key, the table's lines, one-line errors."""

import json

import pytest

from tests._cli import LLAMA_7B, invoke

SEVEN_B = ["plan", *LLAMA_7B, "--gpu", "H100-SXM", "-n", "8", "--zero", "1", "--global-batch", "64", "--tokens", "1T"]


def test_optimizer_offload_json_and_table():
    result = invoke(*SEVEN_B, "--offload", "optimizer", "--host-memory", "2048", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["memory_per_gpu_bytes"]["optimizer"] == 0
    assert data["offload"]["host_bytes_per_node"] == 6.7e9 * 12
    assert data["offload"]["to_host_bytes_per_step"] == 6.7e9 / 8 * 2
    table = invoke(*SEVEN_B, "--offload", "optimizer", "--host-memory", "2048")
    assert table.exit_code == 0, table.output
    for text in ("offload optimizer", "host memory per node", "PCIe Gen5 x16", "CPU optimizer step"):
        assert text in table.stdout, text


def test_a_host_that_cannot_hold_it_exits_1():
    result = invoke(*SEVEN_B, "--offload", "params", "--host-memory", "16")
    assert result.exit_code == 1, result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--offload", "optimizer"], "--offload needs the host memory of a node"),
        (["--offload", "weights", "--host-memory", "512"], "--offload 'weights' is not one of"),
        (["--offload", "optimizer", "--host-memory", "512", "--search"], "--offload is planned for one layout"),
    ],
)
def test_bad_offload_is_one_line_and_exit_2(args, message):
    result = invoke(*SEVEN_B, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
