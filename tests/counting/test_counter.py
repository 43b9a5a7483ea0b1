"""The counter on real modules: exact analytic values, attribution, devices, and the two reference counters."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flopcalc.counting.counter import count
from flopcalc.errors import ModelRunError, UnsupportedOpsError, UsageError
from flopcalc.spec import CallArgs


def test_linear_forward_and_backward_without_input_grad():
    B, N, M = 8, 32, 16
    report = count(nn.Linear(N, M), torch.randn(B, N))
    assert report.forward_by_category["matmul"] == 2 * B * N * M
    assert report.forward_by_category["elementwise"] == B * M  # the bias add
    assert report.backward_by_category["matmul"] == 2 * B * N * M  # weight gradient only
    assert report.backward_by_category["reduction"] == B * M  # bias gradient: a sum over the batch
    assert report.params == N * M + M


def test_linear_backward_with_input_grad_adds_the_input_gradient():
    B, N, M = 8, 32, 16
    x = torch.randn(B, N, requires_grad=True)
    report = count(nn.Linear(N, M, bias=False), x)
    assert report.forward == 2 * B * N * M
    assert report.backward_by_category["matmul"] == 4 * B * N * M


def test_three_dimensional_linear_counts_every_token():
    B, T, N, M = 2, 5, 12, 7
    report = count(nn.Linear(N, M, bias=False, device="meta"), torch.empty(B, T, N, device="meta"))
    assert report.forward == 2 * B * T * N * M


def test_backward_is_attributed_to_the_layer_that_ran_it():
    B, D, H, C = 4, 20, 30, 10
    model = nn.Sequential(nn.Linear(D, H, bias=False), nn.ReLU(), nn.Linear(H, C, bias=False))
    report = count(model, torch.randn(B, D))
    first, second = report.layer("0"), report.layer("2")
    assert first.forward_by_category["matmul"] == 2 * B * D * H
    assert first.backward_by_category["matmul"] == 2 * B * D * H  # no input gradient for the first layer
    assert second.backward_by_category["matmul"] == 4 * B * H * C  # weight and input gradients
    assert report.layer("1").backward_by_category["activation"] == B * H
    assert report.backward == sum(report.layer(n).backward for n in ("0", "1", "2"))


def conv_forward(n, c_out, h_out, w_out, c_in_per_group, k):
    return 2 * n * c_out * h_out * w_out * c_in_per_group * k * k


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_conv2d_plain_grouped_and_depthwise(groups):
    N, C, H = 2, 16, 12
    conv = nn.Conv2d(C, C, 3, padding=1, groups=groups, bias=False)
    x = torch.randn(N, C, H, H, requires_grad=True)
    report = count(conv, x)
    expected = conv_forward(N, C, H, H, C // groups, 3)
    assert report.forward_by_category["conv"] == expected
    assert report.backward_by_category["conv"] == 2 * expected  # input and weight gradients


def test_transposed_conv():
    N, C_in, C_out, H = 2, 6, 4, 5
    deconv = nn.ConvTranspose2d(C_in, C_out, 4, stride=2, padding=1, bias=False)
    report = count(deconv, torch.randn(N, C_in, H, H))
    assert report.forward_by_category["conv"] == 2 * N * C_in * H * H * C_out * 16


class BroadcastMatmul(nn.Module):
    def __init__(self, e, s):
        super().__init__()
        self.w = nn.Parameter(torch.randn(e, s))

    def forward(self, x):
        return x @ self.w  # [B, H, L, E] @ [E, S]: broadcast over B and H


class Einsum(nn.Module):
    def forward(self, q, k):
        return torch.einsum("bhle,bhse->bhls", q, k)


def test_broadcast_matmul_and_einsum_count_every_batch():
    B, H, L, E, S = 2, 3, 5, 8, 4
    report = count(BroadcastMatmul(E, S), torch.randn(B, H, L, E))
    assert report.forward_by_category["matmul"] == 2 * B * H * L * E * S
    report = count(Einsum(), (torch.randn(B, H, L, E), torch.randn(B, H, 7, E)))
    assert report.forward_by_category["matmul"] == 2 * B * H * L * 7 * E


class Attention(nn.Module):
    def __init__(self, causal=False):
        super().__init__()
        self.causal = causal

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_sdpa_same_answer_on_meta_and_cpu(device):
    B, H, L, S, E = 2, 4, 16, 16, 8
    q, k, v = (torch.randn(B, H, n, E, device=device, requires_grad=True) for n in (L, S, S))
    report = count(Attention(), (q, k, v))
    forward = 2 * B * H * L * S * (E + E)
    assert report.forward_by_category["attention"] == forward
    assert report.forward == forward  # softmax and scaling inside the kernel are not counted
    assert report.backward_by_category["attention"] == 2 * forward
    assert report.backward == 2 * forward
    assert not report.unsupported_ops


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_causal_half_counts_the_lower_triangle(device):
    B, H, L, E = 1, 2, 8, 4
    q = torch.randn(B, H, L, E, device=device)
    full = count(Attention(causal=True), (q, q, q), backward=False)
    half = count(Attention(causal=True), (q, q, q), backward=False, causal_half=True)
    assert full.forward == 2 * B * H * L * L * 2 * E
    assert half.forward == 2 * B * H * (L * (L + 1) // 2) * 2 * E


def test_tied_weights_are_counted_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 8)
            self.head = nn.Linear(8, 50, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, tokens):
            return self.head(self.embed(tokens))

    report = count(Tied(), torch.zeros(2, 3, dtype=torch.long))
    assert report.params == 50 * 8
    assert report.param_bytes == 50 * 8 * 4


def test_frozen_layers_drop_their_weight_gradient():
    B, D, H, C = 4, 20, 30, 10
    model = nn.Sequential(nn.Linear(D, H, bias=False), nn.ReLU(), nn.Linear(H, C, bias=False))
    report = count(model, torch.randn(B, D), frozen=["0"])
    assert report.layer("0").backward == 0  # frozen, and its input needs no gradient
    # nothing before layer 2 needs a gradient now, so it computes its weight gradient only
    assert report.layer("2").backward_by_category["matmul"] == 2 * B * H * C
    assert all(p.requires_grad for p in model.parameters())  # the caller's model is left as it was
    frozen_by_model = nn.Sequential(nn.Linear(D, H, bias=False), nn.ReLU(), nn.Linear(H, C, bias=False))
    frozen_by_model[0].weight.requires_grad_(False)
    assert count(frozen_by_model, torch.randn(B, D)).backward == report.backward


def test_frozen_pattern_matching_nothing_is_an_error():
    with pytest.raises(UsageError, match="matches no parameter"):
        count(nn.Linear(2, 2), torch.randn(1, 2), frozen=["encoder.*"])


def test_no_backward_counts_the_forward_only():
    report = count(nn.Linear(4, 4), torch.randn(2, 4), backward=False)
    assert report.backward == 0 and not report.backward_counted


class Inverse(nn.Module):
    def forward(self, x):
        return torch.linalg.inv(x)


def test_ops_without_formula_are_listed_and_strict_fails():
    report = count(Inverse(), torch.randn(3, 3), backward=False)
    assert report.unsupported_ops == {"aten.linalg_inv_ex": 1}
    with pytest.raises(UnsupportedOpsError, match="linalg_inv_ex"):
        count(Inverse(), torch.randn(3, 3), backward=False, strict=True)


def test_a_model_that_fails_raises_a_one_line_error():
    with pytest.raises(ModelRunError, match="mat1 and mat2 shapes cannot be multiplied"):
        count(nn.Linear(4, 4), torch.randn(2, 5))


def test_unit_mac_halves_only_multiply_adds():
    report = count(nn.Linear(10, 5), torch.randn(3, 10)).in_unit("mac")
    assert report.unit == "mac"
    assert report.forward_by_category["matmul"] == 3 * 10 * 5
    assert report.forward_by_category["elementwise"] == 15


def _small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )


def test_cross_check_fvcore_counts_half_our_matmul_and_conv_forward():
    from fvcore.nn import FlopCountAnalysis

    model, x = _small_cnn(), torch.randn(2, 3, 16, 16)
    analysis = FlopCountAnalysis(model, (x,))
    analysis.unsupported_ops_warnings(False)
    by_op = analysis.by_operator()
    fvcore_multiply_adds = by_op["conv"] + by_op["linear"]
    report = count(model, x, backward=False)
    assert report.forward_by_category["conv"] + report.forward_by_category["matmul"] == 2 * fvcore_multiply_adds


def test_cross_check_flop_counter_mode_on_matmul_and_conv_forward_and_backward():
    from torch.utils.flop_counter import FlopCounterMode

    model, x = _small_cnn(), torch.randn(2, 3, 16, 16)
    with FlopCounterMode(display=False) as mode:
        out = model(x)
        out.backward(torch.ones_like(out))
    report = count(model, x)
    ours = sum(report.forward_by_category[c] + report.backward_by_category[c] for c in ("conv", "matmul"))
    assert ours == mode.get_total_flops()


def test_flop_counter_mode_is_wrong_for_grouped_conv_backward_and_we_are_not():
    """Arithmetic wins over the anchor: FCM's convolution backward ignores groups."""
    from torch.utils.flop_counter import FlopCounterMode

    N, C, H = 1, 8, 6
    conv = nn.Conv2d(C, C, 3, padding=1, groups=C, bias=False)
    x = torch.randn(N, C, H, H, requires_grad=True)
    with FlopCounterMode(display=False) as mode:
        conv(x).sum().backward()
    exact = conv_forward(N, C, H, H, 1, 3)
    report = count(conv, x)
    assert report.forward + report.backward == 3 * exact
    assert mode.get_total_flops() != 3 * exact


