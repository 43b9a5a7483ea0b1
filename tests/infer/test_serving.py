"""flopcalc.infer.infer: serving bounds against the arithmetic written out (Llama-2-7B and TinyLlama shapes on meta,
a Linear's roofline, a hand-written causal LM following the HF convention), and its bad input."""

import math
import textwrap

import pytest

from flopcalc.api import count
from flopcalc.errors import CatalogError, UsageError
from flopcalc.infer import (
    QUANTIZATION_LAYOUTS,
    infer,
    parameter_bytes,
    parse_batch_sizes,
    storage_dtype,
)
from flopcalc.spec import ModelSpec
from tests._hf_configs import LLAMA_2_7B, TINYLLAMA, causal_lm, tiny_bert, write_config

A100_PEAK_BF16, A100_BANDWIDTH, A100_MEMORY = 312e12, 2039e9, 80 * 2**30  # "80GB" of HBM is 80 GiB


def write_model(folder, source, name="model.py"):
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def llama_matrices(hidden, ffn, layers, vocab, kv_dim):
    """(rows, columns) of every weight matrix of a Llama: embedding, q, k, v, o, gate, up, down, lm_head."""
    per_layer = [
        (hidden, hidden),
        (kv_dim, hidden),
        (kv_dim, hidden),
        (hidden, hidden),
        (ffn, hidden),
        (ffn, hidden),
        (hidden, ffn),
    ]
    return [(vocab, hidden)] + per_layer * layers + [(vocab, hidden)]


