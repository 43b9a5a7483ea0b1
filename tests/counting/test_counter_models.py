"""The counter on real torch.nn building blocks: the same figures on meta and CPU, and exact arithmetic."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flopcalc.counting.counter import count
from tests._models import ReturnsTwice

DEVICES = ["meta", "cpu"]


def _count_on(device, build, make_inputs, *, train=True, **options):
    torch.manual_seed(0)
    with torch.device(device):
        model = build()
        inputs = make_inputs()
    model.train(train)
    return count(model, inputs, **options)


def _same_on_meta_and_cpu(build, make_inputs, **options):
    """Both reports, after checking every per-layer, per-category figure agrees across devices."""
    meta, cpu = (_count_on(d, build, make_inputs, **options) for d in DEVICES)
    assert [layer.to_dict() for layer in meta.layers] == [layer.to_dict() for layer in cpu.layers]
    assert meta.unsupported_ops == cpu.unsupported_ops
    return meta


class SelfAttention(nn.Module):
    def __init__(self, dim=16, heads=4, need_weights=False):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights)[0]


B, L, D, HEADS = 2, 5, 16, 4


def _tokens():
    return torch.randn(B, L, D)


def test_multihead_attention_counts_its_sdpa_as_attention_on_every_device():
    """F.multi_head_attention_forward calls SDPA from inside a torch function: the scope must still see it."""
    report = _same_on_meta_and_cpu(SelfAttention, _tokens)
    assert report.forward_by_category["matmul"] == 2 * B * L * D * 3 * D + 2 * B * L * D * D  # in and out projections
    assert report.forward_by_category["attention"] == 2 * B * HEADS * L * L * (D // HEADS) * 2
    assert report.backward_by_category["attention"] == 2 * report.forward_by_category["attention"]
    assert not report.unsupported_ops


@pytest.mark.parametrize("train", [True, False])
def test_transformer_encoder_layer_same_on_meta_and_cpu_even_where_a_fast_path_exists(train):
    """In eval mode without grad, nn.TransformerEncoderLayer has a fused CPU fast path; counting must not take it
    (or must count it the same)."""
    report = _same_on_meta_and_cpu(
        lambda: nn.TransformerEncoderLayer(D, HEADS, 32, batch_first=True), _tokens, train=train, backward=train
    )
    assert report.forward_by_category["attention"] == 2 * B * HEADS * L * L * (D // HEADS) * 2
    assert report.forward_by_category["matmul"] == 2 * B * L * (3 * D * D + D * D + D * 32 + 32 * D)
    assert not report.unsupported_ops


class ProjectedQueryAttention(nn.Module):
    """Only the query comes from a parameter, so only q needs a gradient; k and v are plain inputs."""

    def __init__(self, dim, **sdpa_options):
        super().__init__()
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.sdpa_options = sdpa_options

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(query=self.q_proj(q), key=k, value=v, **self.sdpa_options)


def _qkv(heads_q=4, heads_kv=4, len_q=6, len_k=6, dim=8, dim_v=8, batch=2):
    return lambda: (
        torch.randn(batch, heads_q, len_q, dim),
        torch.randn(batch, heads_kv, len_k, dim),
        torch.randn(batch, heads_kv, len_k, dim_v),
    )


@pytest.mark.parametrize(
    "inputs, options",
    [
        (_qkv(), {}),
        (_qkv(heads_kv=2), {"enable_gqa": True}),
        (_qkv(len_k=7), {"attn_mask": None, "dropout_p": 0.0}),
        (_qkv(len_k=9), {"is_causal": True}),
        (_qkv(len_k=7, dim_v=5), {}),
    ],
    ids=["plain", "gqa", "mask-none", "causal-L<S", "Ev!=E"],
)
def test_attention_backward_counts_only_the_gradients_needed_on_every_device(inputs, options):
    """With only q needing a gradient, the backward is dP = dO V^T and dQ = dS K: L*S*(Ev + E) multiply-adds
    per head, the same as the forward. The CPU kernel computes dK and dV anyway; counting it would make
    the figure depend on the device."""
    report = _same_on_meta_and_cpu(lambda: ProjectedQueryAttention(8, **options), inputs)
    q, k, v = (t.shape for t in inputs())
    forward = 2 * q[0] * q[1] * q[2] * k[2] * (q[3] + v[3])
    assert report.forward_by_category["attention"] == forward
    assert report.backward_by_category["attention"] == forward


def test_attention_backward_with_every_input_needing_a_gradient_is_twice_the_forward():
    class Plain(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    def inputs():
        return tuple(t.requires_grad_() for t in _qkv(len_k=7, dim_v=5)())

    report = _same_on_meta_and_cpu(Plain, inputs)
    assert report.forward == 2 * 2 * 4 * 6 * 7 * (8 + 5)
    assert report.backward == 2 * report.forward


def test_causal_half_with_fewer_queries_than_keys_keeps_the_top_left_triangle():
    """torch's is_causal mask is top-left aligned: query row i sees keys 0..i, so L=4, S=6 keeps 1+2+3+4 pairs."""

    class Causal(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def inputs():
        return tuple(t.requires_grad_() for t in _qkv(len_q=4, len_k=6, batch=1, heads_q=1, heads_kv=1)())

    report = _same_on_meta_and_cpu(Causal, inputs, causal_half=True)
    assert report.forward == 2 * (1 + 2 + 3 + 4) * (8 + 8)
    assert report.backward == 2 * report.forward


@pytest.mark.parametrize("device", DEVICES)
def test_lstm_counts_its_gate_matmuls_exactly_on_every_device(device):
    """On the CPU torch.lstm would run as one oneDNN op no formula sees (it counted zero); the counter makes it
    decompose as on meta. Per step and layer: x @ W_ih^T (4H gates) and h @ W_hh^T."""
    batch, steps, n_in, hidden = 2, 5, 8, 16
    report = _count_on(
        device, lambda: nn.LSTM(n_in, hidden, num_layers=2, batch_first=True), lambda: torch.randn(batch, steps, n_in)
    )
    rows, gates = batch * steps, 4 * hidden
    input_proj = 2 * rows * n_in * gates + 2 * rows * hidden * gates  # layers 1 and 2
    hidden_proj = 2 * 2 * rows * hidden * gates
    assert report.forward_by_category["matmul"] == input_proj + hidden_proj
    # backward: every weight gradient; the input gradient of layer 2 only (x needs none); the hidden-state
    # gradient of every step but the first (h0 is a constant)
    hidden_grad = 2 * 2 * (steps - 1) * batch * hidden * gates
    assert report.backward_by_category["matmul"] == input_proj + hidden_proj + 2 * rows * hidden * gates + hidden_grad
    assert not report.unsupported_ops


def test_recurrent_layers_agree_across_devices_except_gradient_accumulation_adds():
    """torch's CPU RNN projects the whole sequence in one matmul; elsewhere it projects step by step and adds up
    the per-step weight gradients. The matmul, activation and forward figures agree; the backward's
    elementwise adds differ by those accumulations (docs/counting.md)."""
    for build in (lambda: nn.GRU(8, 16, bidirectional=True), lambda: nn.RNN(8, 16)):
        meta, cpu = (_count_on(d, build, lambda: torch.randn(5, 2, 8)) for d in DEVICES)
        assert meta.forward_by_category == cpu.forward_by_category
        for category in ("matmul", "activation", "reduction"):
            assert meta.backward_by_category[category] == cpu.backward_by_category[category]
        assert meta.backward_by_category["elementwise"] > cpu.backward_by_category["elementwise"]
        assert not meta.unsupported_ops and not cpu.unsupported_ops


class CheckpointedBlocks(nn.Module):
    """Two transformer-ish blocks, each optionally wrapped in torch.utils.checkpoint."""

    def __init__(self, reentrant=None):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(D, 32, bias=False), nn.GELU(), nn.Linear(32, D, bias=False)) for _ in range(2)
        )
        self.head = nn.Linear(D, 3, bias=False)
        self.reentrant = reentrant

    def forward(self, x):
        for block in self.blocks:
            if self.reentrant is None:
                x = block(x)
            else:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=self.reentrant)
            q = x.unflatten(-1, (HEADS, D // HEADS)).transpose(1, 2)
            x = x + F.scaled_dot_product_attention(q, q, q).transpose(1, 2).flatten(2)
        return self.head(x)


@pytest.mark.parametrize("reentrant", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_checkpoint_recomputation_is_left_out_of_the_counts_and_said_in_a_note(device, reentrant):
    """Checkpointing trades memory for a second forward of each block inside the backward. The model's FLOPs
    (what MFU divides by) do not change: every layer's figures equal the unchecked model's, and a note
    gives the extra work."""
    plain = _count_on(device, CheckpointedBlocks, lambda: torch.randn(B, L, D).requires_grad_())
    checked = _count_on(device, lambda: CheckpointedBlocks(reentrant), lambda: torch.randn(B, L, D).requires_grad_())
    assert [layer.to_dict() for layer in checked.layers] == [layer.to_dict() for layer in plain.layers]
    assert not any("checkpointing" in note for note in plain.notes)
    assert any("activation checkpointing re-ran" in note for note in checked.notes)


class Resample(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.fn = fn

    def forward(self, x):
        return self.fn(x * self.scale)


N_C_H_W = (2, 3, 4, 5)


@pytest.mark.parametrize(
    "fn, forward, backward",
    [
        # bilinear: each of the 2*3*8*10 outputs weighs 4 taps (8 FLOPs); the backward spreads each gradient back
        (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), 8 * 2 * 3 * 8 * 10, 8 * 2 * 3 * 8 * 10),
        (lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), 32 * 2 * 3 * 8 * 10, 32 * 2 * 3 * 8 * 10),
        (lambda x: F.interpolate(x.flatten(2), scale_factor=3, mode="linear"), 4 * 2 * 3 * 60, 4 * 2 * 3 * 60),
        # nearest copies; its backward sums 4 gradients into each input: 3 adds per input element
        (lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), 0, 3 * 2 * 3 * 4 * 5),
        (lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), 0, 3 * 2 * 3 * 4 * 5),
        # reflection padding copies; its backward adds the border gradients: (6*7 - 4*5) per channel
        (lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"), 0, 2 * 3 * (6 * 7 - 4 * 5)),
        (lambda x: F.pad(x.unsqueeze(2), (1, 1, 1, 1, 0, 0), mode="replicate"), 0, 2 * 3 * (6 * 7 - 4 * 5)),
    ],
    ids=["bilinear", "bicubic", "linear", "nearest", "nearest-exact", "reflect-pad", "replicate-pad-3d"],
)
def test_interpolation_and_padding_have_exact_formulas(fn, forward, backward):
    report = _same_on_meta_and_cpu(lambda: Resample(fn), lambda: torch.randn(*N_C_H_W))
    elements = 2 * 3 * 4 * 5  # the x * scale multiply, and its gradient (the scale's is a multiply + sum)
    assert report.forward == elements + forward
    resample_backward = report.backward - report.layer("").backward_by_category["reduction"]
    assert resample_backward - elements == backward
    assert not report.unsupported_ops


def test_embedding_bag_adds_every_looked_up_row():
    bags, per_bag, dim = 3, 4, 8
    report = _same_on_meta_and_cpu(
        lambda: nn.EmbeddingBag(20, dim, mode="sum"), lambda: torch.zeros(bags, per_bag, dtype=torch.long)
    )
    assert report.forward == bags * per_bag * dim
    assert report.backward == bags * per_bag * dim
    assert not report.unsupported_ops


class ResidualMLP(nn.Module):
    """proj -> two pre-norm residual MLP blocks -> head: nested modules, residual adds in the parents."""

    def __init__(self, n_in=6, dim=8, hidden=12, n_out=3):
        super().__init__()
        self.proj = nn.Linear(n_in, dim)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "norm": nn.LayerNorm(dim),
                    "up": nn.Linear(dim, hidden),
                    "act": nn.GELU(),
                    "down": nn.Linear(hidden, dim),
                }
            )
            for _ in range(2)
        )
        self.head = nn.Linear(dim, n_out, bias=False)

    def forward(self, x):
        x = self.proj(x)
        for block in self.blocks:
            x = x + block["down"](block["act"](block["up"](block["norm"](x))))
        return self.head(x)


