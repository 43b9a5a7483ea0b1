"""Bytes per layer (counting/traffic.py) through api.count_traffic, against element counts written out."""

import pytest
import torch
from torch import nn

from flopcalc.api import count_traffic
from flopcalc.counting.traffic import cache_tensors

B, N, M, K = 4, 32, 16, 8


def meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, device="meta", dtype=dtype)


def test_a_linear_reads_its_weights_and_input_once_and_writes_its_output():
    with torch.device("meta"):
        model = nn.Linear(N, M)
    report, traffic = count_traffic(model, (meta(B, N),))
    (layer,) = traffic.layers
    assert layer.weights == {"weight": M * N, "bias": M}
    assert (layer.activations_read, layer.activations_written) == (B * N, B * M)
    assert (layer.cache_read, layer.cache_written, layer.other_bytes) == (0, 0, 0)
    assert report.forward == 2 * B * N * M + B * M and not report.backward_counted
    assert traffic.param_shapes == {"weight": (M, N), "bias": (M,)}


def test_what_passes_between_layers_is_written_once_and_read_once():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(N, M, bias=False), nn.ReLU(), nn.Linear(M, K, bias=False))
    _, traffic = count_traffic(model, (meta(B, N),))
    by_name = {layer.name: layer for layer in traffic.layers}
    assert by_name["0"].activations_written == B * M  # read by the ReLU
    assert (by_name["1"].activations_read, by_name["1"].activations_written) == (B * M, B * M)
    # the output: the model returns it
    assert (by_name["2"].activations_read, by_name["2"].activations_written) == (B * M, B * K)


class Fused(nn.Module):
    """Six elementwise ops and a reshape in one module: only its input and its output reach memory."""

    def forward(self, x):
        y = torch.relu(x * 2 + 1)
        return (torch.exp(y) - y).reshape(-1) / 3


def test_a_layer_is_fused_inside_and_views_move_nothing():
    _, traffic = count_traffic(Fused(), (meta(B, N),))
    (layer,) = traffic.layers
    assert (layer.activations_read, layer.activations_written) == (B * N, B * N)


def test_an_embedding_reads_the_rows_it_gathers_and_integer_inputs_count_in_bytes():
    vocab, dim, tokens = 1000, 64, 5
    with torch.device("meta"):
        model = nn.Embedding(vocab, dim)
    _, traffic = count_traffic(model, (meta(2, tokens, dtype=torch.int64),))
    (layer,) = traffic.layers
    assert layer.weights == {"weight": 2 * tokens * dim}  # not vocab * dim
    assert layer.other_bytes == 2 * tokens * 8  # the int64 token ids
    assert layer.activations_written == 2 * tokens * dim


class StaticCacheAttention(nn.Module):
    """Writes the new key into a preallocated cache in place, then reads the whole cache."""

    def forward(self, x, cache, position):
        cache.index_copy_(1, position, x)
        return cache.sum(dim=1)


def test_an_in_place_write_into_the_cache_writes_the_new_entries_only():
    context, dim = 100, 16
    cache = meta(B, context, dim)
    _, traffic = count_traffic(
        StaticCacheAttention(), (meta(B, 1, dim), cache, meta(1, dtype=torch.int64)), cache=[cache]
    )
    (layer,) = traffic.layers
    assert layer.cache_written == B * dim  # one position per sequence, not the cache
    assert layer.cache_read == B * context * dim  # the sum reads it whole
    assert layer.activations_read == B * dim and layer.activations_written == B * dim


def test_tied_weights_are_read_by_each_layer_that_uses_them():
    vocab, dim = 50, 8
    with torch.device("meta"):
        embed, head = nn.Embedding(vocab, dim), nn.Linear(dim, vocab, bias=False)
    head.weight = embed.weight
    model = nn.Sequential(embed, head)
    _, traffic = count_traffic(model, (meta(1, 3, dtype=torch.int64),))
    assert traffic.layer("0").weights == {"0.weight": 3 * dim}
    assert traffic.layer("1").weights == {"0.weight": vocab * dim}
    assert list(traffic.param_shapes) == ["0.weight"]


def test_a_decode_step_reads_the_kv_cache_and_appends_one_entry_per_layer():
    """Tiny GQA Llama: 2 layers, 4 query heads, 2 KV heads of 16 dims; a DynamicCache of c = 8 entries."""
    transformers = pytest.importorskip("transformers")
    layers, kv_heads, head_dim, context = 2, 2, 16, 8
    config = transformers.AutoConfig.for_model(
        "llama",
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        vocab_size=1000,
    )
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    cache = transformers.DynamicCache(config=model.config)
    ids = meta(1, context, dtype=torch.int64)
    _, prefill = count_traffic(model, {"input_ids": ids, "cache": cache, "use_cache": True}, cache=cache)
    per_token = 2 * kv_heads * head_dim  # K and V of one layer
    attention = [layer for layer in prefill.layers if layer.name.endswith("self_attn")]
    assert [layer.cache_written for layer in attention] == [context * per_token] * layers
    assert sum(t.numel() for t in cache_tensors(cache)) == layers * context * per_token
    _, decode = count_traffic(model, {"input_ids": ids[:, :1], "cache": cache, "use_cache": True}, cache=cache)
    attention = [layer for layer in decode.layers if layer.name.endswith("self_attn")]
    expected = [(context * per_token, per_token)] * layers
    assert [(layer.cache_read, layer.cache_written) for layer in attention] == expected
    assert sum(layer.cache_read for layer in decode.layers) == layers * context * per_token
    assert decode.layer("model.embed_tokens").weights == {"model.embed_tokens.weight": 64}  # one row
    assert decode.layer("lm_head").activations_written == 1000  # the logits of one token


def test_cache_tensors_of_legacy_tuples():
    k, v = meta(1, 2, 3, 4), meta(1, 2, 3, 4)
    assert cache_tensors(((k, v), (k, v))) == [k, v, k, v]
    assert cache_tensors(None) == []


def test_buffers_are_model_state_in_bytes_at_their_own_dtype():
    channels = 8
    with torch.device("meta"):
        model = nn.BatchNorm1d(channels).eval()
    _, traffic = count_traffic(model, (meta(B, channels),))
    (layer,) = traffic.layers
    assert layer.weights == {"weight": channels, "bias": channels}
    assert layer.buffer_bytes == 2 * channels * 4  # running mean and variance, fp32
    assert (layer.activations_read, layer.activations_written, layer.other_bytes) == (B * channels, B * channels, 0)


def test_a_grouped_gemm_reads_only_the_experts_its_rows_can_reach():
    """A mixture of experts' stacked weights [experts, K, N]: one decode token routed to 2 of 8 experts reads 2
    experts' slices; 32 rows can reach all 8."""

    class Experts(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(8, 16, 4))

        def forward(self, rows, offsets):
            return torch._grouped_mm(rows, self.weight, offs=offsets)

    experts = Experts().to("meta")
    for rows, reached in ((2, 2), (32, 8)):
        offsets = torch.full((8,), rows, dtype=torch.int32, device="meta")
        report, traffic = count_traffic(experts, (torch.empty(rows, 16, device="meta"), offsets))
        assert traffic.layer("").weights == {"weight": reached * 16 * 4}
        assert report.forward == 2 * rows * 16 * 4