def test_llama_2_7b_fp16_weights_kv_cache_and_memory_bound_decode(tmp_path):
    pytest.importorskip("transformers")
    result = infer(
        ModelSpec(write_config(tmp_path, LLAMA_2_7B)), gpu="A100-SXM4-80GB", precision="fp16", prompt=512, generate=2
    )
    params = 6_738_415_616
    assert result.params == params
    assert result.weights_bytes == params * 2 == result.weights_bytes_by_dtype["fp16"]
    kv_per_token = 2 * 32 * 4096 * 2  # K and V, 32 layers, 32 heads x 128, 2 bytes
    assert result.kv_cache_bytes_per_token == kv_per_token == 524_288
    assert result.kv_cache_bytes == kv_per_token * (512 + 2)
    # the decode step at context 512: every weight matrix read once (the embedding: one row), the cache read,
    # one new K/V entry written
    step = result.layers
    assert result.layers_pass == "decode step, batch 1, context 512"
    rotary_table = 64 * 4  # the inv_freq buffer, fp32
    assert sum(layer.weight_bytes for layer in step) == params * 2 - 32000 * 4096 * 2 + 4096 * 2 + rotary_table
    assert sum(layer.kv_cache_bytes for layer in step) == 512 * kv_per_token + kv_per_token
    assert all(layer.bound == "memory" for layer in step) and result.decode.bound == "memory"
    step_bytes = sum(layer.bytes for layer in step)
    assert step_bytes == result.decode.bytes_per_step_at_context[0][1]
    assert sum(layer.time_s for layer in step) == pytest.approx(step_bytes / A100_BANDWIDTH, rel=1e-12)
    # time per output token >= weights / bandwidth = 13.48 GB / 2,039 GB/s = 6.61 ms
    assert result.decode.time_per_token_s >= params * 2 / A100_BANDWIDTH
    assert result.decode.time_per_token_s == pytest.approx(6.6e-3, rel=0.01)
    assert result.batches[0].tokens_per_s == pytest.approx(1 / result.decode.time_per_token_s)
    # FLOPs per token: 2 x every matrix but the embedding, attention over c + 1 keys, and the elementwise rest
    (c1, f1), (c2, f2) = result.decode.flops_per_token_at_context
    matmul_weights = params - 32000 * 4096 - (2 * 32 + 1) * 4096
    assert f2 - f1 == 4 * 32 * 32 * 128 * (c2 - c1)
    assert 0 < f1 - 2 * matmul_weights - 4 * 32 * 32 * 128 * (c1 + 1) < 1e-3 * f1
    # what fits: 80 GiB - weights, over a sequence's cache at P + G and the largest prefill layer's activations:
    # the MLP's gate x up product (two 512 x 11008 inputs and its output); the lm_head sees the last position only
    per_sequence = kv_per_token * 514 + 3 * 512 * 11008 * 2
    assert result.max_batch_that_fits == int((A100_MEMORY - params * 2) // per_sequence)
    # int4: a quarter of fp16 for the matrices, plus an fp16 scale and a 4-bit zero per group of 128 of a row;
    # the 65 RMSNorm weight vectors stay fp16
    matrices = llama_matrices(4096, 11008, 32, 32000, 4096)
    scales = sum(rows * math.ceil(columns / 128) * (2 + 0.5) for rows, columns in matrices)
    vectors = (2 * 32 + 1) * 4096
    assert sum(r * c for r, c in matrices) + vectors == params
    assert result.weights_bytes_by_dtype["int4"] == (params - vectors) * 2 / 4 + scales + vectors * 2
    assert result.weights_bytes_by_dtype["int8"] == (params - vectors) + sum(r for r, _ in matrices) * 2 + vectors * 2
    assert result.weights_bytes_by_dtype["fp32"] == params * 4


def test_tinyllama_gqa_cache_uses_kv_heads_and_decode_flops_are_matmuls_plus_linear_attention(tmp_path):
    pytest.importorskip("transformers")
    layers, heads, kv_heads, head_dim, hidden, vocab = 22, 32, 4, 64, 2048, 32000
    prompt, generate = 16, 5
    result = infer(
        ModelSpec(write_config(tmp_path, TINYLLAMA)),
        gpu="A100-SXM4-80GB",
        precision="bf16",
        prompt=prompt,
        generate=generate,
    )
    assert result.kv_cache_bytes_per_token == 2 * layers * kv_heads * head_dim * 2 == 22_528  # not 2 x 22 x 2048 x 2
    matmul_params = sum(r * c for r, c in llama_matrices(hidden, 5632, layers, vocab, kv_heads * head_dim)[1:])
    attention_per_entry = layers * 2 * 2 * heads * head_dim  # Q @ K^T and P @ V over every query head, per key
    (c1, f1), (c2, f2) = result.decode.flops_per_token_at_context
    assert (c1, c2) == (prompt, prompt + generate - 1)
    assert f2 - f1 == attention_per_entry * (c2 - c1)  # only attention grows with the context
    rest = f1 - 2 * matmul_params - attention_per_entry * (c1 + 1)  # norms, rotary, SiLU, residuals: per token
    assert 0 < rest < 1e-3 * f1
    assert (
        result.decode.flops_total
        == generate * 2 * matmul_params
        + attention_per_entry * sum(c + 1 for c in range(prompt, prompt + generate))
        + generate * rest
    )
    # the decode step reads the cache it was given: c entries of K and V per layer
    assert sum(layer.kv_cache_bytes for layer in result.layers) == (prompt + 1) * 22_528


def test_prefill_is_flopcalc_count_over_the_prompt_and_batches_scale(tmp_path):
    pytest.importorskip("transformers")
    config = write_config(
        tmp_path,
        causal_lm(64, 160, 2, 4, 2, 1000, TINYLLAMA["max_position_embeddings"]),
    )
    hidden, vocab, prompt = 64, 1000, 8
    result = infer(ModelSpec(config), gpu="A100-SXM4-80GB", batch_sizes="1,4", prompt=prompt, generate=3)
    # the prefill keeps the logits of the last position only: the lm_head's 2 x B x hidden x vocab, not x P
    unused_logits = 2 * (prompt - 1) * hidden * vocab
    assert result.prefill.flops == count(config, seq_len=prompt, batch_size=1, backward=False).forward - unused_logits
    four = infer(ModelSpec(config), gpu="A100-SXM4-80GB", batch_sizes=[4], prompt=prompt, generate=3)
    assert four.prefill.flops == count(config, seq_len=prompt, batch_size=4, backward=False).forward - 4 * unused_logits
    assert any("logits of the last prompt position only" in note for note in result.notes)
    assert [batch.batch_size for batch in result.batches] == [1, 4]
    # per generated token: nearly batch-independent (the rotary tables are made once per step, for every sequence)
    for (_, per_token_of_4), (_, per_token_of_1) in zip(
        four.decode.flops_per_token_at_context, result.decode.flops_per_token_at_context
    ):
        assert per_token_of_4 == pytest.approx(per_token_of_1, rel=1e-3) and per_token_of_4 <= per_token_of_1
    assert result.batches[1].kv_cache_bytes == 4 * result.batches[0].kv_cache_bytes
    one = result.batches[0]
    assert one.latency_s == pytest.approx(one.ttft_s + 3 * one.time_per_token_s)
    assert one.throughput_per_s == pytest.approx(3 / one.latency_s)


def test_a_linear_roofline_its_batch_sweep_and_where_it_turns_compute_bound(tmp_path):
    n = 1024
    model = write_model(
        tmp_path,
        f"""
        import torch
        from torch import nn

        def build():
            return nn.Linear({n}, {n}, bias=False)

        def example_inputs():
            return (torch.randn(1, {n}),)
    """,
    )
    result = infer(ModelSpec(f"{model}:build"), gpu="A100-SXM4-80GB", batch_sizes="1,512")
    peak, bandwidth = A100_PEAK_BF16, A100_BANDWIDTH
    for batch in result.batches:  # bf16: 2 bytes for the weights, the input and the output
        b = batch.batch_size
        flops, moved = 2 * b * n * n, 2 * (n * n + b * n + b * n)
        assert batch.latency_s == max(flops / peak, moved / bandwidth)
        assert batch.throughput_per_s == b / batch.latency_s
        assert batch.memory_bytes == 2 * n * n + 2 * b * n * 2  # weights + the layer's input and output
    assert [batch.bound for batch in result.batches] == ["memory", "compute"]
    (layer,) = result.layers
    assert (layer.flops, layer.bytes, layer.weight_bytes) == (2 * n * n, 2 * (n * n + 2 * n), 2 * n * n)
    assert layer.intensity == 2 * n * n / (2 * (n * n + 2 * n))
    # compute-bound when 2bn^2 / peak >= 2(n^2 + 2bn) / bandwidth: b >= peak n^2 / (n^2 bandwidth - 2n peak)
    assert result.compute_bound_from_batch == math.ceil(peak * n * n / (n * n * bandwidth - 2 * n * peak)) == 219
    assert result.max_batch_that_fits == (A100_MEMORY - 2 * n * n) // (2 * 2 * n)
    assert result.prefill is None and result.decode is None and result.kv_cache_bytes is None


def test_any_model_following_the_hf_calling_convention_generates(examples):
    """examples/decoder.py: 2 layers of width 64, vocabulary 1000, a tuple cache it concatenates onto."""
    layers, dim, vocab, prompt, generate = 2, 64, 1000, 6, 4
    decoder = f"{examples / 'decoder.py'}:build"
    result = infer(ModelSpec(decoder), gpu="H100-SXM", precision="bf16", prompt=prompt, generate=generate)
    assert result.kv_cache_bytes_per_token == 2 * layers * dim * 2
    matmuls = 2 * (layers * 12 * dim * dim + dim * vocab)  # qkv 3d^2, out d^2, MLP 8d^2; the head dV
    (c1, f1), (c2, f2) = result.decode.flops_per_token_at_context
    rest = f1 - matmuls - 4 * layers * dim * (c1 + 1)  # layer norms, GELU, residuals: the same at any context
    assert f2 == matmuls + 4 * layers * dim * (c2 + 1) + rest and 0 < rest < 0.05 * f1
    # it takes no logits_to_keep, so its prefill computes logits at every prompt position, as `count` does
    assert result.prefill.flops == count(decoder, [f"1x{prompt}:int64"], backward=False).forward
    assert any(note.startswith("prefill counts logits at every prompt position") for note in result.notes)
    # each step reads the cache it is given and appends one entry per layer
    assert sum(layer.kv_cache_bytes for layer in result.layers) == (prompt + 1) * 2 * layers * dim * 2


def test_quantised_weights_and_cache_change_bytes_and_the_compute_precision_the_peak(tmp_path):
    pytest.importorskip("transformers")
    config = write_config(
        tmp_path,
        causal_lm(256, 512, 2, 4, 2, 1000, TINYLLAMA["max_position_embeddings"]),
    )
    base = infer(ModelSpec(config), gpu="H100-SXM", precision="bf16", prompt=8, generate=2)
    quantised = infer(
        ModelSpec(config),
        gpu="H100-SXM",
        precision="bf16",
        weight_dtype="int4",
        kv_dtype="fp8",
        compute_precision="fp8",
        prompt=8,
        generate=2,
    )
    assert quantised.weights_bytes == quantised.weights_bytes_by_dtype["int4"] == base.weights_bytes_by_dtype["int4"]
    assert quantised.kv_cache_bytes_per_token * 2 == base.kv_cache_bytes_per_token
    assert quantised.hardware.peak_flops == 1979e12 and base.hardware.peak_flops == 989.5e12  # H100 SXM dense
    assert quantised.quantization == QUANTIZATION_LAYOUTS["int4"] and base.quantization is None
    assert any("int4 weights" in note for note in quantised.notes)
    # an int4 weight matrix 256 wide: 128 bytes + 2 groups of (2-byte scale + half-byte zero) per row
    assert parameter_bytes((1000, 256), "int4", "bf16") == 1000 * (128 + 2 * 2.5)
    assert parameter_bytes((256,), "int4", "bf16") == 512  # a norm weight stays bf16
    by_name = {layer.name: layer for layer in quantised.layers}
    q_proj = by_name["model.layers.0.self_attn.q_proj"]
    assert q_proj.weight_bytes == parameter_bytes((256, 256), "int4", "bf16")


def test_a_calibration_gives_the_peak_and_the_catalogue_the_bandwidth(tmp_path, examples):
    calibration = tmp_path / "calibration.yaml"
    calibration.write_text(
        textwrap.dedent("""
        version: 1
        devices:
          NVIDIA A100-SXM4-80GB:
            device: cuda
            matmul:
              tflops: {bf16: 250.0}
              measured_at: '2026-01-01T00:00:00+00:00'
              torch_version: 2.13.0
              seconds: 10.0
    """)
    )
    result = infer(ModelSpec(f"{examples / 'mlp.py'}:build"), gpu="A100-SXM4-80GB", calibration=str(calibration))
    assert result.hardware.peak_flops == 250e12 and result.hardware.bandwidth == A100_BANDWIDTH
    assert "measured" in result.hardware.peak_origin


def test_bad_input_is_one_line(tmp_path, examples):
    mlp = f"{examples / 'mlp.py'}:build"
    with pytest.raises(UsageError, match="at least 1"):
        parse_batch_sizes("0")
    with pytest.raises(UsageError, match="whole numbers"):
        parse_batch_sizes("1,eight")
    with pytest.raises(UsageError, match="--batch-size 16777217 is too large: a batch size must be at most 16,777,216"):
        parse_batch_sizes("1,16777217")
    with pytest.raises(UsageError, match="at most 16,777,216 tokens in all"):
        infer(ModelSpec(mlp), gpu="A100-SXM4-80GB", prompt=2**24, generate=1)
    with pytest.raises(UsageError, match="go together"):
        infer(ModelSpec(mlp), gpu="A100-SXM4-80GB", prompt=8)
    with pytest.raises(UsageError, match="does not take input_ids, past_key_values"):
        infer(ModelSpec(mlp), gpu="A100-SXM4-80GB", prompt=8, generate=2)
    with pytest.raises(UsageError, match="not a storage format"):
        storage_dtype("int3", "--weight-dtype")
    with pytest.raises(UsageError, match="no fp8 peak"):
        infer(ModelSpec(mlp), gpu="A100-SXM4-80GB", compute_precision="fp8")
    catalogue = tmp_path / "gpus.yaml"
    catalogue.write_text("gpus:\n  - {id: NoBandwidth-1, name: No Bandwidth, vendor: Acme, peak_tflops: {bf16: 100}}\n")
    with pytest.raises(CatalogError, match="NoBandwidth-1 has no memory bandwidth"):
        infer(ModelSpec(mlp), gpu="NoBandwidth-1", catalogs=[str(catalogue)])


def test_an_encoder_cannot_generate(tmp_path):
    pytest.importorskip("transformers")
    config = write_config(tmp_path, tiny_bert("BertModel"))
    with pytest.raises(UsageError, match="is not a causal language model"):
        infer(ModelSpec(config), gpu="A100-SXM4-80GB", prompt=8, generate=2)


def test_a_bert_lm_head_without_causal_attention_is_refused(tmp_path):
    """BertLMHeadModel has a cache and a head, but without is_decoder its attention sees both ways: no token by
    token generation to bound (it used to give decode figures)."""
    pytest.importorskip("transformers")
    bert = tiny_bert("BertLMHeadModel")
    with pytest.raises(UsageError, match="its attention sees every position both ways"):
        infer(ModelSpec(write_config(tmp_path, bert)), gpu="A100-SXM4-80GB", prompt=8, generate=2)
    decoder = infer(
        ModelSpec(write_config(tmp_path, dict(bert, is_decoder=True))), gpu="A100-SXM4-80GB", prompt=8, generate=2
    )
    assert decoder.kv_cache_bytes_per_token == 2 * 2 * 64 * 2  # K and V, 2 layers of width 64, bf16


READS_VALUES = """
import torch

class ReadsValues(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(64, 64, bias=False)

    def forward(self, x):
        return self.lin(x) * float(x.abs().sum().item() >= 0)

def build():
    return ReadsValues()

def example_inputs():
    return (torch.ones(1, 64),)
"""


def test_a_model_that_cannot_run_on_meta_falls_back_to_the_cpu_behind_the_memory_guard(tmp_path, monkeypatch):
    from flopcalc import api
    from flopcalc.errors import InsufficientMemoryError

    source = f"{write_model(tmp_path, READS_VALUES)}:build"
    result = infer(ModelSpec(source), gpu="A100-SXM4-80GB")
    assert result.notes[0].startswith("time bounds are lower bounds")
    assert "could not run on the meta device" in result.notes[1] and result.notes[1].endswith("counted on cpu")
    assert result.layers[0].flops == 2 * 64 * 64
    monkeypatch.setattr(api, "available_memory", lambda: 10_000)  # the 64 x 64 fp32 weights need 16.4 kB
    with pytest.raises(InsufficientMemoryError, match="on the cpu needs at least 16.4 kB"):
        infer(ModelSpec(source), gpu="A100-SXM4-80GB")


MISTRAL = causal_lm(64, 128, 2, 4, 2, 1000, 256, model_type="mistral")


def test_a_sliding_window_cache_past_the_window_holds_the_window(tmp_path):
    """transformers keeps window - 1 entries of a sliding-window cache: past the window, the cache stops growing
    and a decode step reads those entries and writes one (it used to exit 2: 'does not grow')."""
    pytest.importorskip("transformers")
    window, layers, kv_heads, head_dim = 4, 2, 2, 16
    per_token = 2 * layers * kv_heads * head_dim * 2  # K and V, bf16: 256 bytes
    sliding = tmp_path / "sliding"
    sliding.mkdir()
    windowed = ModelSpec(write_config(sliding, dict(MISTRAL, sliding_window=window)))

    def bf16_on_an_a100(spec, prompt, generate):
        return infer(spec, gpu="A100-SXM4-80GB", precision="bf16", prompt=prompt, generate=generate)

    result = bf16_on_an_a100(windowed, prompt=8, generate=3)
    assert result.kv_cache_bytes_per_token == per_token
    assert result.kv_cache_bytes == (window - 1) * per_token  # what the cache holds, not 11 tokens' worth
    assert sum(layer.kv_cache_bytes for layer in result.layers) == window * per_token  # 3 read, 1 written
    (c1, f1), (c2, f2) = result.decode.flops_per_token_at_context
    assert (c1, c2) == (8, 10) and f1 == f2  # attention over the window's 4 keys at every context
    # the same step as at context 3, where the window first fills: 3 cached entries + the new one; a full-attention
    # model at context 3 does the same matmuls and attention (only the mask's few comparisons differ)
    filled = bf16_on_an_a100(windowed, prompt=3, generate=1)
    assert filled.decode.flops_per_token_at_context[0][1] == f1
    full = bf16_on_an_a100(ModelSpec(write_config(tmp_path, MISTRAL)), prompt=3, generate=1)
    assert full.decode.flops_per_token_at_context[0][1] == pytest.approx(f1, abs=100)
    assert full.kv_cache_bytes == 4 * per_token and not any("sliding window" in note for note in full.notes)
    assert any("stops growing at 768 B per sequence (a sliding window" in note for note in result.notes)
    # a generation that crosses the window: the cache holds the window at the end, not P + G tokens
    crossing = bf16_on_an_a100(windowed, prompt=2, generate=4)
    assert crossing.kv_cache_bytes == (window - 1) * per_token