@pytest.mark.parametrize("frozen", [(), ("blocks.0.*",)])
@pytest.mark.parametrize("device", DEVICES)
def test_every_linear_backward_is_its_weight_gradient_plus_the_input_gradient_when_needed(device, frozen):
    rows = 4 * 5
    report = _count_on(device, ResidualMLP, lambda: torch.randn(4, 5, 6), frozen=frozen)
    shapes = {"proj": (6, 8), "head": (8, 3)}
    for i in range(2):
        shapes.update({f"blocks.{i}.up": (8, 12), f"blocks.{i}.down": (12, 8)})
    for name, (n, m) in shapes.items():
        layer = report.layer(name)
        weight_grad = 0 if name.startswith(frozen[0][:-2] if frozen else "-") else 2 * rows * n * m
        input_grad = 0 if name == "proj" else 2 * rows * n * m  # the model's input needs no gradient
        assert layer.forward_by_category["matmul"] == 2 * rows * n * m, name
        assert layer.backward_by_category["matmul"] == weight_grad + input_grad, name
    # inclusive figures: a parent holds its children's plus its own (the residual adds)
    for layer in report.layers:
        children = [
            c
            for c in report.layers
            if c.depth == layer.depth + 1
            and c.name.startswith(layer.name)
            and (layer.name == "" or c.name.startswith(layer.name + "."))
        ]
        for column in ("forward_by_category", "backward_by_category"):
            for category in getattr(layer, column):
                assert sum(getattr(c, column)[category] for c in children) <= getattr(layer, column)[category]
    # the residual adds run in the root's own forward (a ModuleList is never called): 2 adds of rows x dim
    own_root = {
        c: report.root.forward_by_category[c]
        - sum(report.layer(n).forward_by_category[c] for n in ("proj", "blocks", "head"))
        for c in ("matmul", "elementwise")
    }
    assert own_root == {"matmul": 0, "elementwise": 2 * rows * 8}


