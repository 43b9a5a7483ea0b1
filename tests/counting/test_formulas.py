"""Each formula against arithmetic done by hand, one op at a time (shapes in, FLOPs out)."""

import pytest
import torch

from flopcalc.counting import formulas
from flopcalc.counting.formulas import FORMULAS, causal_pairs, flops_of, register

aten = torch.ops.aten


def _call(op, *args, **kwargs):
    out = op(*args, **kwargs)
    return flops_of(op, args, kwargs, out)


def meta(*shape, dtype=torch.float32):
    return torch.empty(shape, device="meta", dtype=dtype)


def test_mm_is_two_flops_per_multiply_add():
    assert _call(aten.mm.default, meta(3, 5), meta(5, 7)) == {"matmul": 2 * 3 * 5 * 7}


def test_addmm_adds_one_flop_per_output_for_the_bias():
    assert _call(aten.addmm.default, meta(7), meta(3, 5), meta(5, 7)) == {"matmul": 2 * 3 * 5 * 7, "elementwise": 21}


def test_bmm_and_baddbmm():
    assert _call(aten.bmm.default, meta(4, 3, 5), meta(4, 5, 6)) == {"matmul": 2 * 4 * 3 * 5 * 6}
    assert _call(aten.baddbmm.default, meta(4, 3, 6), meta(4, 3, 5), meta(4, 5, 6)) == {
        "matmul": 2 * 4 * 3 * 5 * 6,
        "elementwise": 4 * 3 * 6,
    }


def test_convolution_counts_groups_and_transposition():
    x, w = meta(2, 8, 10, 10), meta(16, 2, 3, 3)  # groups=4: 8/4 = 2 input channels per group
    out = aten.convolution.default(x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 4)
    assert tuple(out.shape) == (2, 16, 10, 10)
    assert flops_of(aten.convolution.default, (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 4), {}, out) == {
        "conv": 2 * (2 * 16 * 10 * 10) * 2 * 9
    }
    # transposed: weight [Cin, Cout/groups, k, k]; each input element feeds Cout/groups * k*k outputs
    xt, wt = meta(2, 8, 5, 5), meta(8, 3, 4, 4)
    args = (xt, wt, meta(3), [2, 2], [1, 1], [1, 1], True, [0, 0], 1)
    out = aten.convolution.default(*args)
    assert flops_of(aten.convolution.default, args, {}, out) == {
        "conv": 2 * (2 * 8 * 5 * 5) * 3 * 16,
        "elementwise": out.numel(),
    }


def test_convolution_backward_is_forward_per_needed_gradient():
    x, w = meta(2, 8, 10, 10), meta(8, 1, 3, 3)  # depthwise
    forward = 2 * (2 * 8 * 8 * 8) * 1 * 9
    grad = meta(2, 8, 8, 8)
    base = (grad, x, w, [8], [1, 1], [0, 0], [1, 1], False, [0, 0], 8)
    for mask, expected in [([True, True, True], 2 * forward), ([False, True, False], forward)]:
        out = aten.convolution_backward.default(*base, mask)
        result = flops_of(aten.convolution_backward.default, base + (mask,), {}, out)
        assert result["conv"] == expected
        assert result.get("reduction", 0) == (grad.numel() if mask[2] else 0)


def test_attention_kernels_share_one_formula():
    q, k, v = meta(2, 4, 16, 8), meta(2, 4, 32, 8), meta(2, 4, 32, 6)
    expected = 2 * 2 * 4 * 16 * 32 * (8 + 6)
    assert formulas.sdpa_forward_flops(q.shape, k.shape, v.shape) == expected
    assert (
        formulas.flash_forward_flops(torch.Size([2, 16, 4, 8]), torch.Size([2, 32, 4, 8]), torch.Size([2, 32, 4, 6]))
        == expected
    )
    assert formulas.sdpa_backward_flops(None, q.shape, k.shape, v.shape) == 2 * expected
    for op in (
        aten._scaled_dot_product_flash_attention_for_cpu,
        aten._scaled_dot_product_efficient_attention,
        aten._scaled_dot_product_cudnn_attention,
        aten._scaled_dot_product_flash_attention,
        aten._scaled_dot_product_flash_attention_for_cpu_backward,
        aten._scaled_dot_product_flash_attention_backward,
        aten._scaled_dot_product_efficient_attention_backward,
        aten._scaled_dot_product_cudnn_attention_backward,
        aten._flash_attention_forward,
        aten._flash_attention_backward,
        aten._efficient_attention_forward,
        aten._efficient_attention_backward,
    ):
        assert FORMULAS[op].category == "attention"