def test_data_dependent_model_fails_on_meta():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x * float(x.sum().item())

    with pytest.raises(ModelRunError):
        count(DataDependent(), torch.empty(2, device="meta"))


def test_fvcore_undercounts_a_broadcast_matmul_and_we_count_every_batch():
    """Arithmetic wins over the anchor: fvcore's matmul handle ignores the broadcast batch dimensions."""
    from fvcore.nn import FlopCountAnalysis

    class LeftBroadcast(nn.Module):
        def forward(self, a, b):
            return a @ b  # [1, 1, L, E] @ [B, H, E, S]

    B, H, L, E, S = 2, 4, 5, 8, 3
    inputs = (torch.randn(1, 1, L, E), torch.randn(B, H, E, S))
    analysis = FlopCountAnalysis(LeftBroadcast(), inputs)
    analysis.unsupported_ops_warnings(False)
    exact = 2 * B * H * L * E * S
    assert count(LeftBroadcast(), inputs, backward=False).forward == exact
    assert 2 * analysis.total() * B * H == exact  # fvcore misses the B*H = 8 broadcast copies


class _GroupedExperts(nn.Module):
    """A mixture-of-experts layer's experts as transformers runs them: one grouped GEMM over stacked weights."""

    def __init__(self, experts, k, n, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(experts, k, n, device=device))

    def forward(self, x, offsets):
        return torch._grouped_mm(x, self.weight, offsets)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_float32_grouped_mm_counts_on_meta_and_cpu_alike(device):
    """torch's meta kernel of _grouped_mm wants bf16; a count needs only shapes, so float32 counts on meta."""
    tokens, experts, k, n = 12, 3, 8, 4
    x = torch.randn(tokens, k, device=device, requires_grad=True)
    offsets = torch.tensor([5, 5, 12], dtype=torch.int32, device=device)
    report = count(_GroupedExperts(experts, k, n, device=device), CallArgs((x,), {"offsets": offsets}))
    assert report.device == device
    assert report.forward == 2 * tokens * k * n
    assert report.backward == 2 * (2 * tokens * k * n)  # the input gradient and the weight gradient
    assert [(i.name, i.shape) for i in report.inputs] == [(None, (tokens, k)), ("offsets", (experts,))]