def test_param_bytes_follow_each_parameters_dtype():
    with torch.device("meta"):
        mixed = nn.ModuleDict({"bf16": nn.Linear(4, 8, dtype=torch.bfloat16), "fp32": nn.LayerNorm(8)})

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.parts = mixed

        def forward(self, x):
            return self.parts["fp32"](self.parts["bf16"](x).float())

    report = count(Mixed(), torch.empty(3, 4, dtype=torch.bfloat16, device="meta"))
    assert report.params == 4 * 8 + 8 + 8 + 8
    assert report.param_bytes == 2 * (4 * 8 + 8) + 4 * (8 + 8)


class PreNorm(nn.Module):
    """The vit-pytorch wrapper: a LayerNorm, then any block. Its name ends in Norm; its work mostly is not."""

    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class RMSNorm(nn.Module):
    """A hand-written RMSNorm (as in LLaMA code): pow, mean, rsqrt and muls, all of which are norm work."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


def test_a_wrapper_named_norm_is_not_a_norm_but_a_hand_written_norm_is():
    report = _same_on_meta_and_cpu(
        lambda: nn.Sequential(PreNorm(D, nn.Sequential(nn.Linear(D, 32), nn.GELU())), RMSNorm(32)), _tokens
    )
    rows = B * L
    wrapper = report.layer("0")
    assert wrapper.forward_by_category["activation"] == rows * 32  # the GELU stays an activation
    assert wrapper.forward_by_category["elementwise"] == rows * 32  # the Linear's bias add
    assert wrapper.forward_by_category["norm"] == report.layer("0.norm").forward == rows * D * 7
    rms = report.layer("1")
    assert rms.forward == rms.forward_by_category["norm"] > 0


def test_bilinear_layer_counts_its_two_contractions():
    """y_k = x1^T W_k x2 + b_k: torch contracts x1 with W (B*out*in1*in2 multiply-adds), then with x2
    (B*out*in2). The weight gradient sums grad_k * x1 * x2 over the batch: one multiply-add per point of
    B*out*in1*in2, after forming grad x x1 (B*out*in1)."""
    rows, in1, in2, n_out = 3, 4, 5, 6

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.bilinear = nn.Bilinear(in1, in2, n_out)

        def forward(self, a, b):
            return self.bilinear(a, b)

    report = _same_on_meta_and_cpu(TwoInputs, lambda: (torch.randn(rows, in1), torch.randn(rows, in2)))
    assert report.forward_by_category["matmul"] == 2 * (rows * n_out * in1 * in2 + rows * n_out * in2)
    assert report.backward_by_category["matmul"] == 2 * (rows * n_out * in1 * in2 + rows * n_out * in1)
    assert not report.unsupported_ops


def test_sparse_embedding_gradients_are_not_unsupported():
    report = _same_on_meta_and_cpu(
        lambda: nn.Sequential(nn.Embedding(20, 8, sparse=True), nn.Linear(8, 2)),
        lambda: torch.zeros(2, 3, dtype=torch.long),
    )
    assert not report.unsupported_ops


def test_an_output_returned_twice_is_seeded_once():
    """Returning the same tensor in two places (a dict and a tuple) is not extra model work."""
    once = count(nn.Linear(4, 3), torch.randn(2, 4))
    twice = count(ReturnsTwice(lambda y: {"logits": y, "all": (y, [y])}), torch.randn(2, 4))
    assert twice.backward == once.backward


def test_a_module_shared_at_two_places_is_one_layer_holding_both_calls():
    """`a` is also `b.0`: one layer, under its first name, with both calls' FLOPs; its weight gradient is
    computed per call and the two summed (16 adds); parameters once."""

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4, bias=False)
            self.b = nn.Sequential(self.a, nn.ReLU())

        def forward(self, x):
            return self.b(self.a(x))

    rows = 3
    report = _same_on_meta_and_cpu(Shared, lambda: torch.randn(rows, 4))
    assert [layer.name for layer in report.layers] == ["", "a", "b", "b.1"]
    shared = report.layer("a")
    assert shared.forward == 2 * 2 * rows * 4 * 4
    # weight gradient per call (2x), input gradient for the second call only, and the sum of the two
    assert shared.backward_by_category["matmul"] == 3 * 2 * rows * 4 * 4
    assert shared.backward_by_category["elementwise"] == 4 * 4
    assert report.layer("b").forward == report.layer("b.1").forward == rows * 4
    assert report.params == report.layer("a").params == 16


@pytest.mark.parametrize("train, input_grad_per_element", [(True, 10), (False, 1)])
def test_batch_norm_input_gradient_depends_on_whose_statistics(train, input_grad_per_element):
    """With batch statistics the input gradient flows through the mean and variance (10 per element);
    in eval mode the norm is a fixed per-channel scale and shift, and the input gradient is one multiply."""
    elements = 2 * 4 * 5 * 5
    report = _same_on_meta_and_cpu(
        lambda: nn.BatchNorm2d(4), lambda: torch.randn(2, 4, 5, 5).requires_grad_(), train=train
    )
    assert report.backward == elements * (input_grad_per_element + 2 + 1)  # + weight (2) and bias (1) gradients


@pytest.mark.parametrize(
    "size, mode, forward, backward",
    [
        # 8 -> 4, bilinear: support 1 x 2 = 2 inputs either side of centres 1, 3, 5, 7: 3 + 4 + 4 + 3 = 14 taps;
        # a horizontal pass over the 8 input rows, then a vertical one over the 4 output columns, per plane (6)
        ((4, 4), "bilinear", 2 * 6 * (8 * 14 + 4 * 14), 2 * 6 * 14 * 14),
        # bicubic: support 2 x 2 = 4: 5 + 7 + 7 + 5 = 24 taps
        ((4, 4), "bicubic", 2 * 6 * (8 * 24 + 4 * 24), 2 * 6 * 24 * 24),
        # only the width changes: the vertical pass is skipped; the backward still loops the rows' taps (8 -> 8
        # at support 1: 2 each, 1 for the last, 15 in all; the second's weight is 0)
        ((8, 4), "bilinear", 2 * 6 * 8 * 14, 2 * 6 * 15 * 14),
        # 8 -> 16 upsampling keeps the support at 1: outputs read 1, 2, ..., 2, 1 inputs (30 taps per 16)
        ((16, 16), "bilinear", 2 * 6 * (8 * 30 + 16 * 30), 2 * 6 * 30 * 30),
    ],
    ids=["bilinear-down", "bicubic-down", "width-only", "bilinear-up"],
)
def test_antialiased_interpolation_counts_its_separable_passes(size, mode, forward, backward):
    report = _same_on_meta_and_cpu(
        lambda: Resample(lambda x: F.interpolate(x, size=size, mode=mode, antialias=True)),
        lambda: torch.randn(2, 3, 8, 8),
    )
    elements = 2 * 3 * 8 * 8  # the x * scale multiply, and its gradient
    assert report.forward == elements + forward
    resample_backward = report.backward - report.layer("").backward_by_category["reduction"]
    assert resample_backward - elements == backward
    assert not report.unsupported_ops


@pytest.mark.parametrize("batch_first", [True, False])
def test_onednn_lstm_layer_is_counted_per_step_layer_and_direction(batch_first):
    """A traced LSTM calls aten.lstm, which the CPU runs as one oneDNN op per layer and direction
    (aten.mkldnn_rnn_layer); it gives the figure torch's decomposed cells give."""
    torch.manual_seed(0)
    lstm = nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = torch.randn(3, 5, 8)
    steps, batch = (5, 3) if batch_first else (3, 5)
    traced = torch.jit.trace(lstm, x)
    fused = count(traced, x, backward=False)
    assert not fused.unsupported_ops
    H, G = 16, 4 * 16
    # per step, batch element and direction: 2*G*H*(I + H) products; layer 2 reads both directions (I = 32)
    per_sequence = 2 * G * (8 + H) + 2 * G * (2 * H + H)
    assert fused.forward_by_category["matmul"] == steps * batch * 2 * per_sequence
    # two biases added (2G), the products added (4H), cell and output (4H); 3 sigmoids and 2 tanh (5H)
    assert fused.forward_by_category["elementwise"] == steps * batch * 2 * 2 * (2 * G + 8 * H)
    assert fused.forward_by_category["activation"] == steps * batch * 2 * 2 * 5 * H
    decomposed = count(lstm, x, backward=False)
    assert fused.forward_by_category == decomposed.forward_by_category