@pytest.mark.parametrize("len_q, len_k, expected", [(4, 4, 10), (1, 1, 1), (2, 5, 3), (5, 2, 3 + 3 * 2)])
def test_causal_pairs_matches_a_tril_mask(len_q, len_k, expected):
    assert causal_pairs(len_q, len_k) == expected == int(torch.ones(len_q, len_k).tril().sum())


def test_norms_softmax_activations_pooling():
    x = meta(4, 10)
    assert _call(aten.native_layer_norm.default, x, [10], meta(10), meta(10), 1e-5) == {"norm": 40 * 7}
    assert _call(aten._softmax.default, x, -1, False) == {"activation": 40 * 5}
    assert _call(aten.relu.default, x) == {"activation": 40}
    assert _call(aten.gelu_backward.default, x, x) == {"activation": 80}
    image = meta(1, 3, 8, 8)
    assert _call(aten.max_pool2d_with_indices.default, image, [2, 2], [2, 2]) == {"pool": 3 * 4 * 4 * 4}
    assert _call(aten.sum.dim_IntList, x, [1]) == {"reduction": 40}


def test_views_copies_and_embedding_cost_nothing_and_pointwise_costs_one_per_element():
    x = meta(4, 10)
    assert _call(aten.view.default, x, [40]) == {}
    assert _call(aten.clone.default, x) == {}
    assert _call(aten.embedding.default, meta(100, 10), torch.zeros(3, dtype=torch.long, device="meta")) == {}
    assert _call(aten.add.Tensor, x, x) == {"elementwise": 40}
    assert _call(aten.rsqrt.default, x) == {"elementwise": 40}


def test_an_op_without_formula_is_none_not_zero():
    x = meta(3, 3)
    assert _call(aten.linalg_inv_ex.default, x) is None


def test_registering_an_op_twice_is_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register("mm", category="matmul")(lambda *a, **k: 0)
    with pytest.raises(ValueError, match="unknown category"):
        register("mm", category="bogus")


def test_statistics_count_each_step_as_the_norms_do():
    """var = mean, subtract, square, sum (4 per element, as the norms count those steps); an L2 norm is a
    square-and-sum (a multiply-add, 2) per element; a max-norm compares once; logsumexp is softmax
    without the division (4)."""
    x = meta(3, 7)
    assert _call(aten.var.correction, x, [1]) == {"reduction": 4 * 21}
    assert _call(aten.linalg_vector_norm.default, x) == {"reduction": 2 * 21}
    assert _call(aten.linalg_vector_norm.default, x, float("inf")) == {"reduction": 21}
    assert _call(aten.logsumexp.default, x, [1]) == {"reduction": 4 * 21}


# Views and data movement in every form torch has: in-place, out=, *_copy. None of them is arithmetic, so none
# may be listed as unsupported (an in-place as_strided_ showed up in real vision transformers and ConvNeXts).
@pytest.mark.parametrize(
    "op",
    [
        aten.as_strided_.default,
        aten.squeeze_.default,
        aten.unsqueeze_.default,
        aten.transpose_.default,
        aten.t_.default,
        aten.swapdims_.default,
        aten.detach_.default,
        aten.resize_.default,
        aten.set_.source_Tensor,
        aten.copy_.default,
        aten.fill_.Scalar,
        aten.zero_.default,
        aten.permute_copy.out,
        aten.view_copy.out,
        aten.expand_copy.out,
        aten.transpose_copy.int_out,
        aten.diagonal_copy.out,
        aten.alias_copy.default,
        aten.squeeze_copy.dim,
        aten.cat.out,
        aten.clone.out,
        aten.index_select.out,
    ],
)
def test_views_and_copies_in_place_and_out_forms_cost_nothing(op):
    assert formulas.is_zero_cost(op)
    assert flops_of(op, (), {}, None) == {}