class _StepByStep(nn.Module):
    """A recurrence written as a Python loop over the steps of a sequence (as Mamba's reference scan is)."""

    def __init__(self, steps, width):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(steps, width))

    def forward(self, x):
        y = self.weight * x
        state = y[0]
        for t in range(1, y.shape[0]):
            state = state + y[t]
        return state


def test_summing_step_gradients_costs_their_slices_not_the_whole_tensor():
    """Each y[t] sends back its gradient scattered into zeros of y's shape; autograd sums the L of them. Only a
    slice of each holds values, so the L - 1 adds cost D each, not L*D each (quadratic in the sequence)."""
    steps, width = 16, 8
    report = count(_StepByStep(steps, width), torch.randn(steps, width))
    assert report.forward_by_category["elementwise"] == steps * width + (steps - 1) * width  # w*x, then the sum
    assert report.backward_by_category["elementwise"] == (steps - 1) * width + steps * width  # the sums, grad*x


def test_a_thousand_layer_model_counts_without_overflowing_the_stack():
    """Freeing a backward graph whose nodes the counter asked for recursed once per node: 1,000 Llama layers
    died with SIGSEGV. A 256 KiB thread stack makes a 1,000-layer chain overflow the same way (it did before
    the nodes were freed one at a time), so the test stays small."""
    import threading

    layers, width, batch = 1000, 2, 1
    model = nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(layers)]).to("meta")
    result = {}
    previous = threading.stack_size(256 * 1024)
    try:
        thread = threading.Thread(
            target=lambda: result.update(report=count(model, torch.empty(batch, width, device="meta")))
        )
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    report = result["report"]
    assert report.forward_by_category["matmul"] == layers * 2 * batch * width * width
    assert report.forward_by_category["activation"] == layers * batch * width
    # weight gradients of every layer, and input gradients of every layer but the first
    assert report.backward_by_category["matmul"] == (2 * layers - 1) * 2 * batch * width * width