def test_onednn_lstm_layer_backward_is_counted_per_step_layer_and_direction():
    """The traced LSTM's backward runs oneDNN's aten.mkldnn_rnn_layer_backward per layer and direction: per time
    step the forward's products twice (dx and dh, then dW_ih and dW_hh), the bias gradients (a sum of dG over
    the batch per bias) and the gates' pointwise work twice (docs/formulas.md)."""
    torch.manual_seed(0)
    lstm = nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 5, 8)
    report = count(torch.jit.trace(lstm, x), x, strict=True)
    steps_times_batch, H, G = 5 * 3, 16, 4 * 16
    per_sequence = 2 * G * (8 + H) + 2 * G * (2 * H + H)  # both layers' forward products, one direction
    backward = report.backward_by_category
    assert backward["matmul"] == steps_times_batch * 2 * 2 * per_sequence
    assert backward["reduction"] == steps_times_batch * 2 * 2 * 2 * G  # two biases, two layers, two directions
    assert backward["activation"] == steps_times_batch * 2 * 2 * 2 * 5 * H
    # the gates' pointwise work twice (8H each), and layer 1's output gradient summed over layer 2's directions
    assert backward["elementwise"] == steps_times_batch * (2 * 2 * 2 * 8 * H + 2 * H)


def _jagged(*lengths, width=8):
    return torch.nested.nested_tensor([torch.randn(n, width) for n in lengths], layout=torch.jagged)