@pytest.mark.parametrize("op", [aten.add_.Tensor, aten.mul.out, aten.exp_.default, aten.sum.dim_IntList])
def test_arithmetic_in_place_and_out_forms_are_not_zero_cost(op):
    assert not formulas.is_zero_cost(op)


def test_a_model_reshaping_in_place_lists_nothing_unsupported():
    from flopcalc.counting.counter import count

    class InPlaceViews(torch.nn.Module):
        def forward(self, x):
            y = x * 2
            y.unsqueeze_(0).squeeze_(0).t_()
            y.as_strided_((y.shape[1], y.shape[0]), (1, y.shape[1]))
            return y.transpose_(0, 1).sum()

    report = count(InPlaceViews(), (torch.randn(3, 4, requires_grad=True),))
    assert report.unsupported_ops == {}
    assert report.forward == 3 * 4 + 3 * 4  # the multiply and the sum; the views are free


def _group_sizes(offsets):
    ends = offsets.tolist()
    return [end - start for start, end in zip([0] + ends[:-1], ends)]


def test_grouped_mm_is_the_sum_over_groups_of_each_groups_gemm():
    """Every layout of torch._grouped_mm on the CPU: the output shape the formula module predicts, and FLOPs
    equal to 2 x rows x k x n summed over the groups the offsets mark."""
    offsets = torch.tensor([3, 4, 12], dtype=torch.int32)  # groups of 3, 1 and 8 (the CPU kernel wants 16-byte strides)
    sizes = _group_sizes(offsets)
    cases = [  # (a, b, offsets, FLOPs from the groups)
        (torch.randn(12, 8), torch.randn(3, 8, 4), offsets, sum(2 * m * 8 * 4 for m in sizes)),  # experts forward
        (torch.randn(8, 12), torch.randn(12, 4), offsets, sum(2 * 8 * m * 4 for m in sizes)),  # weight gradient
        (torch.randn(3, 4, 8), torch.randn(8, 12), offsets, sum(2 * 4 * 8 * n for n in sizes)),  # groups of columns
        (torch.randn(3, 4, 8), torch.randn(3, 8, 4), None, 3 * 2 * 4 * 8 * 4),  # batched
    ]
    for a, b, offs, expected in cases:
        out = aten._grouped_mm.default(a, b, offs)
        assert tuple(out.shape) == formulas.grouped_mm_output_shape(
            a.shape, b.shape, None if offs is None else offs.shape
        )
        assert flops_of(aten._grouped_mm.default, (a, b, offs), {}, out) == {"matmul": expected}


def test_routing_ops_are_cheap_known_ops():
    ids = meta(32)
    assert _call(aten.histc.default, ids, 4, 0, 3) == {"reduction": 32}
    assert _call(aten.floor_divide.default, meta(32, dtype=torch.int64), meta(dtype=torch.int64)) == {"elementwise": 32}


def test_weight_norm_is_a_norm_of_the_weight_and_a_scaling():
    v, g = meta(16, 4, 3), meta(16, 1, 1)
    assert _call(aten._weight_norm_interface.default, v, g, 0) == {"norm": 3 * 16 * 4 * 3 + 16}
    grad, norms = meta(16, 4, 3), meta(16, 1, 1)
    assert _call(aten._weight_norm_interface_backward.default, grad, v, g, norms, 0) == {
        "norm": 5 * 16 * 4 * 3 + 2 * 16
    }


def test_grid_sample_counts_taps_per_output_element():
    x, grid = meta(2, 3, 8, 8), meta(2, 5, 6, 2)
    out = aten.grid_sampler_2d.default(x, grid, 0, 0, False)
    assert _call(aten.grid_sampler_2d.default, x, grid, 0, 0, False) == {"pool": 2 * 4 * (2 * 3 * 5 * 6)}
    assert _call(aten.grid_sampler_2d.default, x, grid, 2, 0, False) == {"pool": 2 * 16 * (2 * 3 * 5 * 6)}
    assert _call(aten.grid_sampler_2d.default, x, grid, 1, 0, False) == {}
    x3, grid3 = meta(1, 2, 4, 4, 4), meta(1, 3, 3, 3, 3)
    assert _call(aten.grid_sampler_3d.default, x3, grid3, 0, 0, False) == {"pool": 2 * 8 * (2 * 27)}
    backward = aten.grid_sampler_2d_backward.default
    assert _call(backward, out, x, grid, 0, 0, False, [True, True]) == {"pool": (2 * 4 + 2 * 4 * 2) * 180}
    assert _call(backward, out, x, grid, 1, 0, False, [True, False]) == {"pool": 180}


