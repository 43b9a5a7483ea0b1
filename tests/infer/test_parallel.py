"""flopcalc.infer on several GPUs: Llama-3-70B's weights per GPU at --tp 8, its 2 all-reduces per layer and step
priced by hand from the message size and the link, pipeline sends and replicas, and the layouts refused."""

import pytest

from flopcalc.errors import UsageError
from flopcalc.infer import infer
from flopcalc.infer.parallel import Link, ModelShape, ServingLayout, check_split, ring_all_reduce_s, send_s
from flopcalc.spec import ModelSpec
from tests._hf_configs import causal_lm, write_config

H100_NVLINK_PER_DIRECTION = 450e9  # NVLink 4, 900 GB/s both directions together
H100_RING_STEP_LATENCY = 1e-6  # the shipped H100-SXM device profile, intra-node
LLAMA_3_70B = "examples/hf/llama-3-70b/config.json"
TINY = causal_lm(64, 128, 4, 8, 2, 256, 512)


def tiny_config(tmp_path):
    return write_config(tmp_path, TINY)


def llama_weight_bytes(hidden, ffn, layers, heads, kv_heads, vocab, dtype_bytes=2):
    """(matrices, vectors) in bytes: embedding, q, k, v, o, gate, up, down per layer, head; two norms per layer
    and the final one."""
    kv_dim = hidden // heads * kv_heads
    per_layer = 2 * hidden * hidden + 2 * kv_dim * hidden + 3 * ffn * hidden
    return (2 * vocab * hidden + layers * per_layer) * dtype_bytes, (2 * layers + 1) * hidden * dtype_bytes


def test_llama_3_70b_tp8_weights_per_gpu_and_each_all_reduce_priced_by_hand():
    pytest.importorskip("transformers")
    result = infer(ModelSpec(LLAMA_3_70B), gpu="H100-SXM", prompt=8, generate=1, tp=8)
    par = result.to_dict()["parallel"]
    matrices, vectors = llama_weight_bytes(8192, 28672, 80, 64, 8, 128256)
    assert result.weights_bytes == matrices + vectors
    assert par["weights_bytes_per_gpu"] == matrices // 8 + vectors  # the matrices split 8 ways, norms whole
    assert par["all_reduces_per_step"] == 2 * 80
    decode_message = 1 * 8192 * 2  # one token of one sequence, bf16
    each = decode_message * 2 * 7 / 8 / H100_NVLINK_PER_DIRECTION + 2 * 7 * H100_RING_STEP_LATENCY
    assert par["all_reduce_bytes_decode"] == decode_message
    assert par["all_reduce_s_decode"] == pytest.approx(each, rel=1e-12)
    prefill_message = 8 * 8192 * 2
    assert par["all_reduce_s_prefill"] == pytest.approx(
        prefill_message * 2 * 7 / 8 / H100_NVLINK_PER_DIRECTION + 14e-6, rel=1e-12
    )
    # the 8 KV heads: one per GPU, so the cache per token per GPU is an eighth
    assert par["kv_heads_per_gpu"] == 1
    assert par["kv_cache_bytes_per_token_per_gpu"] == result.kv_cache_bytes_per_token / 8 == 2 * 80 * 128 * 2
    # the decode step's layers: every matrix read at an eighth, and a row for the 160 all-reduces
    comm = [layer for layer in result.layers if layer.type == "AllReduce"]
    assert len(comm) == 1 and comm[0].time_s == pytest.approx(160 * each, rel=1e-12)
    q_proj = next(layer for layer in result.layers if layer.name == "model.layers.0.self_attn.q_proj")
    assert q_proj.weight_bytes == 8192 * 8192 * 2 / 8
    # 141 GB of weights do not fit one 80 GiB H100; 17.6 GB per GPU do
    assert result.batches[0].fits is True and result.max_batch_that_fits > 0


def test_pipeline_stages_and_replicas_on_a_small_llama(tmp_path):
    pytest.importorskip("transformers")
    single = infer(ModelSpec(tiny_config(tmp_path)), gpu="H100-SXM", prompt=16, generate=4, batch_sizes="1,4")
    split = infer(
        ModelSpec(tiny_config(tmp_path)),
        gpu="H100-SXM",
        prompt=16,
        generate=4,
        batch_sizes="1,4",
        tp=4,
        pp=2,
        replicas=3,
    )
    par = split.to_dict()["parallel"]
    matrices, vectors = llama_weight_bytes(64, 128, 4, 8, 2, 256)
    assert par["weights_bytes_per_gpu"] == (matrices / 4 + vectors) / 2
    assert (par["gpus_per_replica"], par["gpus"]) == (8, 24)
    # 2 KV heads over 4 GPUs: each head on 2 of them, so the cache splits 2 ways, then over 2 stages
    assert par["kv_heads_per_gpu"] == 1 and par["kv_cache_bytes_per_token_per_gpu"] == 256 / 2 / 2
    link = Link("intra-node", H100_NVLINK_PER_DIRECTION, H100_RING_STEP_LATENCY, "")
    assert par["pipeline_send_s_decode"] == send_s(64 * 2, link) == 128 / 450e9 + 1e-6
    sends = [layer for layer in split.layers if layer.type == "Send"]
    assert sends[0].time_s == par["pipeline_send_s_decode"]
    for batch, row in zip(split.batches, par["tokens_per_s_all_replicas"], strict=True):
        assert row["tokens_per_s"] == pytest.approx(3 * batch.tokens_per_s, rel=1e-12)
    assert split.kv_cache_bytes_per_token == single.kv_cache_bytes_per_token  # the whole model's, as on one GPU
    assert any("not modelled" in note for note in split.notes)
    assert "parallel" not in single.to_dict()


def test_ring_all_reduce_and_send_by_hand():
    link = Link("intra-node", 100e9, 2e-6, "")
    assert ring_all_reduce_s(1000, 4, link) == 1000 * 2 * 3 / 4 / 100e9 + 6 * 2e-6
    assert ring_all_reduce_s(1000, 1, link) == 0.0
    assert send_s(500, link) == 500 / 100e9 + 2e-6


def test_pipeline_hops_that_leave_a_node():
    assert ServingLayout(tp=8, pp=4).node_crossings == 3  # every stage a node of its own
    assert ServingLayout(tp=2, pp=4).node_crossings == 0  # 8 GPUs: one node
    assert ServingLayout(tp=4, pp=4).node_crossings == 1  # stages 0-1 on one node, 2-3 on the next


@pytest.mark.parametrize(
    "layout, shape, message",
    [
        (ServingLayout(tp=8), ModelShape(4096, 32, 12, 12), "does not divide the model's 12 attention heads"),
        (ServingLayout(tp=4), ModelShape(4096, 32, 32, 6), "one must divide the other"),
        (ServingLayout(pp=3), ModelShape(4096, 32, 32, 32), "even stages"),
    ],
)
def test_layouts_the_model_cannot_split_are_refused(layout, shape, message):
    with pytest.raises(UsageError, match=message):
        check_split(layout, shape)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(tp=3), "must divide the 8 GPUs of a node"),
        (dict(tp=16), "must divide the 8 GPUs of a node"),
        (dict(pp=0), "from 1 to"),
        (dict(replicas=True), "from 1 to"),
    ],
)
def test_bad_layouts_are_refused(kwargs, message):
    with pytest.raises(UsageError, match=message):
        ServingLayout(**kwargs)


def test_several_gpus_need_a_generation(tmp_path):
    with pytest.raises(UsageError, match="split a generation"):
        infer(ModelSpec(tiny_config(tmp_path)), gpu="H100-SXM", tp=2)