def test_the_unsupported_ops_note_and_error_have_one_wording():
    from flopcalc.counting.report import unsupported_ops_error, unsupported_ops_note

    ops = {"aten.b": 1, "aten.a": 3}
    assert unsupported_ops_note({}) is None
    assert unsupported_ops_note(ops) == "unsupported ops (no formula, not counted): aten.a x3, aten.b x1"
    assert (
        unsupported_ops_note(ops, "MFU is a lower bound")
        == "unsupported ops (no formula, not counted; MFU is a lower bound): aten.a x3, aten.b x1"
    )
    error = unsupported_ops_error(ops)
    assert isinstance(error, UnsupportedOpsError) and error.field == "strict"
    assert error.message == "ops without a FLOP formula: aten.a x3, aten.b x1"


def test_every_command_says_the_unsupported_ops_note_through_the_one_function():
    """The note was copied into compute, count's renderer, plan, budget, infer and bench in three wordings."""
    from pathlib import Path

    import flopcalc

    package = Path(flopcalc.__file__).parent
    copies = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(text in path.read_text() for text in ("no formula, not counted", "without a FLOP formula ("))
        and path.name != "report.py"
    ]
    assert copies == []
    callers = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if "unsupported_ops_note(" in path.read_text()
    }
    assert {
        "compute.py",
        "render/count.py",
        "plan/model.py",
        "budget/checks.py",
        "infer/session.py",
        "bench/model.py",
        "meter/core.py",
    } <= callers