def test_cdist_is_three_flops_per_pair_and_coordinate():
    x1, x2 = meta(2, 5, 4), meta(2, 7, 4)
    assert _call(aten._cdist_forward.default, x1, x2, 2.0, None) == {"reduction": 3 * 2 * 5 * 7 * 4}
    dist = meta(2, 5, 7)
    assert _call(aten._cdist_backward.default, dist, x1, x2, 2.0, dist) == {"reduction": 3 * 2 * 5 * 7 * 4}


def test_fft_is_five_n_log2_n_per_transform():
    # 2 transforms of 16 points: 2 * 5 * 16 * 4
    assert _call(aten._fft_c2c.default, meta(2, 16, dtype=torch.complex64), [1], 0, True) == {"elementwise": 640}
    assert _call(aten._fft_r2c.default, meta(2, 16), [1], 0, True) == {"elementwise": 640}
    assert _call(aten._fft_c2r.default, meta(2, 9, dtype=torch.complex64), [1], 0, 16) == {"elementwise": 640}
    # 2-D: 3 transforms of 8 x 4 = 32 points, log2 32 = 5
    assert _call(aten._fft_c2c.default, meta(3, 8, 4, dtype=torch.complex64), [1, 2], 0, True) == {
        "elementwise": 3 * 5 * 32 * 5
    }


def test_max_unpool_moves_data_only_and_is_supported():
    x, indices = meta(1, 2, 4, 4), torch.zeros(1, 2, 4, 4, dtype=torch.long, device="meta")
    assert _call(aten.max_unpool2d.default, x, indices, [8, 8]) == {}
    assert "max_unpool2d" in str(FORMULAS[aten.max_unpool2d])


def test_windowed_causal_pairs_by_hand():
    # 6 tokens, window 3: the rows see 1, 2, 3, 3, 3, 3 keys
    assert formulas.windowed_causal_pairs(6, 6, 3) == 1 + 2 + 3 + 3 + 3 + 3
    # a window as long as the sequence is the causal triangle
    assert formulas.windowed_causal_pairs(6, 6, 6) == causal_pairs(6, 6) == 21
    assert formulas.windowed_causal_pairs(6, 6, 100) == 21
    # decoding: the 2 queries are positions 4 and 5 of 6 keys (bottom-right), each seeing the window's 3 keys
    assert formulas.windowed_causal_pairs(2, 6, 3) == 3 + 3
    # one query at position 1 of 2 keys sees both
    assert formulas.windowed_causal_pairs(1, 2, 3) == 2
    # more queries than keys: top-left rows, capped by the keys and the window: 1, 2, 2, 2
    assert formulas.windowed_causal_pairs(4, 3, 2) == 1 + 2 + 2 + 2


def test_windowed_causal_pairs_against_a_mask_counted_cell_by_cell():
    for len_q, len_k, window in ((7, 7, 1), (7, 7, 4), (3, 9, 4), (9, 9, 20), (5, 12, 5)):
        offset = len_k - len_q
        kept = sum(1 for i in range(len_q) for j in range(len_k) if 0 <= (i + offset) - j < window)
        assert formulas.windowed_causal_pairs(len_q, len_k, window) == kept


def test_windowed_causal_pairs_refuses_an_empty_window():
    with pytest.raises(ValueError, match="at least 1"):
        formulas.windowed_causal_pairs(4, 4, 0)


