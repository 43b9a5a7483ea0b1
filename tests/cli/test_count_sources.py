"""`flopcalc count` on ONNX graphs and Hugging Face configs: the new options and one-line errors."""

import json

import pytest

from tests._cli import invoke
from tests._hf_configs import gpt2, write_config


@pytest.fixture
def gpt2_config(tmp_path):
    pytest.importorskip("transformers")
    return write_config(tmp_path, gpt2(32, 1, 2, 100, 64))


def test_seq_len_and_batch_size_equal_an_explicit_token_input(gpt2_config):
    by_options = invoke("count", gpt2_config, "--seq-len", 16, "--batch-size", 2, "--format", "json")
    by_input = invoke("count", gpt2_config, "--input", "2x16:int64", "--format", "json")
    assert by_options.exit_code == 0 and by_input.exit_code == 0, by_options.output + by_input.output
    options, explicit = json.loads(by_options.stdout), json.loads(by_input.stdout)
    assert options["totals"] == explicit["totals"]
    assert options["inputs"] == [{"name": "input_ids", "shape": [2, 16], "dtype": "int64"}]
    assert explicit["inputs"] == [{"name": None, "shape": [2, 16], "dtype": "int64"}]  # positional, as typed


def test_onnx_graph_with_dim_option_and_forward_only_output(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="/proj/MatMul")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("W", TensorProto.FLOAT, [8, 4], [0.0] * 32)],
    )
    path = tmp_path / "proj.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    result = invoke("count", path, "--dim", "batch=5", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"]["forward"] == 2 * 5 * 8 * 4 and data["totals"]["backward"] == 0
    assert data["backward_counted"] is False
    assert [layer["name"] for layer in data["layers"]] == ["", "proj", "proj/MatMul"]
    table = invoke("count", path, "--dim", "batch=5")
    assert "ONNX graphs have no backward pass" in table.output


@pytest.mark.parametrize("dim", ["batch", "batch=x", "=4"])
def test_malformed_dim_is_a_usage_error(tmp_path, dim):
    result = invoke("count", tmp_path / "m.onnx", "--dim", dim)
    assert result.exit_code == 2
    assert "NAME=SIZE" in result.output


def test_corrupt_onnx_and_unknown_model_type_exit_2_with_one_line(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("transformers")
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"\x00garbage\xff")
    config = tmp_path / "config.json"
    config.write_text('{"model_type": "not-a-model"}')
    for source in (corrupt, config):
        result = invoke("count", source)
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and result.output.startswith("flopcalc: error:"), result.output


def test_train_on_an_onnx_graph_assumes_backward_2x_forward(tmp_path, examples):
    pytest.importorskip("onnx")
    import warnings

    import torch

    from flopcalc.loaders import load_model

    path = tmp_path / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            load_model(str(examples / "mlp.py"), device="cpu").module, (torch.randn(4, 784),), str(path), dynamo=False
        )
    result = invoke("train", path, "--examples", "60000", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    forward = 2 * (784 * 256 + 256 * 10) + 256 + 10 + 256  # per example: matmuls, bias adds, ReLU
    assert data["forward_flops_per_example"] == forward
    assert data["backward_flops_per_example"] == 2 * forward
    assert data["training_flops"] == 3 * forward * 60000
    assert "backward = 2x forward" in result.output


def test_train_takes_seq_len_for_a_config(gpt2_config):
    result = invoke("train", gpt2_config, "--seq-len", 8, "--examples", "1000", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["backward_flops_per_example"] > data["forward_flops_per_example"] > 0


def test_dim_is_only_for_onnx_graphs(examples):
    result = invoke("count", examples / "mlp.py", "--dim", "batch=2")
    assert result.exit_code == 2
    assert "--dim applies to ONNX graphs" in result.output


def test_named_inputs_and_active_params_in_the_table_and_json(moe_config):
    table = invoke("count", moe_config, "--input", "input_ids=2x8:int64")
    assert table.exit_code == 0, table.output
    assert "inputs input_ids=2x8 int64" in table.stdout
    data = json.loads(invoke("count", moe_config, "--input", "input_ids=2x8:int64", "--format", "json").stdout)
    experts = 4 * 3 * 32 * 64  # top-2 of 4: half of them are active
    assert data["totals"]["params"] - data["totals"]["active_params"] == experts // 2
    assert f"({data['totals']['active_params']:,})" in table.stdout.split("active", 1)[1]


def test_decoder_seq_len_on_a_model_without_a_decoder_is_one_line(gpt2_config):
    result = invoke("count", gpt2_config, "--decoder-seq-len", 8)
    assert result.exit_code == 2 and "--decoder-seq-len applies to encoder-decoder models" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