class SignalOps(nn.Module):
    """grid_sample, cdist, the FFTs and max_unpool in one model: none may be left without a formula."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x, grid):
        sampled = nn.functional.grid_sample(x * self.scale, grid, align_corners=False)
        pooled, indices = nn.functional.max_pool2d(sampled, 2, return_indices=True)
        unpooled = nn.functional.max_unpool2d(pooled, indices, 2)
        spectrum = torch.fft.rfft(unpooled, dim=-1)
        signal = torch.fft.irfft(torch.fft.fft(spectrum, dim=-2), n=unpooled.shape[-1], dim=-1)
        flat = signal.flatten(2)
        return torch.cdist(flat, flat).sum()


def test_signal_ops_count_under_strict():
    x, grid = torch.randn(2, 3, 8, 8), torch.rand(2, 4, 4, 2) * 2 - 1
    report = count(SignalOps(), (x, grid), strict=True)
    assert report.unsupported_ops == {} and report.forward > 0 and report.backward_counted


class MaskedAttention(nn.Module):
    """A sliding window as transformers passes it: an additive mask, is_causal False."""

    def forward(self, q, k, v):
        mask = torch.zeros(q.shape[-2], k.shape[-2], device=q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_attention_window_counts_each_query_against_at_most_w_keys(device):
    B, H, L, E, W = 2, 3, 10, 4, 4
    q = torch.randn(B, H, L, E, device=device, requires_grad=True)
    report = count(Attention(causal=True), (q, q, q), attention_window=W)
    pairs = 1 + 2 + 3 + 4 * (L - 3)  # rows 0..2 see 1, 2, 3 keys; the other 7 see the window's 4
    assert report.forward_by_category["attention"] == 2 * B * H * pairs * 2 * E
    assert report.backward_by_category["attention"] == 2 * 2 * B * H * pairs * 2 * E
    assert report.options["attention_window"] == W
    assert any("sliding window of 4 keys (1 calls)" in note for note in report.notes)


def test_attention_window_applies_to_a_masked_call_and_not_to_a_bidirectional_one():
    B, H, L, E, W = 1, 2, 8, 4, 3
    q = torch.randn(B, H, L, E, device="meta")
    masked = count(MaskedAttention(), (q, q, q), backward=False, attention_window=W)
    assert masked.forward == 2 * B * H * (1 + 2 + 3 * (L - 2)) * 2 * E
    bidirectional = count(Attention(), (q, q, q), backward=False, attention_window=W)
    assert bidirectional.forward == 2 * B * H * L * L * 2 * E
    assert any("neither is_causal nor a mask" in note for note in bidirectional.notes)


def test_attention_window_must_be_a_positive_whole_number():
    q = torch.randn(1, 1, 4, 2, device="meta")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UsageError, match="attention window"):
            count(Attention(causal=True), (q, q, q), attention_window=bad)


def test_a_one_row_mask_gives_every_query_the_last_positions_window():
    """A decode step as transformers runs it with grouped-query attention: the 2 query heads of a KV group folded
    into 2 query rows, one mask row for both; each sees min(S, W) keys, not consecutive positions' windows."""
    q, k = torch.randn(1, 2, 2, 16, device="meta"), torch.randn(1, 2, 9, 16, device="meta")

    class OneRow(nn.Module):
        def forward(self, q, k):
            mask = torch.zeros(1, 1, 1, k.shape[-2], device=k.device)
            return F.scaled_dot_product_attention(q, k, k, attn_mask=mask)

    report = count(OneRow(), (q, k), backward=False, attention_window=4)
    assert report.forward == 2 * 1 * 2 * (2 * 4) * (16 + 16)


def test_a_window_no_query_reaches_past_changes_nothing():
    q = torch.randn(1, 2, 8, 4, device="meta")
    plain = count(Attention(causal=True), (q, q, q), backward=False)
    wide = count(Attention(causal=True), (q, q, q), backward=False, attention_window=8)
    assert wide.forward == plain.forward == 2 * 1 * 2 * 8 * 8 * 2 * 4  # the full square, as without a window
    assert not any("sliding window" in note for note in wide.notes)
    half = count(Attention(causal=True), (q, q, q), backward=False, causal_half=True, attention_window=100)
    assert half.forward == 2 * 1 * 2 * (8 * 9 // 2) * 2 * 4