def test_antialias_taps_by_hand_and_against_the_kernel_impulse_responses():
    # 8 -> 4 bilinear: support 2 around centres 1, 3, 5, 7: inputs [0, 3), [1, 5), [3, 7), [5, 8)
    assert formulas.antialias_taps(8, 4, 2, False) == 3 + 4 + 4 + 3
    # align_corners, 9 -> 5: scale (9 - 1) / (5 - 1) = 2, support 2 around centres 1, 3, 5, 7, 9
    assert formulas.antialias_taps(9, 5, 2, True) == 3 + 4 + 4 + 4 + 2
    # an explicit scale factor of 1/2 sets the scale, whatever the sizes
    assert formulas.antialias_taps(8, 4, 2, False, 0.5) == 14
    # every input an output depends on (a nonzero impulse response) lies inside the taps counted for it
    for mode, interp_size in (("bilinear", 2), ("bicubic", 4)):
        for size_in, size_out in ((8, 4), (10, 3), (5, 9)):
            read = 0
            for j in range(size_in):
                x = torch.zeros(1, 1, 1, size_in, dtype=torch.float64)
                x[..., j] = 1
                y = torch.nn.functional.interpolate(x, size=(1, size_out), mode=mode, antialias=True)
                read += int((y.abs() > 1e-12).sum())
            assert read <= formulas.antialias_taps(size_in, size_out, interp_size, False)


def test_cudnn_rnn_backward_counts_the_data_gradients_always_and_the_weights_when_asked():
    # the 2-layer bidirectional GRU below (hidden 16, input 8, 5 steps of batch 3, biases)
    T, B, I, H = 5, 3, 8, 16  # noqa: E741 (the input size, as torch names it)
    G = 3 * H

    def backward(output_mask):
        x, h = torch.empty(T, B, I), torch.empty(4, B, H)
        out = torch.empty(T, B, 2 * H)
        args = (x, [torch.empty(1)] * 16, 4, None, h, None, out, out, h, None, 3, H, 0, 2, False, 0.0, True)
        return flops_of(
            torch.ops.aten._cudnn_rnn_backward.default, (*args, True, [], None, None, output_mask), {}, None
        )

    products = B * 2 * (2 * G * (I + H) + 2 * G * (2 * H + H))  # one step's forward products, both directions
    everything = backward([True, True, False, True])
    assert everything["matmul"] == T * 2 * products  # dx and dh, then dW_ih and dW_hh
    assert everything["reduction"] == T * B * 2 * 2 * 2 * G  # two bias gradients per layer and direction
    assert everything["elementwise"] == T * B * 2 * 2 * 2 * 7 * H  # the gates' pointwise work twice
    assert everything["activation"] == T * B * 2 * 2 * 2 * 3 * H
    data_only = backward([True, True, False, False])
    assert data_only["matmul"] == T * products and "reduction" not in data_only
    assert data_only["elementwise"] == everything["elementwise"]


def test_cudnn_rnn_counts_every_step_layer_and_direction_by_hand():
    # a 2-layer bidirectional GRU, hidden 16, input 8, 5 steps of batch 3, with biases (4 weights per layer
    # and direction: 16 tensors); cuDNN's one op for the whole stack
    T, B, I, H = 5, 3, 8, 16  # noqa: E741 (the input size, as torch names it)
    flops = flops_of(
        torch.ops.aten._cudnn_rnn.default,
        (
            torch.empty(T, B, I),
            [torch.empty(1)] * 16,
            4,
            None,
            torch.empty(4, B, H),
            None,
            3,
            H,
            0,
            2,
            False,
            0.0,
            True,
            True,
            [],
            None,
        ),
        {},
        None,
    )
    G = 3 * H
    per_step = B * 2 * (2 * G * (I + H) + 2 * G * (2 * H + H))  # both directions; layer 2 reads 2H
    assert flops["matmul"] == T * per_step
    # biases (2G), r and z summed (2H), n's multiply and add (2H), h' = n + z*(h - n) (3H); per layer, direction
    assert flops["elementwise"] == T * B * 2 * 2 * (2 * G + 7 * H)
    assert flops["activation"] == T * B * 2 * 2 * 3 * H  # 2 sigmoids and a tanh
    # a plain tanh RNN without biases (2 weights per layer and direction): the products added and the tanh
    plain = flops_of(
        torch.ops.aten._cudnn_rnn.default,
        (
            torch.empty(T, B, I),
            [torch.empty(1)] * 2,
            2,
            None,
            torch.empty(1, B, H),
            None,
            1,
            H,
            0,
            1,
            False,
            0.0,
            True,
            False,
            [],
            None,
        ),
        {},
        None,
    )
    assert plain == {"matmul": T * B * 2 * H * (I + H), "elementwise": T * B * H, "activation": T * B * H}