def test_a_jagged_tensor_through_linear_counts_its_rows_not_the_padding():
    """linear on a jagged [B, j, D] tensor reaches the counter whole (aten.linear, aten.linear_backward): its
    packed rows (3 + 5 = 8) times the weight, no padding to the longest."""
    mlp = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    report = count(mlp, _jagged(3, 5))
    rows = 3 + 5
    assert report.forward_by_category["matmul"] == 2 * rows * (8 * 4 + 4 * 2)
    assert report.forward_by_category["elementwise"] == rows * (4 + 2)  # the bias adds
    assert report.forward_by_category["activation"] == rows * 4
    # weight gradients of both layers, the input gradient of the second only (the input needs none)
    assert report.backward_by_category["matmul"] == 2 * rows * (8 * 4 + 2 * 4 * 2)
    assert report.backward_by_category["reduction"] == rows * (4 + 2)
    assert report.inputs[0].shape == (rows, 8)  # the packed values
    assert not report.unsupported_ops
    dense = count(mlp, torch.randn(rows, 8))
    assert dense.forward_by_category == report.forward_by_category
    assert dense.backward_by_category == report.backward_by_category


def test_attention_over_jagged_sequences_counts_each_sequence_against_its_own_keys():
    class JaggedAttention(nn.Module):
        def forward(self, x):
            heads = x.unflatten(-1, (2, 4)).transpose(1, 2)  # [B, H, j, E]
            return F.scaled_dot_product_attention(heads, heads, heads).transpose(1, 2).flatten(-2)

    report = count(JaggedAttention(), _jagged(3, 5), backward=False)
    pairs = 3 * 3 + 5 * 5  # not 2 * 5 * 5 as padded
    assert report.forward_by_category["attention"] == 2 * 2 * pairs * (4 + 4)
    assert report.forward == report.forward_by_category["attention"]
    assert not report.unsupported_ops
